"""Canary metrics from AWS CloudWatch: ``GetMetricData``, one query per target (dimension
``metric.dimension`` = the target id, ``InstanceId`` by default), ``metric.statistic`` over
``step_seconds`` periods, up to 500 queries a call, paged with NextToken."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qlrf.remediation.canary.config import MetricSpec
from qlrf.remediation.canary.judge import Series
from qlrf.remediation.canary.metrics import MetricSourceError, Window

MAX_QUERIES = 500  # GetMetricData's limit per call


class CloudWatchSource:
    """``client``: a boto3 CloudWatch client for the targets' region."""

    def __init__(self, client: Any):
        self.client = client

    @classmethod
    def for_region(cls, region: str, *, endpoint_url: str | None = None, session: Any = None) -> CloudWatchSource:
        import boto3

        session = session or boto3.Session()
        return cls(session.client("cloudwatch", region_name=region, endpoint_url=endpoint_url))

    def fetch(self, metric: MetricSpec, targets: Sequence[str], window: Window) -> Mapping[str, Series]:
        ids = list(dict.fromkeys(targets))
        points: dict[str, list[tuple[float, float]]] = {t: [] for t in ids}
        for offset in range(0, len(ids), MAX_QUERIES):
            chunk = ids[offset : offset + MAX_QUERIES]
            by_query = {f"m{n}": target for n, target in enumerate(chunk)}
            queries = [{
                "Id": qid,
                "MetricStat": {
                    "Metric": {"Namespace": metric.namespace, "MetricName": metric.metric,
                               "Dimensions": [{"Name": metric.dimension, "Value": target}]},
                    "Period": window.step_seconds,
                    "Stat": metric.statistic,
                },
                "ReturnData": True,
            } for qid, target in by_query.items()]
            token: str | None = None
            while True:
                kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": window.start, "EndTime": window.end,
                                          "ScanBy": "TimestampAscending"}
                if token:
                    kwargs["NextToken"] = token
                try:
                    resp = self.client.get_metric_data(**kwargs)
                except Exception as exc:  # botocore ClientError and friends: name the metric
                    raise MetricSourceError(f"CloudWatch GetMetricData {metric.namespace}/{metric.metric}: {exc}") from exc
                for result in resp.get("MetricDataResults", []):
                    target = by_query.get(result["Id"])
                    if target is not None:
                        points[target] += [(t.timestamp(), float(v)) for t, v in zip(result["Timestamps"], result["Values"],
                                                                                      strict=True)]
                token = resp.get("NextToken")
                if not token:
                    break
        return {t: Series.of(p) for t, p in points.items()}


__all__ = ["CloudWatchSource"]
