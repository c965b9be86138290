"""Metric endpoints for the Azure and GCP fakes (canary analysis), kept here so the two fakes only
route to them:

* Azure Monitor: ``GET {resource id}/providers/Microsoft.Insights/metrics`` (api-version,
  ``metricnames``, ``timespan=start/end``, ``interval=PT1M``, ``aggregation``) on the ARM fake,
  behind its token / api-version / fault checks. Every interval bucket of the timespan is
  answered; a bucket without points carries only ``timeStamp`` (Azure's "no data"). The VM
  platform metrics (``VM_METRICS``) always exist; any other name without points is 400
  ``BadRequest``; an unknown resource 404 ``ResourceNotFound``.
* Cloud Monitoring: ``GET /v3/projects/{p}/timeSeries`` (``filter`` = ``metric.type="..." AND
  resource.labels.instance_id="..."``, ``interval.startTime/endTime``,
  ``aggregation.alignmentPeriod``/``perSeriesAligner``, ``pageSize``/``pageToken``) on the GCE
  fake; points newest first, as the API answers; a missing filter is 400 ``INVALID_ARGUMENT``.

Seed with :func:`put_azure_metric` / :func:`put_gcp_metric` (raw points, aggregated on read).
"""

from __future__ import annotations

import re
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

AZURE_METRICS = "_monitor_metrics"  # fixture key: {resource id lower: {metric name: [(epoch, value)]}}
GCP_SERIES = "_monitoring_series"  # fixture key: {project: {(metric type, instance id): [(epoch, value)]}}
# platform metrics every VM / scale-set VM defines (answered empty when nothing was put), as Azure does
VM_METRICS = frozenset({"Percentage CPU", "Network In Total", "Network Out Total", "Disk Read Bytes", "Disk Write Bytes",
                        "Available Memory Bytes", "VmAvailabilityMetric"})
_AGG = {"average": statistics.fmean, "maximum": max, "minimum": min, "total": sum, "count": len}
_ALIGN = {"ALIGN_MEAN": statistics.fmean, "ALIGN_MAX": max, "ALIGN_MIN": min, "ALIGN_SUM": sum}
_FILTER = re.compile(r'^\s*metric\.type\s*=\s*"(?P<type>[^"]+)"\s+AND\s+resource\.labels\.instance_id\s*=\s*"(?P<id>[^"]+)"\s*$')


def put_azure_metric(fake: Any, resource_id: str, name: str, points: list[tuple[datetime, float]]) -> None:
    with fake.state.lock:
        store = fake.state.fixture.setdefault(AZURE_METRICS, {})
        store.setdefault(resource_id.lower(), {}).setdefault(name, []).extend((t.timestamp(), v) for t, v in points)


def put_gcp_metric(fake: Any, project: str, metric_type: str, instance_id: str, points: list[tuple[datetime, float]]) -> None:
    with fake.state.lock:
        store = fake.state.fixture.setdefault(GCP_SERIES, {}).setdefault(project, {})
        store.setdefault((metric_type, instance_id), []).extend((t.timestamp(), v) for t, v in points)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _duration(text: str) -> float | None:
    m = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", text or "")
    if not m or not any(m.groups()):
        return None
    h, mi, s = (int(g or 0) for g in m.groups())
    return float(timedelta(hours=h, minutes=mi, seconds=s).total_seconds())


def _buckets(points: list[tuple[float, float]], start: float, end: float, step: float) -> list[tuple[float, list[float]]]:
    out: list[tuple[float, list[float]]] = []
    at = start
    while at < end:
        out.append((at, [v for t, v in points if at <= t < at + step]))
        at += step
    return out


