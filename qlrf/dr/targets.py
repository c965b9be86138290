"""Where lost VMs recover: the DR target map (``policy/dr_targets.yaml``), validated on load.

Each *target* is a recovery location with the capacity kept free there for failover (vCPU and
memory). Sites and regions map to targets; when a region is lost its VMs look up the region map
first, otherwise the site map first (each falls back to the other). A target that lies in the lost
site, region or platform is lost too: it offers no capacity in that scenario. The file also sets the
recovery-time objective per environment (the RPO objective is the environment's RPO, as readiness
uses) and names the scenarios the ``dr_failover_scenarios`` asset evaluates every day.

Errors name the file and the field (``targets.sin1-dr.vcpu: Input should be greater than 0``), and a
map entry that names an unknown target is refused, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from qlrf.settings import project_root
from qlrf.yamlfile import load_model

TARGETS_PATH = project_root() / "policy" / "dr_targets.yaml"
TARGETS_VARIABLE = "QLRF_DR_TARGETS"
KINDS = ("site", "region", "platform")


class TargetsError(ValueError):
    """The DR target file is malformed; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Strict):
    site: str | None = Field(None, description="the site the target lies in (lost with it)")
    region: str | None = Field(None, description="the region the target lies in (lost with it)")
    platform: str | None = Field(None, description="the platform the target runs on (lost with it)")
    vcpu: PositiveInt
    memory_gib: PositiveFloat


class Scenario(_Strict):
    name: str = Field(min_length=1)
    site: str | None = None
    region: str | None = None
    platform: str | None = None
    environment: str | None = None

    @model_validator(mode="after")
    def _one_scope(self) -> Scenario:
        given = [k for k in KINDS if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"scenario {self.name!r} must name exactly one of site, region, platform (got {given or 'none'})")
        return self

    @property
    def kind(self) -> Literal["site", "region", "platform"]:
        return next(k for k in KINDS if getattr(self, k))  # type: ignore[return-value]

    @property
    def value(self) -> str:
        return str(getattr(self, self.kind))


class _Objectives(_Strict):
    rto_minutes: dict[str, PositiveFloat]


class _File(_Strict):
    version: Literal[1]
    objectives: _Objectives
    targets: dict[str, Target] = Field(min_length=1)
    sites: dict[str, str] = Field(default_factory=dict)
    regions: dict[str, str] = Field(default_factory=dict)
    scenarios: list[Scenario] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_targets(self) -> _File:
        for section in ("sites", "regions"):
            for key, target in getattr(self, section).items():
                if target not in self.targets:
                    raise ValueError(f"{section}.{key}: unknown target {target!r} (known: {', '.join(sorted(self.targets))})")
        names = [s.name for s in self.scenarios]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"scenarios: duplicate name(s) {dupes}")
        return self


@dataclass(frozen=True)
class DrTargets:
    path: str
    targets: dict[str, Target]
    sites: dict[str, str]
    regions: dict[str, str]
    rto_minutes: dict[str, float]
    scenarios: tuple[Scenario, ...]

    def scenario(self, kind: str, value: str, environment: str | None = None, name: str | None = None) -> Scenario:
        return Scenario(name=name or f"lose {kind} {value}", environment=environment, **{kind: value})

    def lost(self, target: str, scenario: Scenario) -> bool:
        """Whether `target` lies inside what the scenario loses."""
        return getattr(self.targets[target], scenario.kind) == scenario.value


def load_targets(path: Path | str | None = None) -> DrTargets:
    path = Path(path or TARGETS_PATH)
    parsed = load_model(_File, path, TargetsError)
    return DrTargets(str(path), dict(parsed.targets), dict(parsed.sites), dict(parsed.regions),
                     dict(parsed.objectives.rto_minutes), tuple(parsed.scenarios))


def configured_targets(path: str | None = None, env=None) -> DrTargets:
    """The DR target map in force: `path`, else QLRF_DR_TARGETS (read now, never at import), else the default."""
    from qlrf.envparse import environ, text

    return load_targets(path or text(environ(env), TARGETS_VARIABLE))


__all__ = ["configured_targets", "KINDS", "TARGETS_PATH", "TARGETS_VARIABLE", "DrTargets", "Scenario", "Target", "TargetsError", "load_targets"]
