"""Canary metrics from Azure Monitor: ``GET {resource id}/providers/Microsoft.Insights/metrics``
(api-version 2023-10-01, ``metricnames``, ``timespan=start/end``, ``interval=PT..``,
``aggregation``), one call per target (the target id is the VM's or scale-set VM's ARM id).

azure-monitor-query is not installed here, so this is a small typed client over the documented
REST shape on azure-core's pipeline (bearer-token policy, retries, TLS verification) with the same
credential the inventory connector and the Azure driver use (``make_credential(AzureConfig)``).
Answer shape: ``{"value": [{"name": {"value": m}, "timeseries": [{"data": [{"timeStamp": t,
"average": v}, ...]}]}]}``; a point without the aggregation's field is a hole (Azure's "no data")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from qlrf.remediation.canary.config import MetricSpec
from qlrf.remediation.canary.judge import Series
from qlrf.remediation.canary.metrics import MetricSourceError, Window

API_VERSION = "2023-10-01"
ARM = "https://management.azure.com"


def iso_duration(seconds: int) -> str:
    return f"PT{seconds // 60}M" if seconds % 60 == 0 else f"PT{seconds}S"


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


class AzureMonitorSource:
    """``credential``: an azure-core TokenCredential; ``base_url``: ARM (a fake in tests)."""

    def __init__(self, credential: Any, *, base_url: str = ARM, scope: str | None = None,
                 connection_verify: bool | str = True, retry_total: int = 3):
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RetryPolicy

        self.base_url = base_url.rstrip("/")
        policies = [RetryPolicy(retry_total=retry_total, retry_backoff_factor=0.5),
                    BearerTokenCredentialPolicy(credential, scope or f"{self.base_url}/.default")]
        self._client = PipelineClient(self.base_url, policies=policies, connection_verify=connection_verify)

    @classmethod
    def from_config(cls, config: Any, credential: Any = None) -> AzureMonitorSource:
        """From the connector's AzureConfig (its endpoint, CA bundle and credential)."""
        from qlrf.inventory.connectors.azure.sessions import make_credential

        return cls(credential or make_credential(config), base_url=config.base_url or ARM, scope=config.scope(),
                   connection_verify=config.connection_verify, retry_total=min(config.retry_total, 3))

    def fetch(self, metric: MetricSpec, targets: Sequence[str], window: Window) -> Mapping[str, Series]:
        return {t: self._one(metric, t, window) for t in dict.fromkeys(targets)}

    def _one(self, metric: MetricSpec, resource_id: str, window: Window) -> Series:
        from azure.core.rest import HttpRequest

        aggregation = metric.statistic.lower()
        params = {"api-version": API_VERSION, "metricnames": metric.metric,
                  "timespan": f"{_iso(window.start)}/{_iso(window.end)}",
                  "interval": iso_duration(window.step_seconds), "aggregation": metric.statistic}
        url = f"{self.base_url}/{resource_id.strip('/')}/providers/Microsoft.Insights/metrics"
        try:
            resp = self._client.send_request(HttpRequest("GET", url, params=params))
        except Exception as exc:
            raise MetricSourceError(f"Azure Monitor {metric.metric} for {resource_id}: {exc}") from exc
        if resp.status_code >= 400:
            try:
                error = resp.json().get("error", {})
                why = f"{error.get('code')}: {error.get('message')}"
            except ValueError:
                why = resp.text()[:200]
            raise MetricSourceError(f"Azure Monitor {metric.metric} for {resource_id}: HTTP {resp.status_code} {why}")
        points: list[tuple[float, float]] = []
        for value in resp.json().get("value", []):
            for ts in value.get("timeseries", []):
                for point in ts.get("data", []):
                    if point.get(aggregation) is not None:
                        at = datetime.fromisoformat(point["timeStamp"].replace("Z", "+00:00"))
                        points.append((at.timestamp(), float(point[aggregation])))
        return Series.of(points)


__all__ = ["AzureMonitorSource", "iso_duration"]
