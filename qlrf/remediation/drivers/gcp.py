"""GCP execution driver (google-cloud-compute, REST transport): managed instance groups.

- ``prepare``: reads each MIG (zonal when ``region`` is a zone such as ``europe-west4-a``, else
  regional), refuses one already mid-canary (more than one version), reads its instance template
  (global or regional) and inserts a copy named ``<old name>-q<plan hash>`` whose boot disk's
  ``sourceImage`` is the golden image (an existing copy with that name and image is reused).
- ``run_wave``: the first wave that touches a MIG patches it to the new template
  (``versions=[{instanceTemplate: new}]``) with an ``OPPORTUNISTIC`` update policy (``minimalAction``
  REPLACE, ``replacementMethod`` RECREATE so instance names survive, ``maxSurge`` 0,
  ``maxUnavailable`` = the plan's ``max_unavailable``): a PROACTIVE policy would let the MIG roll
  every instance past the canary's health gate. The wave's share of instances still on another
  version is then updated explicitly with ``applyUpdatesToInstances``, ``max_unavailable`` at a
  time; every operation is waited for (zone/region/global operations ``get`` until ``DONE``).
- ``health``: ``listManagedInstances``: each instance the plan updated must show
  ``currentAction`` NONE, ``instanceStatus`` RUNNING and the new template as its version; the MIG
  passes with ``min_healthy_percent`` of them.
- ``rollback``: patch the MIG back to the previous template and apply it to the updated instances.

Standalone GCE instances are not handled here (the plan is refused in ``prepare``): see ``gcp_instance.py``.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from qlrf.envparse import environ
from qlrf.inventory.connectors.gcp import GcpConfig, make_retry
from qlrf.inventory.connectors.gcp import config_from_env as _gcp_from_env
from qlrf.inventory.connectors.gcp.sessions import make_credentials as connector_credentials
from qlrf.remediation.calls import CallRecorder, CloudCall
from qlrf.remediation.drivers import DriverError, chunks, group_health, group_quota, groups_through
from qlrf.remediation.executor import HealthReport
from qlrf.remediation.plans import PatchPlan

WRITE_SCOPES = ("https://www.googleapis.com/auth/compute",)
GCE = "https://www.googleapis.com/compute/v1"
_ZONE = re.compile(r"^[a-z]+-[a-z]+\d+-[a-z]$")
_TEMPLATE_URL = re.compile(r"projects/(?P<project>[^/]+)/(?P<scope>global|regions/[^/]+)/instanceTemplates/(?P<name>[^/]+)$")


@dataclass
class GcpDriverConfig:
    gcp: GcpConfig = field(default_factory=GcpConfig)  # endpoint, credentials, API retry (the connector's)
    operation_timeout: float = 900.0  # per operation (template insert, patch, applyUpdates)
    operation_poll_initial: float = 1.0  # first wait between operation polls (then x1.5, up to the maximum)
    operation_poll_maximum: float = 10.0


def config_from_env(env: Mapping[str, str] | None = None) -> GcpDriverConfig:
    """The connector's variables (GOOGLE_APPLICATION_CREDENTIALS, QLRF_GCP_ENDPOINT, ...) plus
    QLRF_GCP_OPERATION_POLL_SECONDS. Read when called, never at import."""
    env = environ(env)
    config = GcpDriverConfig(gcp=_gcp_from_env(env))
    if env.get("QLRF_GCP_OPERATION_POLL_SECONDS"):
        config.operation_poll_initial = float(env["QLRF_GCP_OPERATION_POLL_SECONDS"])
    return config


def make_credentials(config: GcpConfig) -> Any:
    """Credentials with the read-write compute scope (the connector asks for read-only)."""
    return connector_credentials(config, scopes=WRITE_SCOPES)


def image_url(ref: str) -> str:
    """A full image URL from a plan's image_ref (a URL or ``projects/p/global/images[/family]/x``)."""
    if ref.startswith("https://"):
        return ref
    if ref.startswith("projects/"):
        return f"{GCE}/{ref}"
    raise DriverError(f"{ref!r} is not a GCE image URL or projects/<p>/global/images/<name> path")


