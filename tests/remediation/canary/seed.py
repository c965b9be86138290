"""Seed CloudWatch (moto) with per-instance metric points, as the CloudWatch agent would."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
