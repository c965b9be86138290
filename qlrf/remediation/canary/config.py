"""What a canary analysis measures and how strictly: the ``canary:`` section of a plan's spec, or of
an environment in ``policy/remediation.yaml`` (the plan's own section wins, so an approval of the
plan hash also binds the analysis it will be judged by).

    canary:
      metrics:
        - {name: cpu, source: cloudwatch, metric: CPUUtilization, direction: increase,
           allowed_increase: 1.25, group: saturation}
        - {name: probe-latency, source: http_probe, metric: latency_ms, critical: true,
           effect: shift, allowed_increase: 50}
      groups: {saturation: 1, availability: 3}
      pass_score: 95
      min_points: 10
      lookback_seconds: 600
      step_seconds: 60
      probe: {url_template: "https://{target}.internal:8443/healthz", samples: 12, interval_seconds: 5}

Why these knobs (Kayenta's, mostly): a Mann-Whitney test says *whether* canary and baseline differ;
the allowed effect says whether the difference *matters* (a 1 % CPU rise with a p-value of 1e-9 is
not a reason to roll back); the direction says which way hurts; weights and groups turn many
metrics into one score; ``critical`` metrics veto on their own. Errors name the field.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Source = Literal["cloudwatch", "azure_monitor", "cloud_monitoring", "vsphere", "http_probe"]
Direction = Literal["increase", "decrease", "either"]
Effect = Literal["ratio", "shift"]
RATIO_DEFAULTS = (1.2, 0.8)  # allowed_increase, allowed_decrease when effect is a ratio of medians


class CanaryConfigError(ValueError):
    """An unusable canary section; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricSpec(_Strict):
    """One metric judged canary vs baseline.

    ``metric`` is the source's own name: a CloudWatch MetricName, an Azure Monitor metric name, a
    Cloud Monitoring metric type, a vSphere counter (``group.name.rollup``, e.g.
    ``cpu.usage.average``), or ``latency_ms`` / ``error`` for the HTTP probe.

    ``effect: ratio`` compares the median of the canary to the median of the baseline
    (``allowed_increase: 1.2`` = up to 20 % higher passes); ``effect: shift`` uses the Hodges-Lehmann
    shift in the metric's own unit (``allowed_increase: 50`` = up to 50 ms slower passes), which
    suits metrics that sit near zero, where a ratio explodes.
    """

    name: str = Field(min_length=1, max_length=80)
    source: Source
    metric: str = Field(min_length=1)
    statistic: str = Field(default="Average", description="CloudWatch statistic / Azure aggregation / GCP aligner suffix")
    namespace: str = Field(default="AWS/EC2", description="CloudWatch namespace")
    dimension: str = Field(default="InstanceId", description="CloudWatch dimension whose value is the target id")
    direction: Direction = "increase"
    effect: Effect = "ratio"
    allowed_increase: float | None = None
    allowed_decrease: float | None = None
    weight: float = Field(default=1.0, gt=0)
    group: str = Field(default="default", min_length=1)
    critical: bool = False

    @model_validator(mode="after")
    def _thresholds(self) -> MetricSpec:
        if self.effect == "ratio":
            inc = RATIO_DEFAULTS[0] if self.allowed_increase is None else self.allowed_increase
            dec = RATIO_DEFAULTS[1] if self.allowed_decrease is None else self.allowed_decrease
            if inc < 1:
                raise ValueError(f"allowed_increase: a ratio of medians must be >= 1, got {inc}")
            if not 0 < dec <= 1:
                raise ValueError(f"allowed_decrease: a ratio of medians must be in (0, 1], got {dec}")
        else:
            for field in ("allowed_increase", "allowed_decrease"):
                value = getattr(self, field)
                if value is None and self._needs(field):
                    raise ValueError(f"{field}: required with effect shift (in the metric's own unit)")
                if value is not None and value < 0:
                    raise ValueError(f"{field}: a shift is given as a magnitude >= 0, got {value}")
            inc = self.allowed_increase if self.allowed_increase is not None else 0.0
            dec = self.allowed_decrease if self.allowed_decrease is not None else 0.0
        object.__setattr__(self, "allowed_increase", float(inc))
        object.__setattr__(self, "allowed_decrease", float(dec))
        return self

    def _needs(self, field: str) -> bool:
        """With a shift, the bound on the harmless side may be left out (it is never used)."""
        harmful = {"increase": ("allowed_increase",), "decrease": ("allowed_decrease",),
                   "either": ("allowed_increase", "allowed_decrease")}[self.direction]
        return field in harmful


