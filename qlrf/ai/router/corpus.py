"""The router's corpus of example intents, validated against the agent catalogue when loaded.

Why validation at load: a corpus entry for a pair the agent may not propose would make the router
route to a task the validation pipeline then refuses every time; better that the shipped file
cannot load at all, with the entry named, than that operators learn it one refusal at a time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from qlrf.ai.agents import Agent, shipped_agents
from qlrf.ai.router.params import PLACEHOLDERS
from qlrf.ai.taskspec import AGENTS, TASK_TYPES

CORPUS_PATH = Path(__file__).parent / "corpus.yaml"
# Corpus placeholders and the entity each stands for ({env} reads better than {environment}).
SLOTS: dict[str, str] = {"site": "site", "env": "environment", "platform": "platform", "family": "family",
                         "package": "package", "date": "day", "asset": "asset_id", "n": "count"}
_SLOT = re.compile(r"\{([^{}]*)\}")


class CorpusError(ValueError):
    """An unusable corpus; the message names the file and the entry (agent.task_type[index])."""


@dataclass(frozen=True)
class Example:
    agent: str
    task_type: str
    text: str  # as written in the corpus, placeholders included

    def filled(self) -> str:
        """The text with each placeholder replaced by its mask token, as the matcher sees intents."""
        return _SLOT.sub(lambda m: f" {PLACEHOLDERS[SLOTS[m.group(1)]]} ", self.text.lower())


def load_corpus(path: str | Path = CORPUS_PATH, agents: Mapping[str, Agent] | None = None) -> tuple[Example, ...]:
    """Every example of the corpus at ``path``, in file order; :class:`CorpusError` naming the entry otherwise."""
    path = Path(path)
    agents = agents if agents is not None else shipped_agents()
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CorpusError(f"{path}: cannot read the router corpus: {exc}") from None
    if not isinstance(doc, Mapping) or doc.get("version") != 1 or not isinstance(doc.get("intents"), Mapping):
        raise CorpusError(f"{path}: expected 'version: 1' and a mapping 'intents: {{agent: {{task_type: [...]}}}}'")
    examples: list[Example] = []
    seen: dict[str, str] = {}
    for agent, by_type in doc["intents"].items():
        if agent not in AGENTS:
            raise CorpusError(f"{path}: intents.{agent}: unknown agent (known: {', '.join(AGENTS)})")
        if not isinstance(by_type, Mapping):
            raise CorpusError(f"{path}: intents.{agent}: must map task types to lists of examples")
        for task_type, texts in by_type.items():
            where = f"intents.{agent}.{task_type}"
            if task_type not in TASK_TYPES:
                raise CorpusError(f"{path}: {where}: unknown task type (known: {', '.join(TASK_TYPES)})")
            if task_type not in agents[agent].task_types:
                raise CorpusError(f"{path}: {where}: agent {agent!r} may not propose {task_type!r} "
                                  f"(allowed: {', '.join(agents[agent].task_types)})")
            if not isinstance(texts, list) or not texts:
                raise CorpusError(f"{path}: {where}: must be a non-empty list of example intents")
            for index, text in enumerate(texts):
                examples.append(_example(path, f"{where}[{index}]", agent, task_type, text, seen))
    if not examples:
        raise CorpusError(f"{path}: intents: no examples")
    return tuple(examples)


def _example(path: Path, where: str, agent: str, task_type: str, text: object, seen: dict[str, str]) -> Example:
    if not isinstance(text, str) or not text.strip():
        raise CorpusError(f"{path}: {where}: must be a non-blank string, got {text!r}")
    unknown = [slot for slot in _SLOT.findall(text) if slot not in SLOTS]
    if unknown:
        raise CorpusError(f"{path}: {where}: unknown placeholder {{{unknown[0]}}} (known: "
                          f"{', '.join('{' + s + '}' for s in SLOTS)})")
    key = " ".join(text.lower().split())
    if key in seen:
        raise CorpusError(f"{path}: {where}: repeats {seen[key]}")
    seen[key] = where
    return Example(agent, task_type, text.strip())
