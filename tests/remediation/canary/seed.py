"""Seed CloudWatch (moto) with per-instance metric points, as the CloudWatch agent would."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any


def put_cloudwatch(cw: Any, metric: str, values: Mapping[str, float | Sequence[float]], times: Sequence[datetime],
                   namespace: str = "AWS/EC2") -> None:
    """One point per instance per timestamp (``values[iid]``: a constant or one value per time)."""
    data = []
    for iid, value in values.items():
        for n, at in enumerate(times):
            v = value if isinstance(value, int | float) else value[n]
            data.append({"MetricName": metric, "Dimensions": [{"Name": "InstanceId", "Value": iid}],
                         "Timestamp": at, "Value": float(v)})
    for i in range(0, len(data), 1000):
        cw.put_metric_data(Namespace=namespace, MetricData=data[i : i + 1000])


class Telemetry:
    """The real driver, and after each wave ``report(plan, index)``: the machines report metrics
    (as the CloudWatch / Ops / Azure agents would) the moment the driver has changed them. Forwards
    ``members`` for the analysis. (On main, tests/remediation/support.AfterWave is the same idea
    without ``members`` and the plan.)"""

    def __init__(self, inner: Any, report: Callable[[Any, int], None]):
        self.inner, self.report = inner, report

    def prepare(self, plan: Any) -> Any:
        return self.inner.prepare(plan)

    def run_wave(self, plan: Any, index: int) -> dict:
        details = self.inner.run_wave(plan, index)
        self.report(plan, index)
        return details

    def health(self, plan: Any, index: int) -> Any:
        return self.inner.health(plan, index)

    def members(self, plan: Any, index: int) -> tuple[list[str], list[str]]:
        return self.inner.members(plan, index)

    def rollback(self, plan: Any, waves_done: list[int]) -> dict:
        return self.inner.rollback(plan, waves_done)
