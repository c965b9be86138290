"""The analyst the service uses (Dagster execution job, ``qlrf plan execute``): configured from the
plan and the environment, so a plan whose spec (or whose environment in the remediation policy)
asks for canary analysis gets it on every execution path, and a plan that does not changes nothing.

Sources come from the environment the drivers already read, built only for the sources a config
names: ``cloudwatch`` for the region of the plan's first target (boto3's chain, AWS_ENDPOINT_URL),
``azure_monitor`` from the Azure connector's variables (AZURE_*, QLRF_AZURE_ENDPOINT,
QLRF_AZURE_CA_BUNDLE), ``cloud_monitoring`` for the project of the plan's first target with the GCP
connector's credentials (QLRF_GCP_MONITORING_ENDPOINT points it elsewhere than
monitoring.googleapis.com), ``http_probe`` from the config's ``probe`` section. ``vsphere`` needs a vCenter session and is not built here: a policy that names it on
this path gets an inconclusive analysis naming the missing source (pass a VspherePerfSource to
CanaryAnalyst directly). A source that cannot be built is that metric's named error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from qlrf.envparse import environ
from qlrf.remediation.canary.analyst import CanaryAnalysis, CanaryAnalyst
from qlrf.remediation.canary.config import CanaryConfig, resolve_config
from qlrf.remediation.canary.metrics import MetricSource, MetricSourceError

ENV_GCP_MONITORING = "QLRF_GCP_MONITORING_ENDPOINT"


class _Unavailable:
    """A source that could not be built: every fetch names why."""

    def __init__(self, why: str):
        self.why = why

    def fetch(self, metric: Any, targets: Any, window: Any) -> Any:
        raise MetricSourceError(self.why)


def _first_target(plan: Any) -> Any:
    targets = plan.spec.targets
    return (targets.groups or targets.instances)[0]


def build_source(name: str, plan: Any, config: CanaryConfig, env: Mapping[str, str]) -> MetricSource | None:
    target = _first_target(plan)
    if name == "cloudwatch":
        from qlrf.remediation.canary.sources.cloudwatch import CloudWatchSource

        return CloudWatchSource.for_region(target.region, endpoint_url=env.get("AWS_ENDPOINT_URL") or None)
    if name == "azure_monitor":
        from qlrf.inventory.connectors.azure import config_from_env as azure_from_env
        from qlrf.remediation.canary.sources.azure_monitor import AzureMonitorSource

        return AzureMonitorSource.from_config(azure_from_env(env))
    if name == "cloud_monitoring":
        from qlrf.inventory.connectors.gcp import config_from_env as gcp_from_env
        from qlrf.inventory.connectors.gcp.sessions import make_credentials
        from qlrf.remediation.canary.sources.cloud_monitoring import MONITORING, CloudMonitoringSource

        creds = make_credentials(gcp_from_env(env), scopes=("https://www.googleapis.com/auth/monitoring.read",))
        return CloudMonitoringSource(target.account, creds, endpoint=env.get(ENV_GCP_MONITORING) or MONITORING)
    if name == "http_probe" and config.probe is not None:
        from qlrf.remediation.canary.sources.http_probe import HttpProbeSource

        p = config.probe
        return HttpProbeSource(p.url_template, samples=p.samples, interval_seconds=p.interval_seconds,
                               timeout_seconds=p.timeout_seconds)
    return None


class EnvAnalyst:
    """An :class:`~qlrf.remediation.canary.analyst.Analyst` that reads the remediation policy and
    builds its sources when a plan needs them (never at construction: nothing is read at import)."""

    def __init__(self, *, policy: Any = None, env: Mapping[str, str] | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._policy, self._env, self.now = policy, env, now

    def policy(self) -> Any:
        if self._policy is None:
            from qlrf.remediation.policy import RemediationPolicy

            self._policy = RemediationPolicy.load()
        return self._policy

    def __call__(self, plan: Any, index: int, driver: Any) -> CanaryAnalysis | None:
        config = resolve_config(plan, self.policy())
        if config is None:
            return None
        env = environ(self._env)
        sources: dict[str, MetricSource] = {}
        for name in sorted({m.source for m in config.metrics}):
            try:
                source = build_source(name, plan, config, env)
            except Exception as exc:  # noqa: BLE001 - named in the verdict, never a pass
                source = _Unavailable(f"{name} source unavailable: {type(exc).__name__}: {exc}")
            if source is not None:
                sources[name] = source
        return CanaryAnalyst(sources, policy=self.policy(), now=self.now)(plan, index, driver)


__all__ = ["ENV_GCP_MONITORING", "EnvAnalyst", "build_source"]
