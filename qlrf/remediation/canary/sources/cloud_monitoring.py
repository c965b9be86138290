"""Canary metrics from Google Cloud Monitoring: ``GET /v3/projects/{p}/timeSeries`` with
``filter=metric.type="<metric>" AND resource.labels.instance_id="<id>"``, the window as
``interval.startTime/endTime``, ``aggregation.alignmentPeriod=<step>s`` and
``aggregation.perSeriesAligner=ALIGN_<statistic>`` (MEAN for Average), paged with pageToken.

google-cloud-monitoring is not installed here, so this is a small typed client over the documented
REST shape on google-auth's AuthorizedSession (the credentials of the GCP connector and driver).
Answer shape: ``{"timeSeries": [{"resource": {"labels": {"instance_id": ..}}, "points":
[{"interval": {"endTime": t}, "value": {"doubleValue": v} | {"int64Value": "v"}}]}],
"nextPageToken": ..}``. Targets are GCE instance ids (numeric strings)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from qlrf.remediation.canary.config import MetricSpec
from qlrf.remediation.canary.judge import Series
from qlrf.remediation.canary.metrics import MetricSourceError, Window

MONITORING = "https://monitoring.googleapis.com"
ALIGNERS = {"average": "ALIGN_MEAN", "mean": "ALIGN_MEAN", "maximum": "ALIGN_MAX", "max": "ALIGN_MAX",
            "minimum": "ALIGN_MIN", "min": "ALIGN_MIN", "sum": "ALIGN_SUM", "rate": "ALIGN_RATE"}


def _rfc3339(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


class CloudMonitoringSource:
    def __init__(self, project: str, credentials: Any, *, endpoint: str = MONITORING, timeout: float = 30.0):
        from google.auth.transport.requests import AuthorizedSession

        self.project, self.endpoint, self.timeout = project, endpoint.rstrip("/"), timeout
        self._session = AuthorizedSession(credentials)

    def fetch(self, metric: MetricSpec, targets: Sequence[str], window: Window) -> Mapping[str, Series]:
        aligner = ALIGNERS.get(metric.statistic.lower())
        if aligner is None:
            raise MetricSourceError(f"Cloud Monitoring: statistic {metric.statistic!r} has no aligner "
                                    f"(expected one of {', '.join(sorted(ALIGNERS))})")
        return {t: self._one(metric, aligner, t, window) for t in dict.fromkeys(targets)}

    def _one(self, metric: MetricSpec, aligner: str, instance_id: str, window: Window) -> Series:
        url = f"{self.endpoint}/v3/projects/{self.project}/timeSeries"
        params: dict[str, Any] = {
            "filter": f'metric.type="{metric.metric}" AND resource.labels.instance_id="{instance_id}"',
            "interval.startTime": _rfc3339(window.start), "interval.endTime": _rfc3339(window.end),
            "aggregation.alignmentPeriod": f"{window.step_seconds}s", "aggregation.perSeriesAligner": aligner,
        }
        points: list[tuple[float, float]] = []
        while True:
            try:
                resp = self._session.get(url, params=params, timeout=self.timeout)
            except Exception as exc:
                raise MetricSourceError(f"Cloud Monitoring {metric.metric} for {instance_id}: {exc}") from exc
            if resp.status_code >= 400:
                try:
                    why = resp.json().get("error", {}).get("message")
                except ValueError:
                    why = resp.text[:200]
                raise MetricSourceError(f"Cloud Monitoring {metric.metric} for {instance_id}: HTTP {resp.status_code} {why}")
            doc = resp.json()
            for series in doc.get("timeSeries", []):
                for point in series.get("points", []):
                    value = point.get("value", {})
                    number = value.get("doubleValue", value.get("int64Value"))
                    if number is None:
                        continue
                    at = datetime.fromisoformat(point["interval"]["endTime"].replace("Z", "+00:00"))
                    points.append((at.timestamp(), float(number)))
            token = doc.get("nextPageToken")
            if not token:
                break
            params["pageToken"] = token
        return Series.of(points)


__all__ = ["CloudMonitoringSource"]
