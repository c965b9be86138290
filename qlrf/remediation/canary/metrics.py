"""Where canary metrics come from: one :class:`MetricSource` per platform (and the HTTP probe),
each asked once per metric for every target of the analysis (canary and baseline together, so a
source that samples live, like the probe, samples both sides in the same moments).

A source answers ``{target id: Series}`` for the window; a target it has no points for is simply
absent or empty (the judge names it as missing). It raises :class:`MetricSourceError` when it
cannot answer at all (the metric is then judged ``nodata`` with that message: inconclusive).

    sources/cloudwatch.py        AWS CloudWatch GetMetricData (boto3)
    sources/azure_monitor.py     Azure Monitor metrics REST (azure-core pipeline, the connector's credential)
    sources/cloud_monitoring.py  Cloud Monitoring timeSeries.list REST (google-auth session)
    sources/vsphere.py           vSphere PerformanceManager.QueryPerf (pyVmomi)
    sources/http_probe.py        GET a URL per target: latency_ms and error as metrics
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from qlrf.remediation.canary.config import CanaryConfig, MetricSpec
from qlrf.remediation.canary.judge import MetricData, Series


class MetricSourceError(RuntimeError):
    """A source could not answer (API error, unknown metric); the message names what and where."""


@dataclass(frozen=True)
class Window:
    """The judged interval [start, end) and the period each point aggregates."""

    start: datetime
    end: datetime
    step_seconds: int

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a metric window needs timezone-aware start and end (UTC)")
        if self.end <= self.start:
            raise ValueError(f"a metric window must end after it starts ({self.start} .. {self.end})")


@runtime_checkable
class MetricSource(Protocol):
    def fetch(self, metric: MetricSpec, targets: Sequence[str], window: Window) -> Mapping[str, Series]:
        """Per-target series of ``metric`` within ``window``."""


def collect(config: CanaryConfig, sources: Mapping[str, MetricSource], canary: Sequence[str],
            baseline: Sequence[str], window: Window) -> dict[str, MetricData]:
    """Every configured metric for both sides; a source that is not configured or fails becomes
    that metric's error (judged nodata), never an exception out of here."""
    out: dict[str, MetricData] = {}
    targets = [*canary, *baseline]
    for spec in config.metrics:
        source = sources.get(spec.source)
        if source is None:
            out[spec.name] = MetricData({}, {}, f"no {spec.source} metric source is configured")
            continue
        try:
            series = source.fetch(spec, targets, window)
        except Exception as exc:  # noqa: BLE001 - a failed source makes the analysis inconclusive, named
            text = " ".join(str(exc).split())[:300]
            out[spec.name] = MetricData({}, {}, f"{spec.source} {spec.metric}: {type(exc).__name__}: {text}")
            continue
        empty = Series((), ())
        out[spec.name] = MetricData({t: series.get(t, empty) for t in canary}, {t: series.get(t, empty) for t in baseline})
    return out


__all__ = ["MetricSource", "MetricSourceError", "Window", "collect"]