class ProbeSpec(_Strict):
    """The HTTP health probe (source ``http_probe``): GET ``url_template`` with ``{target}``
    replaced by the target id, ``samples`` rounds ``interval_seconds`` apart."""

    url_template: str = Field(min_length=1)
    samples: int = Field(default=12, ge=1, le=10_000)
    interval_seconds: float = Field(default=5.0, ge=0, le=3_600)
    timeout_seconds: float = Field(default=5.0, gt=0, le=300)

    @model_validator(mode="after")
    def _placeholder(self) -> ProbeSpec:
        if "{target}" not in self.url_template:
            raise ValueError(f"url_template must contain {{target}}, got {self.url_template!r}")
        return self


class CanaryConfig(_Strict):
    """The analysis of one plan; see the module docstring."""

    metrics: list[MetricSpec] = Field(min_length=1)
    groups: dict[str, float] = Field(default_factory=dict, description="group weights; empty: every group weighs 1")
    pass_score: float = Field(default=95.0, gt=0, le=100)
    marginal_score: float | None = Field(default=None, ge=0, le=100,
                                         description="scores in [marginal, pass) are inconclusive instead of failing")
    alpha: float = Field(default=0.05, gt=0, lt=0.5, description="significance level of the Mann-Whitney test")
    min_points: int = Field(default=10, ge=3, le=100_000, description="points per side (canary, baseline) per metric")
    lookback_seconds: int = Field(default=600, ge=10, le=86_400, description="the judged interval, ending at the analysis")
    step_seconds: int = Field(default=60, ge=1, le=3_600, description="the period each point aggregates")
    max_gap_seconds: int | None = Field(default=None, ge=1, description="a larger hole in a series is a gap (default 2 x step)")
    skew_tolerance_seconds: int | None = Field(default=None, ge=0,
                                               description="canary and baseline series may start/end this far apart (default 1 step)")
    probe: ProbeSpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CanaryConfig:
        names = [m.name for m in self.metrics]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"metrics: names must be unique, repeated {twice}")
        for name, weight in self.groups.items():
            if weight <= 0:
                raise ValueError(f"groups.{name}: a group weight must be > 0, got {weight}")
        if self.groups:
            for i, m in enumerate(self.metrics):
                if m.group not in self.groups:
                    raise ValueError(f"metrics.{i}.group: {m.group!r} has no weight in groups ({sorted(self.groups)})")
        if self.probe is None and any(m.source == "http_probe" for m in self.metrics):
            raise ValueError("probe: required when a metric uses source http_probe (url_template, samples, ...)")
        if self.marginal_score is not None and self.marginal_score >= self.pass_score:
            raise ValueError(f"marginal_score ({self.marginal_score}) must be below pass_score ({self.pass_score})")
        if self.lookback_seconds < self.step_seconds:
            raise ValueError(f"lookback_seconds ({self.lookback_seconds}) must be at least step_seconds ({self.step_seconds})")
        return self

    @property
    def max_gap(self) -> float:
        return float(self.max_gap_seconds if self.max_gap_seconds is not None else 2 * self.step_seconds)

    @property
    def skew_tolerance(self) -> float:
        return float(self.skew_tolerance_seconds if self.skew_tolerance_seconds is not None else self.step_seconds)

    def group_weight(self, group: str) -> float:
        return self.groups.get(group, 1.0)

    def thresholds(self) -> dict:
        """What the verdict was measured against (for the audit record)."""
        return {"pass_score": self.pass_score, "marginal_score": self.marginal_score, "alpha": self.alpha,
                "min_points": self.min_points, "lookback_seconds": self.lookback_seconds,
                "step_seconds": self.step_seconds, "max_gap_seconds": self.max_gap,
                "skew_tolerance_seconds": self.skew_tolerance, "groups": dict(self.groups)}


def parse_canary(doc: object, where: str = "canary") -> CanaryConfig:
    """Validate a ``canary:`` mapping; the error names ``where`` and the field."""
    try:
        return CanaryConfig.model_validate(doc)
    except ValidationError as exc:
        fields = "; ".join(f"{where}.{'.'.join(str(p) for p in e['loc'])}".rstrip(".") + f": {e['msg']}"
                           for e in exc.errors())
        raise CanaryConfigError(f"invalid canary analysis: {fields}") from exc


def resolve_config(plan: object, policy: object | None = None) -> CanaryConfig | None:
    """The plan's own ``spec.canary``, else its environment's ``canary`` in the remediation policy,
    else None (no analysis: the health gate alone decides)."""
    own = getattr(getattr(plan, "spec", None), "canary", None)
    if own is not None:
        return own
    if policy is None:
        return None
    env = policy.for_env(plan.metadata.environment)  # type: ignore[attr-defined]
    return getattr(env, "canary", None)


__all__ = ["CanaryConfig", "CanaryConfigError", "MetricSpec", "ProbeSpec", "parse_canary", "resolve_config"]
