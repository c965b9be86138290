"""The eight specialist agents, declared as data in ``agents.yaml`` and validated when loaded.

An agent is not a class: it is a purpose, the tools it may call, the task types it may propose and
a prompt file (HolmesGPT and kagent declare theirs the same way). Keeping them as data means the
offline router, the model path and the Rego gate all read one catalogue, and adding or narrowing an
agent is a reviewed YAML change. :func:`violations` checks a :class:`~qlrf.ai.taskspec.TaskSpec`
against its agent's record, so a model cannot propose work or call tools outside its agent.

Tool names are checked against :data:`PLANNED_TOOLS` (issue 10 item 3): the registry that
implements them lives in ``qlrf/ai/tools/``; once it lands this constant should be its name list.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qlrf.ai.taskspec import AGENTS, TASK_TYPES, TaskProposal, field_errors

AI_DIR = Path(__file__).parent
CATALOGUE_PATH = AI_DIR / "agents.yaml"
COMMON_PROMPT = "agent_prompts/_common.md"

PLANNED_TOOLS: tuple[str, ...] = (
    "query_assets",
    "get_drift_status",
    "get_golden_image",
    "check_compliance",
    "query_alerts",
    "query_audit",
    "sbom_query",
    "get_dr_status",
    "simulate_failover",
    "list_pending_tasks",
    "estimate_cost",
    "get_risk",
)


class AgentCatalogueError(ValueError):
    """An unusable agent catalogue; the message names the file, the agent and the field."""


class Agent(BaseModel):
    """One specialist agent, as declared in the catalogue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    purpose: str = Field(min_length=1)
    tools: tuple[str, ...] = Field(min_length=1)
    task_types: tuple[str, ...] = Field(min_length=1)
    prompt: str = Field(min_length=1, description="prompt file, relative to qlrf/ai/")

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _known(value, PLANNED_TOOLS, "tool")

    @field_validator("task_types")
    @classmethod
    def _known_task_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _known(value, TASK_TYPES, "task type")

    def prompt_path(self, base: Path = AI_DIR) -> Path:
        return base / self.prompt

    def system_prompt(self, base: Path = AI_DIR) -> str:
        """The rules every agent shares, then this agent's own prompt."""
        return (base / COMMON_PROMPT).read_text() + "\n" + self.prompt_path(base).read_text()


def _known(values: tuple[str, ...], known: tuple[str, ...], what: str) -> tuple[str, ...]:
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ValueError(f"unknown {what} {', '.join(map(repr, unknown))} (known: {', '.join(known)})")
    if len(set(values)) != len(values):
        raise ValueError(f"lists a {what} twice")
    return values


class _Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    agents: dict[str, dict[str, Any]]


def load_agents(path: str | Path = CATALOGUE_PATH) -> Mapping[str, Agent]:
    """Every agent of the catalogue at ``path``, validated; :class:`AgentCatalogueError` otherwise.

    Prompt files resolve against ``qlrf/ai/`` for the shipped catalogue and against the file's own
    folder for any other (so a test or an operator can ship a catalogue with its prompts).
    """
    path = Path(path)
    base = AI_DIR if path.resolve() == CATALOGUE_PATH.resolve() else path.parent
    doc = _read(path)
    names = list(doc.agents)
    if sorted(names) != sorted(AGENTS):
        missing, extra = sorted(set(AGENTS) - set(names)), sorted(set(names) - set(AGENTS))
        raise AgentCatalogueError(f"{path}: agents must be exactly {', '.join(AGENTS)} (missing {missing}, unknown {extra})")
    agents = {name: _agent(path, base, name, record) for name, record in doc.agents.items()}
    return MappingProxyType({name: agents[name] for name in AGENTS})


def _read(path: Path) -> _Catalogue:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise AgentCatalogueError(f"{path}: cannot read the agent catalogue: {exc}") from None
    try:
        return _Catalogue.model_validate(raw)
    except ValidationError as exc:
        raise AgentCatalogueError(f"{path}: {field_errors(exc)}") from None


def _agent(path: Path, base: Path, name: str, record: Mapping[str, Any]) -> Agent:
    if not isinstance(record, Mapping):
        raise AgentCatalogueError(f"{path}: agent {name!r}: must be a mapping")
    try:
        agent = Agent.model_validate({**record, "name": name})
    except ValidationError as exc:
        raise AgentCatalogueError(f"{path}: agent {name!r}: {field_errors(exc)}") from None
    for prompt in (agent.prompt_path(base), base / COMMON_PROMPT):
        if not prompt.is_file() or not prompt.read_text().strip():
            raise AgentCatalogueError(f"{path}: agent {name!r}: prompt: file {prompt} is missing or empty")
    return agent


@lru_cache(maxsize=1)
def shipped_agents() -> Mapping[str, Agent]:
    """The shipped catalogue, loaded once per process (on first use, never at import)."""
    return load_agents()


def violations(spec: TaskProposal, agents: Mapping[str, Agent] | None = None) -> list[str]:
    """Why ``spec`` is outside its agent's record (empty when allowed).

    Calls the system refused are recorded honestly and not held against the spec; a call that ran
    (``ok`` or ``error``) must be one of the agent's tools.
    """
    agent = (agents if agents is not None else shipped_agents())[spec.agent]
    problems = []
    if spec.task_type not in agent.task_types:
        problems.append(f"task_type: agent {agent.name!r} may not propose {spec.task_type!r} "
                        f"(allowed: {', '.join(agent.task_types)})")
    for index, call in enumerate(spec.tool_calls):
        if call.status != "refused" and call.name not in agent.tools:
            problems.append(f"tool_calls.{index}.name: agent {agent.name!r} may not call {call.name!r}")
    return problems


def is_allowed(spec: TaskProposal, agents: Mapping[str, Agent] | None = None) -> bool:
    return not violations(spec, agents)