def azure_metrics(handler: Any, path: str, query: dict[str, str], rec: Any) -> None:
    """Answer an Azure Monitor metrics GET on the ARM fake (``handler`` is its request handler)."""
    resource = path[: -len("/providers/microsoft.insights/metrics")]
    state = handler.state
    if resource.lower() not in state.by_id:
        return handler._arm_error(404, "ResourceNotFound", f"The Resource '{resource}' was not found.", rec)
    names = [n for n in (query.get("metricnames") or "").split(",") if n]
    aggregation = (query.get("aggregation") or "Average").lower()
    step = _duration(query.get("interval", "PT1M"))
    try:
        start_text, end_text = query["timespan"].split("/")
        start, end = _parse(start_text), _parse(end_text)
    except (KeyError, ValueError):
        return handler._arm_error(400, "BadRequest", "Invalid timespan: expected start/end in ISO 8601", rec)
    if step is None or aggregation not in _AGG or not names:
        return handler._arm_error(400, "BadRequest", "metricnames, interval (ISO 8601) and aggregation are required", rec)
    with state.lock:
        stored = state.fixture.get(AZURE_METRICS, {}).get(resource.lower(), {})
        value = []
        for name in names:
            if name not in stored and name not in VM_METRICS:
                return handler._arm_error(400, "BadRequest", f"Failed to find metric configuration for provider: "
                                          f"Microsoft.Compute, resource Type: virtualMachines, metric: {name}, "
                                          f"Valid metrics: {', '.join(sorted(VM_METRICS | set(stored)))}", rec)
            data = [{"timeStamp": _iso(at), **({aggregation: _AGG[aggregation](vs)} if vs else {})}
                    for at, vs in _buckets(stored.get(name, []), start, end, step)]
            value.append({"id": f"{resource}/providers/Microsoft.Insights/metrics/{name}", "type": "Microsoft.Insights/metrics",
                          "name": {"value": name, "localizedValue": name}, "unit": "Unspecified",
                          "timeseries": [{"metadatavalues": [], "data": data}], "errorCode": "Success"})
    handler._send(200, {"cost": 0, "timespan": query["timespan"], "interval": query.get("interval"), "value": value,
                        "namespace": "Microsoft.Compute/virtualMachines"}, rec=rec)


def gcp_time_series(handler: Any, rec: Any) -> None:
    """Answer ``GET /v3/projects/{p}/timeSeries`` on the GCE fake."""
    m = re.fullmatch(r"/v3/projects/(?P<p>[^/]+)/timeSeries", rec.path)
    if not m or rec.method != "GET":
        return handler._error(404, f"No route for {rec.method} {rec.path}", "notFound", rec)
    project = m.group("p")
    rec.scope = project
    if project not in handler.state.fixture["projects"]:
        return handler._error(404, f"Project {project} not found", "notFound", rec, grpc_status="NOT_FOUND")
    q = {k: v[0] for k, v in rec.query.items()}
    f = _FILTER.match(q.get("filter", ""))
    if not f:
        return handler._error(400, "Field filter had an invalid value: expected metric.type and "
                              "resource.labels.instance_id", "badRequest", rec, grpc_status="INVALID_ARGUMENT")
    try:
        start, end = _parse(q["interval.startTime"]), _parse(q["interval.endTime"])
        step = float(q.get("aggregation.alignmentPeriod", "60s").rstrip("s"))
    except (KeyError, ValueError):
        return handler._error(400, "interval.startTime and interval.endTime (RFC 3339) are required", "badRequest", rec,
                              grpc_status="INVALID_ARGUMENT")
    align = _ALIGN.get(q.get("aggregation.perSeriesAligner", "ALIGN_MEAN"))
    if align is None:
        return handler._error(400, "unsupported perSeriesAligner", "badRequest", rec, grpc_status="INVALID_ARGUMENT")
    with handler.state.lock:
        raw = handler.state.fixture.get(GCP_SERIES, {}).get(project, {}).get((f.group("type"), f.group("id")), [])
        points = [{"interval": {"startTime": _iso(at), "endTime": _iso(at + step)}, "value": {"doubleValue": align(vs)}}
                  for at, vs in _buckets(raw, start, end, step) if vs]
    points.reverse()  # newest first
    series = [{"metric": {"type": f.group("type")}, "resource": {"type": "gce_instance",
               "labels": {"project_id": project, "instance_id": f.group("id")}},
               "metricKind": "GAUGE", "valueType": "DOUBLE", "points": points}] if points else []
    size = int(q.get("pageSize", "100000"))
    offset = int(q.get("pageToken", "0") or 0)
    page = series[offset : offset + size]
    body: dict[str, Any] = {"timeSeries": page} if page else {}
    if offset + size < len(series):
        body["nextPageToken"] = str(offset + size)
    handler._send(200, body, rec)


__all__ = ["azure_metrics", "gcp_time_series", "put_azure_metric", "put_gcp_metric"]
