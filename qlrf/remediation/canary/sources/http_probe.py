"""A pluggable HTTP health probe as a canary metric source: GET ``url_template`` (``{target}``
replaced by the target's address) for every target, ``samples`` rounds ``interval_seconds`` apart,
canary and baseline in the same rounds. Two metrics per answer:

- ``latency_ms``: time to the full response (a timeout counts as ``timeout_seconds``);
- ``error``: 1 for a status >= 400, a refused connection or a timeout, else 0.

Why probe at all when the platform has metrics: the platform sees a VM that runs, the probe sees
a service that answers; a canary whose app fails to start passes CloudWatch and fails here.
The clock and the sleep are parameters (tests run rounds without waiting)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from qlrf.remediation.canary.config import MetricSpec
from qlrf.remediation.canary.judge import Series
from qlrf.remediation.canary.metrics import MetricSourceError, Window

METRICS = ("latency_ms", "error")


class HttpProbeSource:
    def __init__(
        self,
        url_template: str,
        *,
        samples: int = 12,
        interval_seconds: float = 5.0,
        timeout_seconds: float = 5.0,
        address_of: Callable[[str], str] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if "{target}" not in url_template:
            raise ValueError(f"http probe url_template must contain {{target}}, got {url_template!r}")
        if samples < 1:
            raise ValueError(f"http probe samples must be >= 1, got {samples}")
        self.url_template = url_template
        self.samples, self.interval, self.timeout = samples, interval_seconds, timeout_seconds
        self.address_of = address_of or (lambda target: target)
        self.clock, self.sleep = clock, sleep
        self._last: tuple[tuple[str, ...], Window, dict[str, dict[str, list[tuple[float, float]]]]] | None = None

    def fetch(self, metric: MetricSpec, targets: Sequence[str], window: Window) -> Mapping[str, Series]:
        if metric.metric not in METRICS:
            raise MetricSourceError(f"http probe has no metric {metric.metric!r}; expected one of {', '.join(METRICS)}")
        key = tuple(targets)
        if self._last is None or self._last[0] != key or self._last[1] != window:  # one probing per analysis
            self._last = (key, window, self._probe(key))
        return {t: Series.of(self._last[2][t][metric.metric]) for t in key}

    def _probe(self, targets: tuple[str, ...]) -> dict[str, dict[str, list[tuple[float, float]]]]:
        out: dict[str, dict[str, list[tuple[float, float]]]] = {t: {m: [] for m in METRICS} for t in targets}
        for round_ in range(self.samples):
            if round_:
                self.sleep(self.interval)
            at = self.clock()
            for target in targets:
                latency, error = self._get(self.url_template.format(target=self.address_of(target)))
                out[target]["latency_ms"].append((at, latency))
                out[target]["error"].append((at, error))
        return out

    def _get(self, url: str) -> tuple[float, float]:
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:  # noqa: S310 - configured probe URL
                resp.read()
                status: Any = resp.status
        except urllib.error.HTTPError as exc:
            exc.read()
            status = exc.code
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError):
            return self.timeout * 1000.0, 1.0
        return (time.perf_counter() - t0) * 1000.0, 1.0 if int(status) >= 400 else 0.0


__all__ = ["HttpProbeSource", "METRICS"]
