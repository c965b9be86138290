"""Canary metrics from vSphere: ``PerformanceManager.QueryPerf`` (pyVmomi) for each target VM
(found by instanceUuid, as the vSphere driver finds it), the counter named
``group.name.rollup`` (e.g. ``cpu.usage.average``, resolved through ``perfCounter``), instance ""
(the VM aggregate), ``intervalId`` = ``step_seconds`` (20 s is vCenter's real-time interval),
``maxSample`` = the points the window holds.

vcsim (govmomi 0.24.2) serves QueryPerf with synthetic samples (a recorded pattern per counter
with Gaussian noise, the same for every VM), which is enough to exercise the protocol and the
judgement, not to simulate a sick VM: tests that need a bad canary use CloudWatch on moto."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qlrf.remediation.canary.config import MetricSpec
from qlrf.remediation.canary.judge import Series
from qlrf.remediation.canary.metrics import MetricSourceError, Window


class VspherePerfSource:
    """``si``: a connected pyVmomi ServiceInstance."""

    def __init__(self, si: Any):
        self.si = si
        self._counters: dict[str, int] | None = None

    def counter_id(self, name: str) -> int:
        if self._counters is None:
            perf = self.si.RetrieveContent().perfManager
            self._counters = {f"{c.groupInfo.key}.{c.nameInfo.key}.{c.rollupType}": c.key for c in perf.perfCounter}
        try:
            return self._counters[name]
        except KeyError:
            raise MetricSourceError(f"vSphere has no performance counter {name!r} (group.name.rollup, "
                                    "e.g. cpu.usage.average)") from None

    def fetch(self, metric: MetricSpec, targets: Sequence[str], window: Window) -> Mapping[str, Series]:
        from pyVmomi import vim

        content = self.si.RetrieveContent()
        counter = self.counter_id(metric.metric)
        ids = list(dict.fromkeys(targets))
        vms = {t: content.searchIndex.FindByUuid(None, t, True, True) for t in ids}
        specs, order = [], []
        span = (window.end - window.start).total_seconds()
        for target, vm in vms.items():
            if vm is None:
                continue  # no VM, no points: the judge names the target as missing
            specs.append(vim.PerformanceManager.QuerySpec(
                entity=vm, metricId=[vim.PerformanceManager.MetricId(counterId=counter, instance="")],
                startTime=window.start, endTime=window.end, intervalId=window.step_seconds,
                maxSample=max(1, int(span // window.step_seconds)),
            ))
            order.append(target)
        if not specs:
            return {}
        try:
            answers = content.perfManager.QueryPerf(querySpec=specs)
        except Exception as exc:  # a vmodl fault: name the counter
            raise MetricSourceError(f"vSphere QueryPerf {metric.metric}: {exc}") from exc
        out: dict[str, Series] = {}
        for target, answer in zip(order, answers, strict=True):
            times = [s.timestamp.timestamp() for s in answer.sampleInfo]
            values = next((list(v.value) for v in answer.value if v.id.counterId == counter), [])
            out[target] = Series.of(list(zip(times, [float(v) for v in values], strict=True)))
        return out


__all__ = ["VspherePerfSource"]
