"""Loopback HTTP fake of the GCE ``compute/v1`` REST API for many projects.

Serves the JSON built by :func:`tests.fakes.fixtures.gcp_fixture` to the real
``google-cloud-compute`` clients (``transport="rest"``):

* ``GET /compute/v1/projects/{p}/aggregated/{instances|disks|instanceGroupManagers}``
  (``maxResults`` <= 500, ``pageToken``; every page lists every scope, empty scopes carry the
  ``NO_RESULTS_ON_PAGE`` warning, like GCE);
* ``GET .../zones/{z}/instances[/{name}]``, ``.../zones/{z}/disks[/{name}]``;
* ``GET .../global/images[/{name}]``, ``.../global/images/family/{family}``,
  ``.../global/snapshots[/{name}]``;
* ``POST .../{zones/z|regions/r}/instanceGroupManagers/{m}/listManagedInstances``.

Write side (for the remediation drivers), every change answering a ``compute#operation`` that reads
``RUNNING`` ``operation_polls`` times on ``.../{zones/z|regions/r|global}/operations/{op}``, then ``DONE``:

* ``GET`` / ``POST`` (insert) ``.../global/instanceTemplates[/{name}]`` and
  ``.../regions/{r}/instanceTemplates[/{name}]``; a template a MIG names but the fixture lacks is
  synthesised on first read from the MIG's members (machine type, boot disk image);
* ``GET`` / ``PATCH`` ``.../{zones/z|regions/r}/instanceGroupManagers/{m}`` (``versions``,
  ``instanceTemplate``, ``updatePolicy``, ``targetSize``; a ``PROACTIVE`` update policy updates
  every member at once);
* ``POST .../instanceGroupManagers/{m}/applyUpdatesToInstances`` (``instances`` as URLs or
  ``zones/z/instances/name``, or ``allInstances``): each member gets the MIG's current template,
  its boot disk the template's ``sourceImage``, status ``RUNNING``. ``listManagedInstances`` then
  reports each member's own version.
* standalone instances (stop/start, detachDisk/attachDisk, disks insert/delete):
  :mod:`tests.fakes.gcp_instances`;
* ``fake.set_instance_status(project, name, status)`` (e.g. ``STOPPING``) fails a health gate.
* DR drills: ``POST .../zones/{z}/disks`` (``sourceSnapshot``: a disk restored from a snapshot),
  ``POST .../zones/{z}/instances`` (booting such a disk; ``RUNNING`` at once), ``DELETE`` of either
  (an instance's ``autoDelete`` boot disk goes with it; a disk in use is refused 400);
  ``fake.exhaust_quota(project)`` answers ``instances.insert`` with 403 ``quotaExceeded``.

GCE behaviour reproduced: Google JSON error bodies (``{"error": {"code", "message", "errors",
"status", "details"}}``), 404 ``notFound`` for unknown resources/projects, 400 for
``maxResults`` > 500 or a bad ``pageToken``, simple ``filter`` expressions
(``field = value`` / ``field != value``, dotted paths such as ``labels.env``; anything else is
a 400 so a connector never silently gets unfiltered data).

Fault injection (from ``fixture["faults"]``, the ``start_gcp_fake`` keywords, or at run time):
``fake.fail(project, "permission" | "api_disabled" | "not_found")`` and
``fake.throttle(project, times=N, status=429|503)``.  Note that the client's *default* retry
only covers 503/504: a 429 surfaces as ``TooManyRequests`` unless the caller passes a retry.

The server, request recording and fault rules are :mod:`tests.fakes.base`'s. Every request is
recorded in ``fake.requests`` (:class:`~tests.fakes.base.RecordedRequest`; ``scope`` is the project).
"""

from __future__ import annotations

import base64
import contextlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.base import FakeHandler, HttpFake, RecordedRequest, scope_is
from tests.fakes.gcp_instances import instance_write_route

GCE = "https://www.googleapis.com/compute/v1"
MAX_RESULTS = 500

# aggregated collection -> (fixture list, item key, scope field, kind, permission)
_AGGREGATED = {
    "instances": (
        "instances",
        "instances",
        "zone",
        "compute#instanceAggregatedList",
        "compute.instances.list",
    ),
    "disks": ("disks", "disks", "zone", "compute#diskAggregatedList", "compute.disks.list"),
    "instanceGroupManagers": (
        "instanceGroupManagers",
        "instanceGroupManagers",
        None,
        "compute#instanceGroupManagerAggregatedList",
        "compute.instanceGroupManagers.list",
    ),
    # static external addresses (regional); a project without any has an empty list
    "addresses": ("addresses", "addresses", "region", "compute#addressAggregatedList", "compute.addresses.list"),
}
_ZONAL = {
    "instances": ("instances", "compute#instanceList", "compute.instances"),
    "disks": ("disks", "compute#diskList", "compute.disks"),
}
_GLOBAL = {
    "images": ("images", "compute#imageList", "compute.images"),
    "snapshots": ("snapshots", "compute#snapshotList", "compute.snapshots"),
}
_FILTER_RE = re.compile(
    r'^\s*\(?\s*(?P<field>[A-Za-z][\w.]*)\s*(?P<op>=|!=|eq|ne)\s*"?(?P<value>[^"()]*?)"?\s*\)?\s*$'
)


