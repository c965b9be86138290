"""The offline router's tool plans (``plans.yaml``): which tools an agent runs for a task type, as data.

Why data and not code: a reviewer sees in one file what the router will look at for each kind of
question, and the load check guarantees every step is a tool the agent may call, so the offline
path can never be refused by the agent catalogue it shares with the model path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qlrf.ai.agents import Agent, shipped_agents
from qlrf.ai.router.params import Params, Vocabulary
from qlrf.ai.taskspec import field_errors
from qlrf.ai.tools.registry import MAX_ROWS
from qlrf.remediation.policy import ENVIRONMENTS

PLANS_PATH = Path(__file__).parent / "plans.yaml"
PARAM_NAMES = ("day", "platform", "site", "environment", "family", "package", "asset_id", "count")


class PlanError(ValueError):
    """An unusable plan file; the message names the file and the step or plan."""


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str
    args: tuple[str, ...] = ()
    fixed: dict[str, Any] = Field(default_factory=dict)
    needs: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    fan_out: Literal["platform", "family"] | None = None
    fan_out_unless: tuple[str, ...] = ()

    def bindings(self) -> list[tuple[str, str]]:
        """(tool argument, parameter) pairs: "image_family=family" renames, "site" is site=site."""
        return [tuple(a.split("=", 1)) if "=" in a else (a, a) for a in self.args]  # type: ignore[misc]


class _PlanFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    steps: dict[str, Step]
    plans: dict[str, dict[str, list[str]]]


@dataclass(frozen=True)
class Plans:
    steps: Mapping[str, Step]
    plans: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)

    def for_route(self, agent: str, task_type: str) -> tuple[Step, ...]:
        return tuple(self.steps[name] for name in self.plans[agent][task_type])


def load_plans(path: str | Path = PLANS_PATH, agents: Mapping[str, Agent] | None = None) -> Plans:
    path = Path(path)
    agents = agents if agents is not None else shipped_agents()
    try:
        doc = _PlanFile.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise PlanError(f"{path}: cannot read the router plans: {exc}") from None
    except ValidationError as exc:
        raise PlanError(f"{path}: {field_errors(exc)}") from None
    for name, step in doc.steps.items():
        params = [p for _, p in step.bindings()] + [*step.needs, *step.unless, *step.fan_out_unless]
        unknown = [p for p in params if p not in PARAM_NAMES]
        if unknown:
            raise PlanError(f"{path}: steps.{name}: unknown parameter {unknown[0]!r} (known: {', '.join(PARAM_NAMES)})")
    for agent_name, agent in agents.items():
        by_type = doc.plans.get(agent_name, {})
        for task_type in agent.task_types:
            if task_type not in by_type:
                raise PlanError(f"{path}: plans.{agent_name}.{task_type}: missing (the router may route there)")
        for task_type, names in by_type.items():
            where = f"plans.{agent_name}.{task_type}"
            if task_type not in agent.task_types:
                raise PlanError(f"{path}: {where}: agent {agent_name!r} may not propose {task_type!r}")
            for name in names:
                step = doc.steps.get(name)
                if step is None:
                    raise PlanError(f"{path}: {where}: unknown step {name!r}")
                if step.tool not in agent.tools:
                    raise PlanError(f"{path}: {where}: step {name!r} calls {step.tool!r}, which agent "
                                    f"{agent_name!r} may not call")
    unknown_agents = sorted(set(doc.plans) - set(agents))
    if unknown_agents:
        raise PlanError(f"{path}: plans.{unknown_agents[0]}: unknown agent")
    plans = {a: {t: tuple(n) for t, n in by.items()} for a, by in doc.plans.items()}
    return Plans(dict(doc.steps), plans)


@lru_cache(maxsize=1)
def shipped_plans() -> Plans:
    return load_plans()


def calls(step: Step, params: Params, vocabulary: Vocabulary) -> Iterator[dict[str, Any]]:
    """The argument sets ``step`` runs with for ``params`` (none when its needs are unmet)."""
    values = _values(params)
    if any(values.get(p) is None for p in step.needs) or any(values.get(p) is not None for p in step.unless):
        return
    base = {arg: values[p] for arg, p in step.bindings() if values.get(p) is not None}
    base.update(step.fixed)
    fan = None if any(values.get(p) is not None for p in step.fan_out_unless) else step.fan_out
    if fan == "platform" and _rollup_rows(values, vocabulary) <= MAX_ROWS:
        fan = None  # one call holds every platform x site x environment row: fanning out only costs calls
    if fan == "platform" and "platform" not in base and vocabulary.platforms:
        for platform in vocabulary.platforms:
            yield {**base, "platform": platform}
    elif fan == "family" and "family" not in base:
        for family in vocabulary.families:
            yield {**base, "family": family}
    else:
        yield base


def _rollup_rows(values: dict[str, Any], vocabulary: Vocabulary) -> int:
    """Rows a platform x site x environment roll-up of this scope can have, at most."""
    sites = 1 if values.get("site") else max(len(vocabulary.sites), 1)
    environments = 1 if values.get("environment") else len(ENVIRONMENTS)
    return max(len(vocabulary.platforms), 1) * sites * environments


def _values(params: Params) -> dict[str, Any]:
    return {"day": params.day.isoformat() if params.day else None, "platform": params.platform, "site": params.site,
            "environment": params.environment, "family": params.family, "package": params.package,
            "asset_id": params.asset_ids[0] if params.asset_ids else None, "count": params.count}