def _tail(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _same(a: str, b: str) -> bool:
    """Two resource links name the same resource (full URL or relative path)."""
    strip = lambda u: u.split("/compute/v1/", 1)[-1].strip("/")  # noqa: E731
    return strip(a) == strip(b)


@dataclass
class _Mig:
    project: str
    location: str
    zonal: bool
    name: str
    previous_template: str
    rollback_template: str
    new_template: str = ""
    switched: bool = False
    updated: list[str] = field(default_factory=list)  # instance URLs the plan moved to new_template
    by_wave: dict[str, list[str]] = field(default_factory=dict)  # wave index -> instance URLs it updated


class GcpDriver:
    def __init__(self, config: GcpDriverConfig | None = None, recorder: CallRecorder | None = None):
        self.config = config or GcpDriverConfig()
        self.recorder = recorder or CallRecorder()
        self._credentials: Any = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.migs: dict[str, _Mig] = {}
        self.golden = ""

    # -- state (qlrf.remediation.journal) ---------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """The MIGs' previous, new and rollback instance templates and the instances updated, as JSON."""
        return {"golden": self.golden, "migs": {n: asdict(m) for n, m in self.migs.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        self.golden = state["golden"]
        self.migs = {n: _Mig(**m) for n, m in state["migs"].items()}

    # -- plumbing ---------------------------------------------------------------------------------
    def client(self, name: str) -> Any:
        with self._lock:
            if name not in self._clients:
                from google.api_core.client_options import ClientOptions
                from google.cloud import compute_v1

                if self._credentials is None:
                    self._credentials = make_credentials(self.config.gcp)
                endpoint = self.config.gcp.api_endpoint
                self._clients[name] = getattr(compute_v1, name)(
                    transport="rest",
                    credentials=self._credentials,
                    client_options=ClientOptions(api_endpoint=endpoint) if endpoint else None,
                )
            return self._clients[name]

    def _call(self, method: Any, **kwargs: Any) -> Any:
        return method(retry=make_retry(self.config.gcp), timeout=self.config.gcp.timeout, **kwargs)

    def _done(self, operation: Any, what: str) -> None:
        """Wait for a compute operation through the zone/region/global operations API until DONE.

        (The SDK's own ExtendedOperation.result() polls with an operations client that ignores the
        configured api_endpoint, so it cannot be pointed at another endpoint; this polls explicitly.)
        """
        from google.cloud import compute_v1

        op = getattr(operation, "_extended_operation", operation)
        project = op.self_link.split("/projects/", 1)[1].split("/", 1)[0] if op.self_link else ""
        if op.zone:
            get = lambda: self._call(self.client("ZoneOperationsClient").get, project=project,  # noqa: E731
                                     zone=_tail(op.zone), operation=op.name)
        elif op.region:
            get = lambda: self._call(self.client("RegionOperationsClient").get, project=project,  # noqa: E731
                                     region=_tail(op.region), operation=op.name)
        else:
            get = lambda: self._call(self.client("GlobalOperationsClient").get, project=project,  # noqa: E731
                                     operation=op.name)
        deadline = time.monotonic() + self.config.operation_timeout
        delay = self.config.operation_poll_initial
        while op.status != compute_v1.Operation.Status.DONE:
            if time.monotonic() >= deadline:
                raise DriverError(f"{what}: operation {op.name} not done after {self.config.operation_timeout:g}s")
            time.sleep(delay)
            delay = min(self.config.operation_poll_maximum, delay * 1.5)
            op = get()
        if op.error and op.error.errors:
            first = op.error.errors[0]
            raise DriverError(f"{what}: operation {op.name} failed: {first.code}: {first.message}")

    def _igm_client(self, m: _Mig) -> tuple[Any, dict[str, str]]:
        if m.zonal:
            return self.client("InstanceGroupManagersClient"), {"project": m.project, "zone": m.location}
        return self.client("RegionInstanceGroupManagersClient"), {"project": m.project, "region": m.location}

    def _get_template(self, url: str) -> Any:
        hit = _TEMPLATE_URL.search(url)
        if not hit:
            raise DriverError(f"{url!r} is not an instance template URL")
        if hit["scope"] == "global":
            return self._call(self.client("InstanceTemplatesClient").get, project=hit["project"], instance_template=hit["name"])
        return self._call(self.client("RegionInstanceTemplatesClient").get, project=hit["project"],
                          region=hit["scope"].split("/")[1], instance_template=hit["name"])

    # -- prepare ----------------------------------------------------------------------------------
    def prepare(self, plan: PatchPlan) -> dict[str, Any]:
        from google.api_core import exceptions as gexc

        self.golden = image_url(plan.spec.to_image.image_ref)
        if plan.spec.targets.instances:
            raise DriverError("standalone GCE instances are not supported by the GCP driver (managed instance groups only)")
        suffix = "q" + plan.compute_hash()[7:15]
        details: dict[str, Any] = {}
        for target in plan.spec.targets.groups:
            if target.platform != "gcp" or target.kind != "mig":
                raise DriverError(f"group {target.name!r}: the GCP driver handles kind mig on gcp")
            m = _Mig(target.account, target.region, bool(_ZONE.match(target.region)), target.name, "", "")
            client, where = self._igm_client(m)
            igm = self._call(client.get, instance_group_manager=m.name, **where)
            if len(igm.versions) > 1:
                raise DriverError(f"MIG {m.name} already runs {len(igm.versions)} versions (an update in flight)")
            m.previous_template = igm.versions[0].instance_template if igm.versions else igm.instance_template
            rollback = plan.spec.rollback
            m.rollback_template = (
                rollback.image_ref if rollback.strategy == "previous_instance_template" and rollback.image_ref
                and "/instanceTemplates/" in rollback.image_ref else m.previous_template
            )
            tpl = self._get_template(m.previous_template)
            hit = _TEMPLATE_URL.search(m.previous_template)
            assert hit is not None
            new_name = f"{tpl.name[: 62 - len(suffix)].rstrip('-')}-{suffix}"
            boot = [d for d in tpl.properties.disks if d.boot]
            if not boot:
                raise DriverError(f"instance template {tpl.name} has no boot disk")
            boot[0].initialize_params.source_image = self.golden
            tpl.name = new_name
            tpl.description = f"qlrf plan {plan.metadata.id}: {plan.spec.to_image.version}"
            for output_only in ("id", "self_link", "creation_timestamp", "kind"):
                with contextlib.suppress(AttributeError, KeyError):
                    delattr(tpl, output_only)
            new_url = f"{GCE}/projects/{hit['project']}/{hit['scope']}/instanceTemplates/{new_name}"
            try:
                op = self.recorder.send(
                    CloudCall("gcp", "instanceTemplates", "insert", new_url, {"sourceImage": self.golden}),
                    lambda hit=hit, tpl=tpl: self._insert_template(hit, tpl),
                )
                if op is not None:
                    self._done(op, f"creating instance template {new_name}")
                reused = False
            except gexc.Conflict:
                existing = self._get_template(new_url)
                image = next((d.initialize_params.source_image for d in existing.properties.disks if d.boot), "")
                if not _same(image, self.golden):
                    raise DriverError(f"instance template {new_name} exists with another image ({image})") from None
                reused = True
            m.new_template = new_url
            self.migs[m.name] = m
            details[m.name] = {"previous_template": m.previous_template, "new_template": new_url,
                               "rollback_template": m.rollback_template, "reused": reused,
                               "target_size": igm.target_size}
        return details

    def _insert_template(self, hit: re.Match, tpl: Any) -> Any:
        if hit["scope"] == "global":
            return self._call(self.client("InstanceTemplatesClient").insert, project=hit["project"],
                              instance_template_resource=tpl)
        return self._call(self.client("RegionInstanceTemplatesClient").insert, project=hit["project"],
                          region=hit["scope"].split("/")[1], instance_template_resource=tpl)

    # -- waves ------------------------------------------------------------------------------------
    def _patch(self, m: _Mig, template: str, max_unavailable: int) -> None:
        from google.cloud import compute_v1

        policy = compute_v1.InstanceGroupManagerUpdatePolicy(
            type_="OPPORTUNISTIC",
            minimal_action="REPLACE",
            replacement_method="RECREATE",
            max_surge=compute_v1.FixedOrPercent(fixed=0),
            max_unavailable=compute_v1.FixedOrPercent(fixed=max_unavailable),
        )
        body = compute_v1.InstanceGroupManager(
            instance_template=template,
            versions=[compute_v1.InstanceGroupManagerVersion(instance_template=template, name="qlrf")],
            update_policy=policy,
        )
        client, where = self._igm_client(m)
        op = self.recorder.send(
            CloudCall("gcp", "instanceGroupManagers", "patch", m.name,
                      {"instanceTemplate": template, "maxUnavailable": max_unavailable, **where}),
            lambda: self._call(client.patch, instance_group_manager=m.name, instance_group_manager_resource=body, **where),
        )
        if op is not None:
            self._done(op, f"patching MIG {m.name} to {_tail(template)}")

    def _apply(self, m: _Mig, instances: list[str]) -> None:
        from google.cloud import compute_v1

        client, where = self._igm_client(m)
        fields = {"instances": instances, "minimal_action": "REPLACE", "most_disruptive_allowed_action": "REPLACE"}
        if m.zonal:
            body = {"instance_group_managers_apply_updates_request_resource":
                    compute_v1.InstanceGroupManagersApplyUpdatesRequest(**fields)}
        else:
            body = {"region_instance_group_managers_apply_updates_request_resource":
                    compute_v1.RegionInstanceGroupManagersApplyUpdatesRequest(**fields)}
        op = self.recorder.send(
            CloudCall("gcp", "instanceGroupManagers", "applyUpdatesToInstances", m.name,
                      {"instances": [_tail(i) for i in instances], **where}),
            lambda: self._call(client.apply_updates_to_instances, instance_group_manager=m.name, **body, **where),
        )
        if op is not None:
            self._done(op, f"updating {len(instances)} instance(s) of MIG {m.name}")

    def _managed(self, m: _Mig) -> list[Any]:
        client, where = self._igm_client(m)
        return sorted(self._call(client.list_managed_instances, instance_group_manager=m.name, **where),
                      key=lambda mi: mi.instance)

    def run_wave(self, plan: PatchPlan, index: int) -> dict[str, Any]:
        wave = plan.spec.waves[index]
        details: dict[str, Any] = {}
        for name in wave.groups:
            m = self.migs[name]
            if not m.switched:
                self._patch(m, m.new_template, plan.spec.max_unavailable)
                m.switched = True
            managed = self._managed(m)
            done = m.by_wave.setdefault(str(index), [])  # a resumed wave: what it updated before the crash
            if not self.recorder.dry_run:  # noted but on another version and idle: its update was never sent
                kept = {mi.instance for mi in managed
                        if not _same(mi.version.instance_template, m.new_template) and mi.current_action == "NONE"}
                done[:] = [i for i in done if i not in kept]
                m.updated = [i for i in m.updated if i not in kept]
            old = [mi.instance for mi in managed
                   if mi.instance not in m.updated  # (a dry run's updated instances still show the old template)
                   and not _same(mi.version.instance_template, m.new_template)]
            quota = group_quota(plan, index, name)
            pick = old if quota is None else old[: max(0, quota - len(done))]
            calls = chunks(pick, plan.spec.max_unavailable)
            for chunk in calls:
                done += chunk  # noted before the call: a checkpoint taken during it already counts it
                m.updated += chunk
                self._apply(m, chunk)
            details[name] = {"template": m.new_template, "updated": [_tail(u) for u in pick], "calls": len(calls)}
        return details

    def health(self, plan: PatchPlan, index: int) -> HealthReport:
        checked: dict[str, list[tuple[str, str | None]]] = {}
        for name in groups_through(plan, index):
            m = self.migs[name]
            by_url = {mi.instance: mi for mi in self._managed(m)}
            checked[name] = [(_tail(url), _problem(by_url.get(url), m.new_template)) for url in m.updated]
        return group_health(plan, checked, "updated")

    def members(self, plan: PatchPlan, index: int) -> tuple[list[str], list[str]]:
        """For canary analysis: (canary, baseline) instance ids (the numeric ids Cloud Monitoring
        labels ``instance_id``) of every MIG of the plan, on the new template or not."""
        changed: list[str] = []
        baseline: list[str] = []
        for m in self.migs.values():
            for mi in self._managed(m):
                on_new = bool(m.new_template) and _same(mi.version.instance_template, m.new_template)
                (changed if on_new else baseline).append(str(mi.id) if mi.id else _tail(mi.instance))
        return changed, baseline

    def rollback(self, plan: PatchPlan, waves_done: list[int]) -> dict[str, Any]:
        details: dict[str, Any] = {}
        errors: list[str] = []
        for name in groups_through(plan, max(waves_done)) if waves_done else []:
            m = self.migs.get(name)
            if m is None or not m.switched:
                continue
            try:
                self._patch(m, m.rollback_template, plan.spec.max_unavailable)
                updated = list(dict.fromkeys(m.updated))
                calls = chunks(updated, plan.spec.max_unavailable)
                for chunk in calls:
                    self._apply(m, chunk)
                details[name] = {"template": m.rollback_template, "reverted": [_tail(u) for u in updated],
                                 "calls": len(calls)}
            except Exception as exc:  # noqa: BLE001 - roll back the others, then report
                errors.append(f"MIG {name}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        if errors:
            raise DriverError("rollback incomplete: " + "; ".join(errors))
        return details


def _problem(mi: Any, new_template: str) -> str | None:
    """Why a managed instance does not count as healthy yet, or None."""
    if mi is None:
        return "not in the group"
    if mi.current_action != "NONE":
        return f"currentAction {mi.current_action}"
    if mi.instance_status != "RUNNING":
        return f"instanceStatus {mi.instance_status or 'unknown'}"
    if not _same(mi.version.instance_template, new_template):
        return f"version {_tail(mi.version.instance_template)}"
    return None


__all__ = ["GcpDriver", "GcpDriverConfig", "config_from_env", "image_url"]