@dataclass
class GcpFakeState:
    fixture: dict[str, Any]
    lock: threading.RLock = field(default_factory=threading.RLock)
    # write side: (project, "global" | "regions/r", name) -> instance template
    templates: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    # instance selfLink -> the template its MIG gave it (members absent: the MIG's template)
    versions: dict[str, str] = field(default_factory=dict)
    # operation name -> {"body": operation, "polls": RUNNING answers left}
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    operation_polls: int = 1
    op_counter: int = 0


def _tail(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _scope_of(item: dict[str, Any]) -> str:
    if "zone" in item:
        return "zones/" + _tail(item["zone"])
    if "region" in item:
        return "regions/" + _tail(item["region"])
    return "global"


def _lookup(item: dict[str, Any], dotted: str) -> Any:
    cur: Any = item
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"rf-fake:{offset}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, off = raw.partition(":")
        return int(off) if prefix == "rf-fake" else None
    except (ValueError, UnicodeDecodeError):
        return None


def _igm_members(pdata: dict[str, Any], igm: dict[str, Any]) -> list[dict[str, Any]]:
    """A MIG's instances (their ``created-by`` metadata names it)."""
    created_by = f"projects/{pdata['number']}/{_scope_of(igm)}/instanceGroupManagers/{igm['name']}"
    out = []
    for inst in pdata["instances"]:
        meta = {i["key"]: i["value"] for i in inst.get("metadata", {}).get("items", [])}
        if meta.get("created-by") == created_by:
            out.append(inst)
    return out


def _boot_disk(pdata: dict[str, Any], inst: dict[str, Any]) -> dict[str, Any] | None:
    source = next((d.get("source") for d in inst.get("disks", []) if d.get("boot")), None)
    return next((d for d in pdata["disks"] if d["selfLink"] == source), None)


def _resolve_template(state: GcpFakeState, project: str, scope: str, name: str) -> dict[str, Any] | None:
    """A stored instance template, or one synthesised for a MIG that names it (None: unknown)."""
    key = (project, scope, name)
    if key in state.templates:
        return state.templates[key]
    url = f"{GCE}/projects/{project}/{scope}/instanceTemplates/{name}"
    pdata = state.fixture["projects"][project]
    igm = next((g for g in pdata["instanceGroupManagers"] if g.get("instanceTemplate") == url), None)
    if igm is None:
        return None
    members = _igm_members(pdata, igm)
    machine, image = "e2-medium", None
    if members:
        machine = _tail(members[0]["machineType"])
        disk = _boot_disk(pdata, members[0])
        image = disk.get("sourceImage") if disk else None
    tpl: dict[str, Any] = {
        "kind": "compute#instanceTemplate",
        "id": str(1000000000000000000 + len(state.templates)),
        "creationTimestamp": igm.get("creationTimestamp", "2026-01-01T00:00:00.000-08:00"),
        "name": name,
        "description": "synthesised by the fake from the MIG's members",
        "selfLink": url,
        "properties": {
            "machineType": machine,
            "disks": [
                {
                    "type": "PERSISTENT",
                    "mode": "READ_WRITE",
                    "boot": True,
                    "autoDelete": True,
                    "deviceName": "persistent-disk-0",
                    "initializeParams": {"sourceImage": image or "", "diskSizeGb": "20"},
                }
            ],
            "networkInterfaces": [{"network": f"{GCE}/projects/{project}/global/networks/default"}],
            "labels": {"role": "web"},
        },
    }
    if scope.startswith("regions/"):
        tpl["region"] = f"{GCE}/projects/{project}/{scope}"
    state.templates[key] = tpl
    return tpl


class _Handler(FakeHandler):
    server_version = "rf-gcp-fake/1.0"
    fake: GcpFake

    @property
    def state(self) -> GcpFakeState:
        return self.fake.state

    def _send(self, status: int, body: Any, rec: RecordedRequest) -> None:
        self.send_json(status, body, {"Vary": "Origin, X-Origin, Referer"}, content_type="application/json; charset=UTF-8")

    def _error(
        self,
        status: int,
        message: str,
        reason: str,
        rec: RecordedRequest,
        *,
        domain: str = "global",
        grpc_status: str | None = None,
        details: list[dict[str, Any]] | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        err_item = {"message": message, "domain": domain, "reason": reason, **(extra or {})}
        err: dict[str, Any] = {"code": status, "message": message, "errors": [err_item]}
        if grpc_status:
            err["status"] = grpc_status
        if details:
            err["details"] = details
        self._send(status, {"error": err}, rec)

    def _not_found(self, what: str, rec: RecordedRequest) -> None:
        self._error(404, f"The resource '{what}' was not found", "notFound", rec)

    # -- dispatch ------------------------------------------------------------------------
    def route(self, rec: RecordedRequest) -> None:
        rec.path = rec.path.rstrip("/")
        body: Any = None
        if rec.method != "GET":  # a body that is not JSON is answered 400 by the write routes
            body = None if rec.body_error is not None else ({} if rec.body is None else rec.body)
        self._dispatch(rec.method, rec, body)

    def _dispatch(self, method: str, rec: RecordedRequest, body: Any) -> None:
        path, query = rec.path, rec.query
        if path.startswith("/v3/"):  # Cloud Monitoring timeSeries.list, for canary analysis
            from tests.fakes.monitoring import gcp_time_series

            return gcp_time_series(self, rec)
        m = re.match(r"^/compute/v1/projects/(?P<project>[^/]+)(?P<rest>/.*)?$", path)
        if not m:
            return self._error(404, f"No route for {method} {path}", "notFound", rec)
        project, rest = m.group("project"), (m.group("rest") or "")
        rec.scope = project
        projects = self.state.fixture["projects"]
        number = projects.get(project, {}).get("number", "0")
        permission = self._permission(rest, method)

        throttle = self.fake.faults.take(rec, "throttle")
        if throttle is not None:
            if throttle.args["status"] == 503:
                return self._error(
                    503,
                    "The service is currently unavailable.",
                    "backendError",
                    rec,
                    grpc_status="UNAVAILABLE",
                )
            msg = (
                f"Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of "
                f"service 'compute.googleapis.com' for consumer 'project_number:{number}'."
            )
            return self._error(
                429,
                msg,
                "rateLimitExceeded",
                rec,
                domain="usageLimits",
                grpc_status="RESOURCE_EXHAUSTED",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "RATE_LIMIT_EXCEEDED",
                        "domain": "googleapis.com",
                        "metadata": {
                            "service": "compute.googleapis.com",
                            "consumer": f"projects/{number}",
                            "quota_metric": "compute.googleapis.com/read_requests",
                            "quota_limit": "ReadRequestsPerMinutePerProject",
                        },
                    }
                ],
            )

        fail = self.fake.faults.take(rec, "fail")
        if fail is not None:
            return self._fail(fail.args["reason"], project, number, permission, rec)
        if project not in projects:
            return self._not_found(f"projects/{project}", rec)
        with self.state.lock:
            if self._write_route(method, project, rest, body, rec):
                return None
        return self._route(method, project, rest, query, rec)

    @staticmethod
    def _permission(rest: str, method: str) -> str:
        """The IAM permission GCE names in its 403 message for this call."""
        parts = [p for p in rest.split("/") if p]
        if method == "PATCH":
            return "compute.instanceGroupManagers.update"
        if method == "POST" and rest.endswith("/instanceTemplates"):
            return "compute.instanceTemplates.create"
        if method == "POST" and rest.endswith("/applyUpdatesToInstances"):
            return "compute.instanceGroupManagers.update"
        if method == "POST":
            return "compute.instanceGroupManagers.get"
        if len(parts) == 2 and parts[0] in ("aggregated", "global"):
            return f"compute.{parts[1]}.list"
        if len(parts) >= 3 and parts[0] == "global":
            return f"compute.{parts[1]}.get"
        if len(parts) == 3 and parts[0] in ("zones", "regions"):
            return f"compute.{parts[2]}.list"
        if len(parts) >= 4 and parts[0] in ("zones", "regions"):
            return f"compute.{parts[2]}.get"
        return "compute.projects.get"

    def _fail(self, kind: str, project: str, number: str, permission: str, rec: RecordedRequest) -> None:
        if kind == "api_disabled":
            msg = (
                f"Compute Engine API has not been used in project {number} before or it is disabled. Enable it "
                f"by visiting https://console.developers.google.com/apis/api/compute.googleapis.com/overview"
                f"?project={number} then retry. If you enabled this API recently, wait a few minutes for the "
                "action to propagate to our systems and retry."
            )
            return self._error(
                403,
                msg,
                "accessNotConfigured",
                rec,
                domain="usageLimits",
                grpc_status="PERMISSION_DENIED",
                extra={"extendedHelp": "https://console.developers.google.com"},
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "SERVICE_DISABLED",
                        "domain": "googleapis.com",
                        "metadata": {"service": "compute.googleapis.com", "consumer": f"projects/{number}"},
                    }
                ],
            )
        if kind == "not_found":
            return self._not_found(f"projects/{project}", rec)
        msg = f"Required '{permission}' permission for 'projects/{project}'"
        return self._error(
            403,
            msg,
            "forbidden",
            rec,
            grpc_status="PERMISSION_DENIED",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "IAM_PERMISSION_DENIED",
                    "domain": "compute.googleapis.com",
                    "metadata": {"permission": permission, "resource": f"projects/{project}"},
                }
            ],
        )

    def _route(
        self, method: str, project: str, rest: str, query: dict[str, list[str]], rec: RecordedRequest
    ) -> None:
        pdata = self.state.fixture["projects"][project]
        parts = [p for p in rest.split("/") if p]
        self_base = f"{GCE}/projects/{project}"

        if method == "POST":
            if len(parts) == 5 and parts[2] == "instanceGroupManagers" and parts[4] == "listManagedInstances":
                return self._managed_instances(project, pdata, parts[0], parts[1], parts[3], rec)
            return self._error(404, f"No route for POST {rest}", "notFound", rec)

        if len(parts) == 2 and parts[0] == "aggregated" and parts[1] in _AGGREGATED:
            return self._aggregated(project, pdata, parts[1], query, rec)

        if len(parts) >= 3 and parts[0] == "zones" and parts[2] in _ZONAL:
            zone, coll = parts[1], parts[2]
            list_key, kind, _ = _ZONAL[coll]
            items = [i for i in pdata[list_key] if _tail(i.get("zone", "")) == zone]
            if len(parts) == 3:
                return self._list(
                    items,
                    query,
                    kind,
                    f"projects/{project}/zones/{zone}/{coll}",
                    f"{self_base}/zones/{zone}/{coll}",
                    rec,
                )
            if len(parts) == 4:
                hit = next((i for i in items if i["name"] == parts[3]), None)
                if hit is None:
                    return self._not_found(f"projects/{project}/zones/{zone}/{coll}/{parts[3]}", rec)
                return self._send(200, hit, rec)

        if len(parts) >= 2 and parts[0] == "global" and parts[1] in _GLOBAL:
            coll = parts[1]
            list_key, kind, _ = _GLOBAL[coll]
            items = pdata[list_key]
            if len(parts) == 2:
                return self._list(
                    items, query, kind, f"projects/{project}/global/{coll}", f"{self_base}/global/{coll}", rec
                )
            if len(parts) == 3:
                hit = next((i for i in items if i["name"] == parts[2]), None)
                if hit is None:
                    return self._not_found(f"projects/{project}/global/{coll}/{parts[2]}", rec)
                return self._send(200, hit, rec)
            if len(parts) == 4 and coll == "images" and parts[2] == "family":
                fam = [i for i in items if i.get("family") == parts[3] and "deprecated" not in i]
                if not fam:
                    return self._not_found(f"projects/{project}/global/images/family/{parts[3]}", rec)
                return self._send(200, max(fam, key=lambda i: i["creationTimestamp"]), rec)

        return self._not_found(f"projects/{project}{rest}", rec)

    # -- collections ---------------------------------------------------------------------
    def _paging(self, query: dict[str, list[str]], rec: RecordedRequest) -> tuple[int, int] | None:
        raw_max = query.get("maxResults", [str(MAX_RESULTS)])[0] or str(MAX_RESULTS)
        try:
            max_results = int(raw_max)
        except ValueError:
            self._error(
                400, f"Invalid value for field 'maxResults': '{raw_max}'. Must be an integer.", "invalid", rec
            )
            return None
        if max_results > MAX_RESULTS or max_results < 0:
            self._error(
                400,
                f"Invalid value for field 'maxResults': '{max_results}'. Must be less than or equal "
                f"to {MAX_RESULTS}.",
                "invalid",
                rec,
            )
            return None
        token = query.get("pageToken", [""])[0]
        start = 0
        if token:
            decoded = _decode_token(token)
            if decoded is None:
                self._error(
                    400,
                    f"Invalid value for field 'pageToken': '{token}'. Supplied page token is not valid.",
                    "invalid",
                    rec,
                )
                return None
            start = decoded
        return start, (max_results or MAX_RESULTS)

    def _filter(
        self, items: list[dict[str, Any]], query: dict[str, list[str]], rec: RecordedRequest
    ) -> list[dict[str, Any]] | None:
        expr = query.get("filter", [""])[0]
        if not expr:
            return items
        m = _FILTER_RE.match(expr)
        if not m:
            self._error(
                400,
                f"Invalid value for field 'filter': '{expr}'. (The loopback fake only supports a "
                "single 'field = value' or 'field != value' clause.)",
                "invalid",
                rec,
            )
            return None
        fld, op, value = m.group("field"), m.group("op"), m.group("value")
        want_eq = op in ("=", "eq")

        def match(item: dict[str, Any]) -> bool:
            got = _lookup(item, fld)
            got_s = str(got).lower() if isinstance(got, bool) else (None if got is None else str(got))
            if op in ("eq", "ne"):  # regex, whole-string (GCE semantics for eq/ne)
                ok = got_s is not None and re.fullmatch(value, got_s) is not None
            else:
                ok = got_s == value
            return ok if want_eq else not ok

        return [i for i in items if match(i)]

    def _list(
        self,
        items: list[dict[str, Any]],
        query: dict[str, list[str]],
        kind: str,
        list_id: str,
        self_link: str,
        rec: RecordedRequest,
    ) -> None:
        paging = self._paging(query, rec)
        if paging is None:
            return
        filtered = self._filter(items, query, rec)
        if filtered is None:
            return
        start, size = paging
        body: dict[str, Any] = {"kind": kind, "id": list_id, "selfLink": self_link}
        page = filtered[start : start + size]
        if page:
            body["items"] = page
        if start + size < len(filtered):
            body["nextPageToken"] = _encode_token(start + size)
        self._send(200, body, rec)

    def _aggregated(
        self,
        project: str,
        pdata: dict[str, Any],
        coll: str,
        query: dict[str, list[str]],
        rec: RecordedRequest,
    ) -> None:
        paging = self._paging(query, rec)
        if paging is None:
            return
        list_key, item_key, _, kind, _ = _AGGREGATED[coll]
        filtered = self._filter(pdata.setdefault(list_key, []), query, rec)
        if filtered is None:
            return
        zones = self.state.fixture.get("zones", [])
        scopes = [f"zones/{z}" for z in zones]
        if coll in ("instanceGroupManagers", "addresses"):
            scopes += [f"regions/{r}" for r in dict.fromkeys(z.rsplit("-", 1)[0] for z in zones)]
        ordered = sorted(
            filtered, key=lambda i: scopes.index(_scope_of(i)) if _scope_of(i) in scopes else len(scopes)
        )
        start, size = paging
        page = ordered[start : start + size]
        items: dict[str, Any] = {}
        for scope in scopes:
            on_page = [i for i in page if _scope_of(i) == scope]
            if on_page:
                items[scope] = {item_key: on_page}
            else:
                items[scope] = {
                    "warning": {
                        "code": "NO_RESULTS_ON_PAGE",
                        "message": f"There are no results for scope '{scope}' on this page.",
                        "data": [{"key": "scope", "value": scope}],
                    }
                }
        for i in page:  # items in scopes the fixture's zone list does not know about
            if _scope_of(i) not in scopes:
                items.setdefault(_scope_of(i), {item_key: []})[item_key].append(i)
        body: dict[str, Any] = {
            "kind": kind,
            "id": f"projects/{project}/aggregated/{coll}",
            "items": items,
            "selfLink": f"{GCE}/projects/{project}/aggregated/{coll}",
        }
        if start + size < len(ordered):
            body["nextPageToken"] = _encode_token(start + size)
        self._send(200, body, rec)

    def _managed_instances(
        self, project: str, pdata: dict[str, Any], scope_kind: str, scope: str, mig: str, rec: RecordedRequest
    ) -> None:
        igm = next(
            (
                g
                for g in pdata["instanceGroupManagers"]
                if g["name"] == mig and _scope_of(g) == f"{scope_kind}/{scope}"
            ),
            None,
        )
        if igm is None:
            return self._not_found(
                f"projects/{project}/{scope_kind}/{scope}/instanceGroupManagers/{mig}", rec
            )
        number = pdata["number"]
        created_by = f"projects/{number}/{scope_kind}/{scope}/instanceGroupManagers/{mig}"
        members = []
        for inst in pdata["instances"]:
            meta = {i["key"]: i["value"] for i in inst.get("metadata", {}).get("items", [])}
            if meta.get("created-by") == created_by:
                members.append(
                    {
                        "instance": inst["selfLink"],
                        "id": inst["id"],
                        "instanceStatus": inst["status"],
                        "currentAction": "NONE",
                        "version": {
                            "instanceTemplate": self.state.versions.get(inst["selfLink"], igm["instanceTemplate"])
                        },
                        "name": inst["name"],
                    }
                )
        self._send(200, {"managedInstances": members} if members else {}, rec)


    # -- write side ----------------------------------------------------------------------------
    def _write_route(
        self, method: str, project: str, rest: str, body: Any, rec: RecordedRequest
    ) -> bool:
        """Answer the write-side routes (and the reads they add); False: not one of them."""
        pdata = self.state.fixture["projects"][project]
        parts = [p for p in rest.split("/") if p]
        n = len(parts)
        if method in ("POST", "PATCH") and body is None:
            self._error(400, "Invalid JSON payload received.", "parseError", rec)
            return True
        if instance_write_route(self, method, project, parts, body, rec):  # standalone instances
            return True
        # operations
        if method == "GET" and n >= 3 and parts[-2] == "operations" and (
            (n == 3 and parts[0] == "global") or (n == 4 and parts[0] in ("zones", "regions"))
        ):
            self._get_operation(project, parts[-1], rec)
            return True
        # instance templates: global/instanceTemplates[/name], regions/r/instanceTemplates[/name]
        scope = None
        if n >= 2 and parts[0] == "global" and parts[1] == "instanceTemplates":
            scope, tail = "global", parts[2:]
        elif n >= 3 and parts[0] == "regions" and parts[2] == "instanceTemplates":
            scope, tail = f"regions/{parts[1]}", parts[3:]
        if scope is not None:
            if method == "GET" and len(tail) == 1:
                tpl = self._template(project, scope, tail[0])
                if tpl is None:
                    self._not_found(f"projects/{project}/{scope}/instanceTemplates/{tail[0]}", rec)
                else:
                    self._send(200, tpl, rec)
                return True
            if method == "POST" and not tail:
                self._insert_template(project, scope, body, rec)
                return True
            return False
        # instance group managers: {zones/z|regions/r}/instanceGroupManagers/{m}[/applyUpdatesToInstances]
        if n in (4, 5) and parts[0] in ("zones", "regions") and parts[2] == "instanceGroupManagers":
            igm = self._igm(pdata, parts[0], parts[1], parts[3])
            what = f"projects/{project}/{parts[0]}/{parts[1]}/instanceGroupManagers/{parts[3]}"
            if n == 4 and method == "GET":
                if igm is None:
                    self._not_found(what, rec)
                else:
                    self._send(200, igm, rec)
                return True
            if n == 4 and method == "PATCH":
                if igm is None:
                    self._not_found(what, rec)
                else:
                    self._patch_igm(project, pdata, parts[0], parts[1], igm, body, rec)
                return True
            if n == 5 and method == "POST" and parts[4] == "applyUpdatesToInstances":
                if igm is None:
                    self._not_found(what, rec)
                else:
                    self._apply_updates(project, pdata, parts[0], parts[1], igm, body, rec)
                return True
        # disks and instances (the DR drill driver): POST zones/z/{disks|instances}, DELETE .../{name}
        if n in (3, 4) and parts[0] == "zones" and parts[2] in ("disks", "instances"):
            if method == "POST" and n == 3:
                self._insert_zonal(project, pdata, parts[1], parts[2], body, rec)
                return True
            if method == "DELETE" and n == 4:
                self._delete_zonal(project, pdata, parts[1], parts[2], parts[3], rec)
                return True
        return False

    def _insert_zonal(self, project: str, pdata: dict[str, Any], zone: str, coll: str, body: dict[str, Any],
                      rec: RecordedRequest) -> None:
        """``disks.insert`` (from ``sourceSnapshot``) and ``instances.insert`` (booting an existing disk)."""
        name = body.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", name):
            return self._error(400, f"Invalid value for field 'resource.name': '{name}'.", "invalid", rec)
        base = f"{GCE}/projects/{project}/zones/{zone}"
        if any(i["name"] == name and _tail(i.get("zone", "")) == zone for i in pdata[coll]):
            return self._error(409, f"The resource 'projects/{project}/zones/{zone}/{coll}/{name}' already exists",
                               "alreadyExists", rec)
        self.state.op_counter += 1
        item: dict[str, Any] = {"kind": f"compute#{coll[:-1]}", "id": str(8000000000000000000 + self.state.op_counter),
                                "name": name, "zone": base, "selfLink": f"{base}/{coll}/{name}",
                                "creationTimestamp": "2026-11-27T12:00:00.000-08:00", "labels": dict(body.get("labels") or {})}
        if coll == "disks":
            source = body.get("sourceSnapshot") or ""
            snap = next((s for s in pdata["snapshots"] if s["selfLink"].endswith(source.split("/compute/v1/")[-1]) and source), None)
            if snap is None:
                return self._not_found(source.split("/compute/v1/")[-1] or "sourceSnapshot", rec)
            item.update(sizeGb=body.get("sizeGb") or snap.get("diskSizeGb", "10"), status="READY", sourceSnapshot=snap["selfLink"],
                        sourceSnapshotId=snap["id"], type=f"{base}/diskTypes/pd-balanced", users=[])
        else:
            quota = self.fake.faults.take(rec, "quota")
            if quota is not None:
                return self._error(403, f"Quota 'CPUS' exceeded. Limit: {quota.args['limit']} in region {zone.rsplit('-', 1)[0]}.",
                                   "quotaExceeded", rec, grpc_status="PERMISSION_DENIED")
            boot = next((d for d in body.get("disks") or () if d.get("boot")), None)
            disk = next((d for d in pdata["disks"] if boot and d["selfLink"].endswith(str(boot.get("source", "")).split("/compute/v1/")[-1])), None)
            if disk is None:
                return self._error(400, "Invalid value for field 'resource.disks[0].source': the boot disk does not exist.",
                                   "invalid", rec)
            disk.setdefault("users", []).append(item["selfLink"])
            item.update(status="RUNNING", machineType=f"{base}/machineTypes/{_tail(body.get('machineType') or 'e2-small')}",
                        disks=[{"boot": True, "source": disk["selfLink"], "autoDelete": bool(boot.get("autoDelete")),
                                "deviceName": name}],
                        networkInterfaces=body.get("networkInterfaces") or [])
        pdata[coll].append(item)
        return self._operation(project, f"zones/{zone}", "insert", item["selfLink"], rec)

    def _delete_zonal(self, project: str, pdata: dict[str, Any], zone: str, coll: str, name: str,
                      rec: RecordedRequest) -> None:
        item = next((i for i in pdata[coll] if i["name"] == name and _tail(i.get("zone", "")) == zone), None)
        if item is None:
            return self._not_found(f"projects/{project}/zones/{zone}/{coll}/{name}", rec)
        if coll == "disks" and item.get("users"):
            return self._error(400, f"The disk resource '{item['selfLink']}' is already being used by '{item['users'][0]}'",
                               "resourceInUseByAnotherResource", rec)
        pdata[coll].remove(item)
        if coll == "instances":
            for d in item.get("disks", []):
                disk = next((x for x in pdata["disks"] if x["selfLink"] == d.get("source")), None)
                if disk is not None:
                    disk["users"] = [u for u in disk.get("users", []) if u != item["selfLink"]]
                    if d.get("autoDelete"):
                        pdata["disks"].remove(disk)
        return self._operation(project, f"zones/{zone}", "delete", item["selfLink"], rec)

    @staticmethod
    def _igm(pdata: dict[str, Any], scope_kind: str, scope: str, name: str) -> dict[str, Any] | None:
        return next(
            (g for g in pdata["instanceGroupManagers"] if g["name"] == name and _scope_of(g) == f"{scope_kind}/{scope}"),
            None,
        )

    def _template(self, project: str, scope: str, name: str) -> dict[str, Any] | None:
        return _resolve_template(self.state, project, scope, name)

    def _operation(
        self, project: str, scope: str, op_type: str, target: str, rec: RecordedRequest
    ) -> None:
        self.state.op_counter += 1
        name = f"operation-{self.state.op_counter:06d}-{op_type}"
        body: dict[str, Any] = {
            "kind": "compute#operation",
            "id": str(7000000000000000000 + self.state.op_counter),
            "name": name,
            "operationType": op_type,
            "targetLink": target,
            "status": "RUNNING" if self.state.operation_polls > 0 else "DONE",
            "progress": 0 if self.state.operation_polls > 0 else 100,
            "insertTime": "2026-11-27T12:00:00.000-08:00",
            "selfLink": f"{GCE}/projects/{project}/{scope}/operations/{name}",
        }
        if scope.startswith("zones/"):
            body["zone"] = f"{GCE}/projects/{project}/{scope}"
        elif scope.startswith("regions/"):
            body["region"] = f"{GCE}/projects/{project}/{scope}"
        self.state.operations[name] = {"body": body, "polls": self.state.operation_polls}
        self._send(200, body, rec)

    def _get_operation(self, project: str, name: str, rec: RecordedRequest) -> None:
        op = self.state.operations.get(name)
        if op is None:
            return self._not_found(f"projects/{project}/operations/{name}", rec)
        if op["polls"] > 0:
            op["polls"] -= 1
        if op["polls"] <= 0:
            op["body"].update(status="DONE", progress=100, endTime="2026-11-27T12:00:01.000-08:00")
        return self._send(200, op["body"], rec)

    def _insert_template(self, project: str, scope: str, body: dict[str, Any], rec: RecordedRequest) -> None:
        name = body.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", name):
            return self._error(400, f"Invalid value for field 'resource.name': '{name}'.", "invalid", rec)
        if self._template(project, scope, name) is not None:
            return self._error(
                409, f"The resource 'projects/{project}/{scope}/instanceTemplates/{name}' already exists",
                "alreadyExists", rec,
            )
        url = f"{GCE}/projects/{project}/{scope}/instanceTemplates/{name}"
        tpl = dict(body)
        tpl.update(kind="compute#instanceTemplate", selfLink=url, creationTimestamp="2026-11-27T12:00:00.000-08:00",
                   id=str(1000000000000000000 + len(self.state.templates)))
        if scope.startswith("regions/"):
            tpl["region"] = f"{GCE}/projects/{project}/{scope}"
        self.state.templates[(project, scope, name)] = tpl
        return self._operation(project, scope, "insert", url, rec)

    def _template_by_url(self, url: str) -> dict[str, Any] | None:
        m = re.search(r"projects/([^/]+)/(global|regions/[^/]+)/instanceTemplates/([^/]+)$", url or "")
        return self._template(m.group(1), m.group(2), m.group(3)) if m else None

    def _apply(self, pdata: dict[str, Any], igm: dict[str, Any], inst: dict[str, Any]) -> None:
        tpl_url = igm["instanceTemplate"]
        self.state.versions[inst["selfLink"]] = tpl_url
        tpl = self._template_by_url(tpl_url) or {}
        image = next(
            (d.get("initializeParams", {}).get("sourceImage") for d in tpl.get("properties", {}).get("disks", [])
             if d.get("boot")),
            None,
        )
        disk = _boot_disk(pdata, inst)
        if disk is not None and image:
            disk["sourceImage"] = image
        inst["status"] = "RUNNING"

    def _patch_igm(
        self, project: str, pdata: dict[str, Any], kind: str, scope: str, igm: dict[str, Any],
        body: dict[str, Any], rec: RecordedRequest,
    ) -> None:
        for inst in _igm_members(pdata, igm):  # members keep the version they run
            self.state.versions.setdefault(inst["selfLink"], igm["instanceTemplate"])
        versions = body.get("versions")
        if versions:
            for v in versions:
                if self._template_by_url(v.get("instanceTemplate", "")) is None:
                    return self._error(
                        400, f"Invalid value for field 'resource.versions[].instanceTemplate': "
                        f"'{v.get('instanceTemplate')}'. The referenced instance template does not exist.",
                        "invalid", rec,
                    )
            igm["versions"] = [dict(v) for v in versions]
            igm["instanceTemplate"] = versions[0]["instanceTemplate"]
        elif body.get("instanceTemplate"):
            igm["instanceTemplate"] = body["instanceTemplate"]
            igm["versions"] = [{"instanceTemplate": body["instanceTemplate"]}]
        if "updatePolicy" in body:
            igm["updatePolicy"] = {**igm.get("updatePolicy", {}), **body["updatePolicy"]}
        if "targetSize" in body:
            igm["targetSize"] = body["targetSize"]
        igm["fingerprint"] = base64.b64encode(f"fp-{self.state.op_counter}".encode()).decode()
        if igm.get("updatePolicy", {}).get("type") == "PROACTIVE":
            for inst in _igm_members(pdata, igm):
                self._apply(pdata, igm, inst)
        return self._operation(project, f"{kind}/{scope}", "patch", igm["selfLink"], rec)

    def _apply_updates(
        self, project: str, pdata: dict[str, Any], kind: str, scope: str, igm: dict[str, Any],
        body: dict[str, Any], rec: RecordedRequest,
    ) -> None:
        members = _igm_members(pdata, igm)
        by_path = {}
        for inst in members:
            by_path[inst["selfLink"]] = inst
            by_path[f"zones/{_tail(inst['zone'])}/instances/{inst['name']}"] = inst
        if body.get("allInstances"):
            chosen = members
        else:
            wanted = body.get("instances") or []
            unknown = [w for w in wanted if w not in by_path and w.split("/compute/v1/")[-1] not in by_path]
            if not wanted or unknown:
                return self._error(
                    400, f"Invalid value for field 'request.instances': {unknown or wanted}. "
                    "Instances must be members of the group.", "invalid", rec,
                )
            chosen = [by_path.get(w) or by_path[w.split("/compute/v1/")[-1]] for w in wanted]
        for inst in members:
            self.state.versions.setdefault(inst["selfLink"], igm["instanceTemplate"])
        for inst in chosen:
            self._apply(pdata, igm, inst)
        return self._operation(project, f"{kind}/{scope}", "applyUpdatesToInstances", igm["selfLink"], rec)


