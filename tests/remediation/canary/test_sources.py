"""The metric sources through the real protocols: CloudWatch GetMetricData on moto (seeded with
put_metric_data), Azure Monitor and Cloud Monitoring REST against the in-repo fakes, vSphere
QueryPerf on vcsim, and the HTTP probe against a loopback http.server."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from qlrf.remediation.canary.config import MetricSpec, parse_canary
from qlrf.remediation.canary.judge import judge
from qlrf.remediation.canary.metrics import MetricSourceError, Window, collect
from qlrf.remediation.canary.sources.azure_monitor import AzureMonitorSource
from qlrf.remediation.canary.sources.cloud_monitoring import CloudMonitoringSource
from qlrf.remediation.canary.sources.cloudwatch import CloudWatchSource
from qlrf.remediation.canary.sources.http_probe import HttpProbeSource
from tests.fakes.monitoring import put_azure_metric, put_gcp_metric
from tests.remediation.canary.seed import put_cloudwatch

END = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)
WINDOW = Window(END - timedelta(minutes=15), END, 60)
MINUTES = [END - timedelta(minutes=15 - i) for i in range(15)]


def spec(source: str, name: str, **over) -> MetricSpec:
    return MetricSpec(name=name, source=source, metric=name, **over)


@pytest.mark.slow
def test_cloudwatch_get_metric_data_on_moto(tmp_path):
    from tests.servers.moto_server import start_moto_thread, use_loopback

    mp = pytest.MonkeyPatch()
    try:
        with start_moto_thread() as url:
            use_loopback(mp, url, str(tmp_path))
            cw = boto3.client("cloudwatch", region_name="eu-west-1", endpoint_url=url)
            put_cloudwatch(cw, "CPUUtilization", {"i-canary": 90.0, "i-base1": 40.0, "i-base2": 41.0}, MINUTES)
            source = CloudWatchSource.for_region("eu-west-1", endpoint_url=url)
            got = source.fetch(spec("cloudwatch", "CPUUtilization"), ["i-canary", "i-base1", "i-base2", "i-none"], WINDOW)
            assert len(got["i-canary"]) == 15 and len(got["i-none"]) == 0
            assert got["i-canary"].times[0] == MINUTES[0].timestamp() and set(got["i-base2"].values) == {41.0}

            cfg = parse_canary({"metrics": [{"name": "cpu", "source": "cloudwatch", "metric": "CPUUtilization"}],
                                "min_points": 10})
            data = collect(cfg, {"cloudwatch": source}, ["i-canary"], ["i-base1", "i-base2"], WINDOW)
            verdict = judge(cfg, data)
            assert verdict.verdict == "fail" and verdict.metrics[0].classification == "high"
            assert verdict.metrics[0].ratio == pytest.approx(90 / 40.5, rel=0.05)
            # a target without a single point is named as missing, never judged
            data = collect(cfg, {"cloudwatch": source}, ["i-canary", "i-none"], ["i-base1"], WINDOW)
            assert "missing: no points for canary target(s) i-none" in judge(cfg, data).reason
    finally:
        mp.undo()


@pytest.fixture()
def azure():
    from tests.fakes.azure_fake import start_azure_fake
    from tests.fakes.fixtures import azure_fixture

    fx = azure_fixture(subscriptions=1, vms_per_sub=3, vmss_uniform_size=0, snapshot_ratio=0)
    sub = next(iter(fx["subscriptions"]))
    vms = [vm["id"] for vm in fx["subscriptions"][sub]["virtualMachines"][:3]]
    with start_azure_fake(fx) as fake:
        yield fake, vms


def test_azure_monitor_metrics_rest_against_the_arm_fake(azure):
    fake, (canary, base1, base2) = azure
    for vm, value in ((canary, 30.0), (base1, 30.5), (base2, 29.5)):
        put_azure_metric(fake, vm, "Percentage CPU", [(t, value + (i % 3)) for i, t in enumerate(MINUTES) if i != 7 or vm != base2])
    source = AzureMonitorSource(fake.credential(), base_url=fake.base_url, connection_verify=fake.ca_path, retry_total=0)
    got = source.fetch(spec("azure_monitor", "Percentage CPU"), [canary, base1, base2], WINDOW)
    assert [len(got[v]) for v in (canary, base1, base2)] == [15, 15, 14]  # the empty bucket is a hole, not a zero
    (req,) = [r for r in fake.requests if r.path.lower().endswith("/metrics") and canary.lower() in r.path.lower()]
    assert req.param("interval") == "PT1M" and req.param("aggregation") == "Average"
    assert req.param("timespan") == "2026-11-28T22:45:00Z/2026-11-28T23:00:00Z"
    assert req.authorization == "Bearer fake-static-arm-token"

    cfg = parse_canary({"metrics": [{"name": "cpu", "source": "azure_monitor", "metric": "Percentage CPU"}]})
    assert judge(cfg, collect(cfg, {"azure_monitor": source}, [canary], [base1, base2], WINDOW)).verdict == "pass"
    with pytest.raises(MetricSourceError, match="HTTP 400 BadRequest: Failed to find metric configuration.*Requests Per Second"):
        source.fetch(spec("azure_monitor", "Requests Per Second"), [canary], WINDOW)


@pytest.fixture()
def gcp():
    from tests.fakes.fixtures import gcp_fixture
    from tests.fakes.gcp_fake import start_gcp_fake

    fx = gcp_fixture(projects=1, instances_per_project=3, zonal_mig_size=0, regional_mig_size=0, snapshot_ratio=0)
    project = next(iter(fx["projects"]))
    with start_gcp_fake(fx) as fake:
        yield fake, project


def test_cloud_monitoring_time_series_rest_against_the_gce_fake(gcp):
    from google.auth.credentials import AnonymousCredentials

    fake, project = gcp
    metric_type = "compute.googleapis.com/instance/cpu/utilization"
    put_gcp_metric(fake, project, metric_type, "111", [(t, 0.2) for t in MINUTES])
    put_gcp_metric(fake, project, metric_type, "222", [(t, 0.9) for t in MINUTES])
    source = CloudMonitoringSource(project, AnonymousCredentials(), endpoint=fake.base_url)
    got = source.fetch(spec("cloud_monitoring", metric_type), ["111", "222", "333"], WINDOW)
    assert len(got["111"]) == 15 and set(got["222"].values) == {0.9} and len(got["333"]) == 0
    assert list(got["111"].times) == sorted(got["111"].times)  # the API answers newest first
    req = next(r for r in fake.requests if r.path.endswith("/timeSeries"))
    assert req.param("aggregation.perSeriesAligner") == "ALIGN_MEAN" and req.param("aggregation.alignmentPeriod") == "60s"
    assert req.param("filter") == f'metric.type="{metric_type}" AND resource.labels.instance_id="111"'
    with pytest.raises(MetricSourceError, match="HTTP 404"):
        CloudMonitoringSource("no-such-project", AnonymousCredentials(), endpoint=fake.base_url).fetch(
            spec("cloud_monitoring", metric_type), ["111"], WINDOW)


class _Health(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True

    def do_GET(self):  # noqa: N802
        sick = self.path.endswith("/i-sick")
        body = b'{"status": "down"}' if sick else b'{"status": "ok"}'
        self.send_response(503 if sick else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_http_probe_against_a_loopback_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        ticks = iter(range(1_795_900_000, 1_795_900_000 + 1000, 5))
        slept: list[float] = []
        probe = HttpProbeSource(f"http://127.0.0.1:{server.server_port}/health/{{target}}", samples=12,
                                interval_seconds=5, timeout_seconds=2, clock=lambda: float(next(ticks)), sleep=slept.append)
        cfg = parse_canary({"min_points": 10, "step_seconds": 5, "probe": {"url_template": "http://x/{target}"}, "metrics": [
            {"name": "errors", "source": "http_probe", "metric": "error", "critical": True, "effect": "shift",
             "allowed_increase": 0.1},
            {"name": "latency", "source": "http_probe", "metric": "latency_ms", "effect": "shift", "allowed_increase": 200}]})
        data = collect(cfg, {"http_probe": probe}, ["i-sick"], ["i-a", "i-b"], WINDOW)
        assert slept == [5] * 11  # 12 rounds, both metrics from the same probing
        assert data["errors"].canary["i-sick"].values == (1.0,) * 12 and set(data["errors"].baseline["i-a"].values) == {0.0}
        assert data["latency"].canary["i-sick"].times == data["latency"].baseline["i-a"].times  # same rounds
        verdict = judge(cfg, data)
        assert verdict.verdict == "fail" and verdict.reason.startswith("critical metric(s) failed: errors (high")
        with pytest.raises(ValueError, match="must contain"):
            HttpProbeSource("http://127.0.0.1/health")
        refused = HttpProbeSource("http://127.0.0.1:9/{target}", samples=1, timeout_seconds=0.5)
        assert refused.fetch(cfg.metrics[0], ["i-x"], WINDOW)["i-x"].values == (1.0,)
    finally:
        server.shutdown()
        server.server_close()


def test_a_source_that_is_missing_or_fails_is_named_not_raised():
    cfg = parse_canary({"metrics": [{"name": "cpu", "source": "vsphere", "metric": "cpu.usage.average"}]})
    data = collect(cfg, {}, ["a"], ["b"], WINDOW)
    assert data["cpu"].error == "no vsphere metric source is configured"

    class Broken:
        def fetch(self, metric, targets, window):
            raise MetricSourceError("vSphere QueryPerf cpu.usage.average: NotAuthenticated")

    data = collect(cfg, {"vsphere": Broken()}, ["a"], ["b"], WINDOW)
    assert "NotAuthenticated" in data["cpu"].error
    assert judge(cfg, data).verdict == "inconclusive"

