"""Intent -> (agent, task type): nearest corpus examples by TF-IDF cosine, entities masked first.

Why this shape: word n-grams carry the verbs that separate asking from acting ("which ... are" vs
"patch ..."); character n-grams within word boundaries keep a typo or odd casing close to the word
it misspells. Sites, environments, platforms and families are masked to placeholder tokens in the
corpus and the intent alike, so the route never depends on *which* site was named. A label's score
is the mean of its best :data:`TOP_K` example similarities (one lucky example should not win).
Everything is deterministic: fixed vectoriser settings, ties broken by corpus order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.preprocessing import normalize

from qlrf.ai.router.corpus import CORPUS_PATH, Example, load_corpus
from qlrf.ai.router.params import PLACEHOLDERS, Params, Vocabulary, masked, recognise

TOP_K = 2
CONFIDENCE_FLOOR = 0.22  # below this the router answers (unsure) instead of proposing work
ACTION_FLOOR = 0.32  # proposing work needs more certainty than answering a question
MAX_ALTERNATIVES = 3
WORD_WEIGHT = 0.7  # word n-grams relative to character n-grams: typos lean on the characters


@dataclass(frozen=True)
class Route:
    """Where an intent goes, how sure the router is, what came next, and the parameters it names."""

    agent: str
    task_type: str
    confidence: float
    alternatives: tuple[tuple[str, str, float], ...]
    params: Params
    unsure: bool = False  # confidence below the floor: answered by ``agent``, nothing proposed


class _Model:
    """The fitted vectorisers and the corpus matrix: built once per process per corpus file."""

    def __init__(self, examples: tuple[Example, ...]) -> None:
        self.examples = examples
        texts = [_mask_example(e) for e in examples]
        self.words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                                     token_pattern=r"(?u)\b\w+\b")
        self.chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True)
        self.matrix = self._join(self.words.fit_transform(texts), self.chars.fit_transform(texts))
        self.labels = list(dict.fromkeys((e.agent, e.task_type) for e in examples))
        index = {label: i for i, label in enumerate(self.labels)}
        self.label_of = np.array([index[(e.agent, e.task_type)] for e in examples])
        self.domain = {variant for text in texts for word in _content_words(text) for variant in _variants(word)}

    def in_domain(self, text: str) -> bool:
        """Whether the text names an entity or shares a content word (up to one typo) with the corpus.

        Cosine similarity alone cannot tell "what is the meaning of life" from "what is the latest
        image": both share "what is the". A question about this product names something it knows."""
        if any(PLACEHOLDERS[kind] in text for kind in EVIDENCE):
            return True
        return any(not self.domain.isdisjoint(_variants(word)) for word in _content_words(text))

    @staticmethod
    def _join(words, chars):
        return normalize(sparse.hstack([normalize(words) * WORD_WEIGHT, normalize(chars)]).tocsr())

    def scores(self, text: str) -> list[tuple[tuple[str, str], float]]:
        """(label, score) best first; equal scores keep corpus order."""
        vector = self._join(self.words.transform([text]), self.chars.transform([text]))
        sims = (self.matrix @ vector.T).toarray().ravel()
        out = []
        for i, label in enumerate(self.labels):
            best = np.sort(sims[self.label_of == i])[::-1][:TOP_K]
            out.append((label, float(best.mean()) if best.size else 0.0))
        return sorted(out, key=lambda item: -item[1])  # stable: ties stay in corpus order


EVIDENCE = ("site", "environment", "platform", "family", "package", "asset_id")
_TOKEN = re.compile(r"[a-z]{3,}")
# Filler that says nothing about the domain ("what does drift look like", "please", "tell me").
_FILLER = ENGLISH_STOP_WORDS | {"like", "look", "looks", "please", "pls", "thanks", "thank", "want", "need", "tell",
                                "know", "give", "make", "lets", "let", "does", "right", "moment", "show"}


def _content_words(text: str) -> set[str]:
    return {w for w in _TOKEN.findall(text) if w not in _FILLER and w not in _MASKS}


def _variants(word: str) -> set[str]:
    """The word and its one-letter deletions: two words within one edit share a variant (SymSpell's trick)."""
    if len(word) < 4:
        return {word}
    return {word} | {word[:i] + word[i + 1:] for i in range(len(word))}


_MASKS = frozenset(PLACEHOLDERS.values())


def _mask_example(example: Example) -> str:
    filled = example.filled()
    return masked(filled, recognise(filled))


@lru_cache(maxsize=4)
def _model(path: str) -> _Model:
    return _Model(load_corpus(path))


def route(intent: str, vocabulary: Vocabulary | None = None, today: date | None = None,
          corpus: str | Path = CORPUS_PATH) -> Route:
    """The agent and task type for ``intent``, with the parameters it names.

    Below :data:`CONFIDENCE_FLOOR` (:data:`ACTION_FLOOR` for an action), or with nothing in the intent the corpus knows, the route is ``answer`` by the best-scoring agent and ``unsure``
    is set, so the answer can say it was unsure and list what that agent can do."""
    params = recognise(intent, vocabulary, today)
    model, text = _model(str(Path(corpus).resolve())), masked(intent, params)
    ranked = model.scores(text)
    (agent, task_type), confidence = ranked[0]
    alternatives = tuple((a, t, round(s, 4)) for (a, t), s in ranked[1:1 + MAX_ALTERNATIVES])
    floor = CONFIDENCE_FLOOR if task_type == "answer" else ACTION_FLOOR
    if confidence < floor or not model.in_domain(text):
        return Route(agent, "answer", round(confidence, 4), alternatives, params, unsure=True)
    return Route(agent, task_type, round(confidence, 4), alternatives, params)