class GcpFake(HttpFake):
    """Handle yielded by :func:`start_gcp_fake`."""

    handler = _Handler
    thread_name = "gcp-fake"

    def __init__(self, state: GcpFakeState, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.state = state
        self.fixture = state.fixture

    @property
    def workload_projects(self) -> list[str]:
        return list(self.state.fixture.get("workload_projects", self.state.fixture["projects"]))

    def fail(self, project: str, kind: str = "permission") -> None:
        """``kind``: ``"permission"`` (403 forbidden), ``"api_disabled"`` (403 accessNotConfigured),
        ``"not_found"`` (404)."""
        if kind not in ("permission", "api_disabled", "not_found"):
            raise ValueError(kind)
        self.faults.add("fail", when=scope_is(project), times=None, key=("fail", project.lower()), reason=kind)

    def unfail(self, project: str) -> None:
        self.faults.remove(("fail", project.lower()))

    def set_operation_polls(self, n: int) -> None:
        """How many times an operation reads RUNNING before DONE (0: DONE at once)."""
        self.state.operation_polls = n

    def set_instance_status(self, project: str, name: str, status: str = "STOPPING") -> None:
        """Give an instance another status (e.g. to fail a health gate)."""
        with self.state.lock:
            inst = next(i for i in self.state.fixture["projects"][project]["instances"] if i["name"] == name)
            inst["status"] = status

    def instance_template(self, url: str) -> dict[str, Any] | None:
        """The instance template the fake serves at ``url`` (synthesised if a MIG names it)."""
        m = re.search(r"projects/([^/]+)/(global|regions/[^/]+)/instanceTemplates/([^/]+)$", url)
        if not m:
            return None
        with self.state.lock:
            return _resolve_template(self.state, m.group(1), m.group(2), m.group(3))

    def exhaust_quota(self, project: str = "*", times: int | None = None, limit: float = 24.0) -> None:
        """Answer ``instances.insert`` in ``project`` with GCE's 403 ``quotaExceeded`` (a DR region without quota)."""
        self.faults.add("quota", when=scope_is(project), times=times, key=("quota", project.lower()), limit=limit)

    def throttle(self, project: str = "*", times: int = 1, status: int = 429) -> None:
        """Answer the next ``times`` requests for ``project`` (``"*"``: any) with 429 (or 503)."""
        if status not in (429, 503):
            raise ValueError(status)
        self.faults.add("throttle", when=scope_is(project), times=times, key=("throttle", project.lower()),
                        status=status)

    def client(self, name: str = "InstancesClient", **kwargs: Any):
        """A real ``compute_v1.<name>`` using the REST transport against this fake."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import compute_v1

        cls = getattr(compute_v1, name)
        kwargs.setdefault("credentials", AnonymousCredentials())
        return cls(transport="rest", client_options=ClientOptions(api_endpoint=self.base_url), **kwargs)

    def instances_client(self, **kw: Any):
        return self.client("InstancesClient", **kw)

    def disks_client(self, **kw: Any):
        return self.client("DisksClient", **kw)

    def images_client(self, **kw: Any):
        return self.client("ImagesClient", **kw)

    def snapshots_client(self, **kw: Any):
        return self.client("SnapshotsClient", **kw)

    def instance_group_managers_client(self, **kw: Any):
        return self.client("InstanceGroupManagersClient", **kw)

    def region_instance_group_managers_client(self, **kw: Any):
        return self.client("RegionInstanceGroupManagersClient", **kw)


@contextlib.contextmanager
def start_gcp_fake(
    fixture: dict[str, Any],
    *,
    fail: dict[str, str] | None = None,
    throttle: dict[str, int] | None = None,
    throttle_status: int = 429,
    host: str = "127.0.0.1",
) -> Iterator[GcpFake]:
    """Start the fake on an ephemeral port; yields a :class:`GcpFake`.

    ``fail`` / ``throttle`` extend ``fixture["faults"]``.
    """
    fake = GcpFake(GcpFakeState(fixture=fixture), host)
    faults = fixture.get("faults", {})
    for project, kind in {**faults.get("fail", {}), **(fail or {})}.items():
        fake.fail(project, kind)
    for project, times in {**faults.get("throttle", {}), **(throttle or {})}.items():
        fake.throttle(project, times, throttle_status)
    with fake:
        yield fake
