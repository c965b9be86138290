"""Intent -> (agent, task type): nearest corpus examples by TF-IDF cosine, entities masked first.

Why this shape: word n-grams carry the verbs that separate asking from acting ("which ... are" vs
"patch ..."); character n-grams within word boundaries keep a typo or odd casing close to the word
it misspells. Sites, environments, platforms and families are masked to placeholder tokens in the
corpus and the intent alike, so the route never depends on *which* site was named. A label's score
is the mean of its best :data:`TOP_K` example similarities (one lucky example should not win).
Everything is deterministic: fixed vectoriser settings, ties broken by corpus order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from qlrf.ai.router.corpus import CORPUS_PATH, Example, load_corpus
from qlrf.ai.router.params import Params, Vocabulary, masked, recognise

TOP_K = 3
CONFIDENCE_FLOOR = 0.28  # below this the router answers (unsure) instead of proposing work
MAX_ALTERNATIVES = 3


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
        self.chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
        self.matrix = self._join(self.words.fit_transform(texts), self.chars.fit_transform(texts))
        self.labels = list(dict.fromkeys((e.agent, e.task_type) for e in examples))
        index = {label: i for i, label in enumerate(self.labels)}
        self.label_of = np.array([index[(e.agent, e.task_type)] for e in examples])

    @staticmethod
    def _join(words, chars):
        return normalize(sparse.hstack([words, chars]).tocsr())

    def scores(self, text: str) -> list[tuple[tuple[str, str], float]]:
        """(label, score) best first; equal scores keep corpus order."""
        vector = self._join(self.words.transform([text]), self.chars.transform([text]))
        sims = (self.matrix @ vector.T).toarray().ravel()
        out = []
        for i, label in enumerate(self.labels):
            best = np.sort(sims[self.label_of == i])[::-1][:TOP_K]
            out.append((label, float(best.mean()) if best.size else 0.0))
        return sorted(out, key=lambda item: -item[1])  # stable: ties stay in corpus order


def _mask_example(example: Example) -> str:
    filled = example.filled()
    return masked(filled, recognise(filled))


@lru_cache(maxsize=4)
def _model(path: str) -> _Model:
    return _Model(load_corpus(path))


def route(intent: str, vocabulary: Vocabulary | None = None, today: date | None = None,
          corpus: str | Path = CORPUS_PATH) -> Route:
    """The agent and task type for ``intent``, with the parameters it names.

    Below :data:`CONFIDENCE_FLOOR` the route is ``answer`` by the best-scoring agent and ``unsure``
    is set, so the answer can say it was unsure and list what that agent can do."""
    params = recognise(intent, vocabulary, today)
    ranked = _model(str(Path(corpus).resolve())).scores(masked(intent, params))
    (agent, task_type), confidence = ranked[0]
    alternatives = tuple((a, t, round(s, 4)) for (a, t), s in ranked[1:1 + MAX_ALTERNATIVES])
    if confidence < CONFIDENCE_FLOOR:
        return Route(agent, "answer", round(confidence, 4), alternatives, params, unsure=True)
    return Route(agent, task_type, round(confidence, 4), alternatives, params)
