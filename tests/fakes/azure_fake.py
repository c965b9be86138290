"""Loopback HTTPS fake of Azure Resource Manager (Compute) plus the Entra ID token endpoint.

Serves the JSON built by :func:`tests.fakes.fixtures.azure_fixture` through the real
``azure-mgmt-compute`` / ``azure-identity`` clients:

* ``GET /subscriptions/{sub}/providers/Microsoft.Compute/{type}`` (list all in subscription) for
  ``virtualMachines`` (``statusOnly=true`` adds ``properties.instanceView``; ``$filter`` on
  ``virtualMachineScaleSet/id``), ``virtualMachineScaleSets``, ``images``, ``galleries``,
  ``snapshots`` and ``disks``;
* ``GET /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/{type}`` (list by RG);
* ``GET`` of any resource id (``$expand=instanceView`` for VMs / VMSS VMs), ``.../instanceView``;
* child collections: ``virtualMachineScaleSets/{n}/virtualMachines``, ``galleries/{g}/images``,
  ``galleries/{g}/images/{i}/versions``;
* ``GET /{tenant}/v2.0/.well-known/openid-configuration`` and ``POST /{tenant}/oauth2/v2.0/token``
  (client-credentials; enough for the real ``ClientSecretCredential``).

Write side (for the remediation drivers), on Uniform scale sets:

* ``PATCH`` (JSON merge patch) / ``PUT`` ``.../virtualMachineScaleSets/{name}``: the model; 200 with
  the body in ``provisioningState: Updating`` (azure-core's body polling then GETs ``Succeeded``);
  instances whose imageReference differs from the new model get ``latestModelApplied: false``;
* ``POST .../virtualMachineScaleSets/{name}/manualupgrade`` (``{"instanceIds": [...]}``): those
  instances take the model's imageReference, run and show the latest model; 202 with
  ``Azure-AsyncOperation`` + ``Location`` (``Retry-After: 0``), and
  ``GET /subscriptions/{sub}/providers/Microsoft.Compute/locations/{loc}/operations/{id}`` answers
  ``InProgress`` ``operation_polls`` times (``fake.set_operation_polls(n)``), then ``Succeeded``;
* standalone VMs (``PATCH``/``DELETE``/``PUT`` honouring ``deleteOption``): :mod:`tests.fakes.azure_vms`;
* DR drills: ``PUT``/``DELETE`` of ``snapshots``, ``disks`` and ``virtualMachines`` (final body at
  once; a VM runs at once; ``fake.exhaust_quota(sub)``: 409 ``QuotaExceeded`` on a VM ``PUT``);
* ``fake.set_power_state(id, "PowerState/stopped")`` fails a health gate; ``fake.resource(id)`` is the
  live JSON.

ARM behaviour reproduced: case-insensitive paths, ``api-version`` required (400
``MissingApiVersionParameter``), absolute ``nextLink`` that carries every query parameter
(``api-version`` included) plus ``$skiptoken``, bearer token required (401
``AuthenticationFailed``), ARM error bodies ``{"error": {"code", "message"}}``.

Fault injection (from ``fixture["faults"]``, the ``start_azure_fake`` keywords, or at run time):
``fake.fail(sub, "AuthorizationFailed" | "SubscriptionNotFound" | (status, code, message))`` and
``fake.throttle(sub, times=N, retry_after="0")`` (429 ``OperationNotAllowed`` /
``TooManyRequests`` with ``Retry-After``; ``sub="*"`` throttles every ARM call).

The server, TLS (a throwaway ``trustme`` CA: clients get ``fake.ca_path``), request recording and the
fault rules are :mod:`tests.fakes.base`'s. Every request is recorded in ``fake.requests``
(:class:`~tests.fakes.base.RecordedRequest`; ``scope`` is the subscription, lower-cased).
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from tests.fakes.azure_vms import seed_nics, vm_write_route
from tests.fakes.base import FakeHandler, HttpFake, RecordedRequest, scope_is

# fixture list name -> ARM resource type
RESOURCE_TYPES = {
    "virtualMachines": "Microsoft.Compute/virtualMachines",
    "virtualMachineScaleSets": "Microsoft.Compute/virtualMachineScaleSets",
    "virtualMachineScaleSetVMs": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
    "images": "Microsoft.Compute/images",
    "galleries": "Microsoft.Compute/galleries",
    "galleryImages": "Microsoft.Compute/galleries/images",
    "galleryImageVersions": "Microsoft.Compute/galleries/images/versions",
    "disks": "Microsoft.Compute/disks",
    "snapshots": "Microsoft.Compute/snapshots",
}
# types whose JSON carries properties.instanceView that is only served on request
_INSTANCE_VIEW_TYPES = {
    "microsoft.compute/virtualmachines",
    "microsoft.compute/virtualmachinescalesets/virtualmachines",
}

_SUB_LIST_RE = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/providers/microsoft\.compute/(?P<type>[^/]+)$")
_RG_LIST_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.compute/(?P<type>[^/]+)$"
)
_SUB_RE = re.compile(r"^/subscriptions/(?P<sub>[^/]+)(/|$)")
_OPERATION_RE = re.compile(
    r"^/subscriptions/[^/]+/providers/microsoft\.compute/locations/(?P<loc>[^/]+)/operations/(?P<op>[^/]+)$"
)
_VMSS_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.compute/"
    r"virtualmachinescalesets/(?P<name>[^/]+)(?P<action>/manualupgrade)?$"
)
# what a DR drill creates and removes (PUT / DELETE)
def _attaches_os_disk(body: Any) -> bool:
    """A VM ``PUT`` whose OS disk is an existing managed disk (``createOption: Attach``), as a DR drill
    restores; a VM built from an image goes to tests.fakes.azure_vms."""
    props = body.get("properties") if isinstance(body, dict) else None
    os_disk = ((props or {}).get("storageProfile") or {}).get("osDisk") or {}
    return str(os_disk.get("createOption", "")).lower() == "attach"


_DRILL_RE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.compute/"
    r"(?P<type>snapshots|disks|virtualmachines)/(?P<name>[^/]+)$"
)
# read-only properties of a scale set that a PUT cannot change
_VMSS_READ_ONLY = ("provisioningState", "uniqueId", "timeCreated")
_VMSS_FILTER_RE = re.compile(r"""^\s*'?virtualMachineScaleSet/id'?\s+eq\s+'(?P<id>[^']+)'\s*$""", re.I)


def _image_reference(vmss: dict[str, Any]) -> dict[str, Any]:
    return (
        vmss.get("properties", {}).get("virtualMachineProfile", {}).get("storageProfile", {}).get("imageReference")
        or {}
    )


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


class StaticTokenCredential:
    """Minimal ``TokenCredential``: always returns the same bearer token."""

    def __init__(self, token: str = "fake-static-arm-token") -> None:
        self.token = token
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any):
        from azure.core.credentials import AccessToken

        self.calls += 1
        return AccessToken(self.token, int(time.time()) + 3600)


@dataclass
class AzureFakeState:
    fixture: dict[str, Any]
    page_size: int = 50
    status_only_trims: bool = False
    clients: dict[str, str] | None = None
    accepted_tokens: set[str] | None = None  # None: accept any non-empty bearer token
    base_url: str = ""
    issued_tokens: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # lower-cased id -> resource ; lower-cased type -> list of resources (insertion ordered)
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_sub: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # async operation id -> {"status": final status, "polls": InProgress answers left, "error": ...}
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    operation_polls: int = 1  # InProgress answers before an operation reports its final status
    nics: dict[str, str | None] = field(default_factory=dict)  # NIC id -> VM using it (tests.fakes.azure_vms)

    def index(self) -> None:
        self.by_id.clear()
        self.by_sub.clear()
        for sub, data in self.fixture["subscriptions"].items():
            items = self.by_sub.setdefault(sub.lower(), [])
            for key in RESOURCE_TYPES:
                for res in data.get(key, []):
                    self.by_id[res["id"].lower()] = res
                    items.append(res)


class _Handler(FakeHandler):
    server_version = "rf-azure-fake/1.0"
    fake: AzureFake

    @property
    def state(self) -> AzureFakeState:
        return self.fake.state

    # -- plumbing ---------------------------------------------------------------------
    def _send(
        self,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        rec: RecordedRequest | None = None,
    ) -> None:
        ids = {"x-ms-request-id": str(uuid.uuid4()), "x-ms-correlation-request-id": str(uuid.uuid4())}
        self.send_json(status, body, {**ids, **(headers or {})}, content_type="application/json; charset=utf-8")

    def _arm_error(
        self,
        status: int,
        code: str,
        message: str,
        rec: RecordedRequest,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        err: dict[str, Any] = {"code": code, "message": message}
        if details:
            err["details"] = details
        self._send(status, {"error": err}, headers, rec)

    def route(self, rec: RecordedRequest) -> None:
        rec.path = rec.path.rstrip("/")
        if rec.method == "GET":
            m = re.match(r"^/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration$", rec.path)
            if m:
                return self._openid(m.group("tenant"), rec)
            return self._arm("GET", rec.path, rec.query, rec, None)
        if rec.method == "POST" and not rec.path.lower().startswith("/subscriptions/"):
            m = re.match(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$", rec.path)
            if not m:
                return self._arm_error(404, "NotFound", f"No route for POST {rec.path}", rec)
            return self._token(m.group("tenant"), parse_qs(rec.text), rec)
        if rec.body_error is not None:
            return self._arm_error(400, "InvalidRequestContent", f"The request content was invalid: {rec.body_error}", rec)
        return self._arm(rec.method, rec.path, rec.query, rec, {} if rec.body is None else rec.body)

    def _arm(
        self, method: str, path: str, query: dict[str, list[str]], rec: RecordedRequest, body: Any
    ) -> None:
        """ARM's checks in ARM's order (route, token, api-version, throttle, failure), then the route."""
        m = _SUB_RE.match(path.lower())
        if not m:
            return self._arm_error(404, "InvalidResourceType", f"No route for {method} {path}", rec)
        sub = m.group("sub")
        rec.scope = sub

        # authentication before anything else (like ARM)
        auth = self.headers.get("Authorization") or ""
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            return self._arm_error(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                rec,
                {
                    "WWW-Authenticate": 'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", '
                    'error_description="The authentication failed because of missing '
                    "'Authorization' header.\""
                },
            )
        token = auth[7:].strip()
        if (
            self.state.accepted_tokens is not None
            and token not in self.state.accepted_tokens
            and token not in self.state.issued_tokens
        ):
            return self._arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.", rec)

        api_version = (query.get("api-version") or [""])[0]
        if not api_version:
            return self._arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
                rec,
            )

        # throttling (per subscription, or '*' for all)
        throttle = self.fake.faults.take(rec, "throttle")
        if throttle is not None:
            window = {
                "operationGroup": "HighCostGet",
                "startTime": "2026-11-27T06:00:00.0000000+00:00",
                "endTime": "2026-11-27T06:03:00.0000000+00:00",
                "allowedRequestCount": 300,
                "measuredRequestCount": 301,
            }
            return self._arm_error(
                429,
                "OperationNotAllowed",
                "The server rejected the request because too many requests have been received for this "
                "subscription.",
                rec,
                {
                    "Retry-After": throttle.args["retry_after"],
                    "x-ms-ratelimit-remaining-resource": "Microsoft.Compute/HighCostGet3Min;0",
                },
                details=[{"code": "TooManyRequests", "target": "HighCostGet", "message": json.dumps(window)}],
            )

        fail = self.fake.faults.take(rec, "fail")
        if fail is not None:
            status, code, message = fail.args["status"], fail.args["code"], fail.args["message"]
            if message is None:
                message = self._fail_message(code, sub, path)
            return self._arm_error(status, code, message, rec)

        if sub not in self.state.by_sub:
            return self._arm_error(
                404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.", rec
            )
        if method != "GET":
            return self._write(method, path, query, sub, rec, body)
        return self._route(path, query, sub, rec)

    # -- ARM ----------------------------------------------------------------------------
    def _fail_message(self, code: str, sub: str, path: str) -> str:
        if code == "AuthorizationFailed":
            rtype = "virtualMachines"
            m = re.search(r"/providers/microsoft\.compute/([^/]+)", path.lower())
            if m:
                rtype = next(
                    (
                        t.split("/")[-1]
                        for t in RESOURCE_TYPES.values()
                        if t.split("/")[-1].lower() == m.group(1)
                    ),
                    m.group(1),
                )
            oid = self.state.fixture.get("client", {}).get(
                "object_id", "00000000-0000-0000-0000-000000000000"
            )
            return (
                f"The client '{oid}' with object id '{oid}' does not have authorization to perform action "
                f"'Microsoft.Compute/{rtype}/read' over scope '/subscriptions/{sub}' or the scope is invalid. "
                "If access was recently granted, please refresh your credentials."
            )
        if code == "SubscriptionNotFound":
            return f"The subscription '{sub}' could not be found."
        return f"{code} for subscription '{sub}'."

    def _route(self, path: str, query: dict[str, list[str]], sub: str, rec: RecordedRequest) -> None:
        low = path.lower()
        q1 = {k: v[0] for k, v in query.items()}
        if low.endswith("/providers/microsoft.insights/metrics"):  # Azure Monitor, for canary analysis
            from tests.fakes.monitoring import azure_metrics

            return azure_metrics(self, path, q1, rec)
        m = _OPERATION_RE.match(low)
        if m:
            return self._operation(m.group("op"), q1.get("monitor") == "true", rec)
        status_only = q1.get("statusOnly", q1.get("statusonly", "")).lower() == "true"
        expand_iv = q1.get("$expand", "").lower() == "instanceview"

        m = _SUB_LIST_RE.match(low) or _RG_LIST_RE.match(low)
        if m:
            rtype = "microsoft.compute/" + m.group("type")
            rg = m.groupdict().get("rg")
            prefix = f"/subscriptions/{sub}/resourcegroups/{rg}/" if rg else f"/subscriptions/{sub}/"
            items = [
                r
                for r in self.state.by_sub[sub]
                if r["type"].lower() == rtype and r["id"].lower().startswith(prefix)
            ]
            if rtype == "microsoft.compute/virtualmachines" and q1.get("$filter"):
                fm = _VMSS_FILTER_RE.match(q1["$filter"])
                if not fm:
                    return self._arm_error(
                        400,
                        "InvalidParameter",
                        f"The $filter '{q1['$filter']}' is not supported by the fake.",
                        rec,
                    )
                items = [
                    r
                    for r in items
                    if r["properties"].get("virtualMachineScaleSet", {}).get("id", "").lower()
                    == fm.group("id").lower()
                ]
            if not items and rtype not in {t.lower() for t in RESOURCE_TYPES.values()}:
                return self._arm_error(
                    404,
                    "InvalidResourceType",
                    f"The resource type '{m.group('type')}' could not be found in the namespace "
                    f"'Microsoft.Compute' for api version '{q1['api-version']}'.",
                    rec,
                )
            return self._page(path, query, items, rec, instance_view=status_only, status_only=status_only)

        if low in self.state.by_id:
            res = self.state.by_id[low]
            return self._send(200, self._public(res, instance_view=expand_iv), rec=rec)

        parent, _, last = low.rpartition("/")
        if last == "instanceview" and parent in self.state.by_id:
            res = self.state.by_id[parent]
            if res["type"].lower() in _INSTANCE_VIEW_TYPES:
                iv = copy.deepcopy(res["properties"].get("instanceView", {}))
                iv.setdefault("computerName", res["properties"].get("osProfile", {}).get("computerName"))
                iv.setdefault("hyperVGeneration", "V2")
                return self._send(200, iv, rec=rec)
        if parent in self.state.by_id:
            child_prefix = low + "/"
            items = [
                r
                for r in self.state.by_sub[sub]
                if r["id"].lower().startswith(child_prefix) and "/" not in r["id"][len(child_prefix) :]
            ]
            if items or last in ("virtualmachines", "images", "versions"):
                return self._page(path, query, items, rec, instance_view=expand_iv)

        segs = path.split("/")
        low_segs = [x.lower() for x in segs]
        rg = segs[low_segs.index("resourcegroups") + 1] if "resourcegroups" in low_segs[:-1] else "?"
        p = low_segs.index("providers") if "providers" in low_segs else len(segs)
        resource = "/".join(segs[p + 1 :]) or path
        return self._arm_error(
            404,
            "ResourceNotFound",
            f"The Resource '{resource}' under resource group '{rg}' was not found. For more details please go to "
            "https://aka.ms/ARMResourceNotFoundFix",
            rec,
        )

    # -- writes: scale set model update and manual upgrade ---------------------------------
    def _write(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        sub: str,
        rec: RecordedRequest,
        body: Any,
    ) -> None:
        """``PUT``/``PATCH`` a Uniform scale set's model, ``POST .../manualupgrade``.

        PATCH is a JSON merge patch (RFC 7386: ``null`` removes a key); PUT replaces the model but
        keeps the read-only properties. Both answer 200 with the body (``provisioningState``
        ``Updating``: the SDK's body polling then GETs the resource, which reads ``Succeeded``).
        When the model's ``imageReference`` changes, each instance's ``latestModelApplied`` becomes
        whether its own imageReference equals the model's.
        ``manualupgrade`` (body ``{"instanceIds": [...]}``) applies the model's imageReference to
        those instances (running, latest model) and answers 202 with ``Azure-AsyncOperation`` and
        ``Location`` (``Retry-After: 0``); the operation reads ``InProgress`` ``operation_polls``
        times, then ``Succeeded``.
        """
        low = path.lower()
        drill = _DRILL_RE.match(low)
        if drill and method == "PUT" and _attaches_os_disk(body):  # a DR drill's VM on a restored disk
            return self._drill_write(method, path, drill, sub, rec, body)
        if vm_write_route(self, method, path, sub, rec, body):  # standalone VMs: tests.fakes.azure_vms
            return None
        if drill and method in ("PUT", "DELETE"):
            return self._drill_write(method, path, drill, sub, rec, body)
        m = _VMSS_RE.match(low)
        if not m or not isinstance(body, dict):
            return self._arm_error(
                404 if not m else 400,
                "InvalidResourceType" if not m else "InvalidRequestContent",
                f"The fake has no route for {method} {path}" if not m else "The request content must be a JSON object.",
                rec,
            )
        vmss_id = low[: len(low) - len(m.group("action") or "")]
        with self.state.lock:
            vmss = self.state.by_id.get(vmss_id)
            if vmss is None:
                return self._arm_error(
                    404,
                    "ResourceNotFound",
                    f"The Resource 'Microsoft.Compute/virtualMachineScaleSets/{m.group('name')}' under resource "
                    f"group '{m.group('rg')}' was not found.",
                    rec,
                )
            members = [
                r
                for r in self.state.by_sub[sub]
                if r["id"].lower().startswith(vmss_id + "/virtualmachines/")
                and r["type"].lower() == "microsoft.compute/virtualmachinescalesets/virtualmachines"
            ]
            if m.group("action"):
                if method != "POST":
                    return self._arm_error(405, "MethodNotAllowed", f"{method} is not allowed here", rec)
                return self._manual_upgrade(vmss, members, body, rec)
            if method not in ("PATCH", "PUT"):
                return self._arm_error(405, "MethodNotAllowed", f"{method} is not allowed on a scale set", rec)
            before = json.dumps(_image_reference(vmss), sort_keys=True)
            if method == "PATCH":
                for key in ("properties", "tags", "sku", "identity", "plan", "zones"):
                    if key in body:
                        vmss[key] = _merge_patch(vmss.get(key), body[key])
            else:
                kept = {k: vmss["properties"][k] for k in _VMSS_READ_ONLY if k in vmss["properties"]}
                for key in ("tags", "sku", "identity", "plan", "zones"):
                    if key in body:
                        vmss[key] = copy.deepcopy(body[key])
                vmss["properties"] = {**copy.deepcopy(body.get("properties") or {}), **kept}
            vmss["properties"]["provisioningState"] = "Succeeded"
            ref = _image_reference(vmss)
            if ref and "publisher" not in ref:
                ref.pop("exactVersion", None)  # read-only, and only marketplace images have one
            if json.dumps(_image_reference(vmss), sort_keys=True) != before:
                model = json.dumps(_image_reference(vmss), sort_keys=True)
                for vm in members:
                    ref = vm["properties"].get("storageProfile", {}).get("imageReference") or {}
                    vm["properties"]["latestModelApplied"] = json.dumps(ref, sort_keys=True) == model
            answer = copy.deepcopy(vmss)
        answer["properties"]["provisioningState"] = "Updating"
        return self._send(200, answer, rec=rec)

    def _drill_write(self, method: str, path: str, m: re.Match, sub: str, rec: RecordedRequest, body: Any) -> None:
        """``PUT`` (create; 200 with the final body, ``provisioningState: Succeeded``) and ``DELETE``
        (200) of snapshots, managed disks and VMs, as a DR drill restores: a snapshot copied into the
        paired location (``creationData.sourceResourceId`` a snapshot), a disk from it, a VM attaching
        that disk (running at once). ``fake.exhaust_quota(sub)`` answers a VM ``PUT`` with ARM's 409
        ``QuotaExceeded``."""
        rid, kind, name = path, m.group("type"), path.rsplit("/", 1)[-1]
        with self.state.lock:
            if method == "DELETE":
                res = self.state.by_id.pop(rid.lower(), None)
                if res is not None:
                    self.state.by_sub[sub].remove(res)
                    disk_id = ((res["properties"].get("storageProfile") or {}).get("osDisk") or {}).get("managedDisk", {}).get("id", "")
                    disk = self.state.by_id.get(disk_id.lower())
                    if disk is not None:
                        disk["properties"]["diskState"] = "Unattached"
                        disk.pop("managedBy", None)
                return self._send(200, {}, rec=rec)
            if not isinstance(body, dict) or not body.get("location"):
                return self._arm_error(400, "LocationRequired", "The location property is required for this definition.", rec)
            props = copy.deepcopy(body.get("properties") or {})
            if kind in ("snapshots", "disks"):
                source = (props.get("creationData") or {}).get("sourceResourceId", "")
                src = self.state.by_id.get(source.lower())
                if src is None:
                    return self._arm_error(404, "NotFound", f"Resource {source} not found.", rec)
                props.update(diskSizeGB=src["properties"].get("diskSizeGB", 30), osType=src["properties"].get("osType"),
                             timeCreated="2026-11-27T06:00:00.0000000+00:00")
                props["diskState"] = "Unattached" if kind == "disks" else "ActiveSAS"
            else:
                quota = self.fake.faults.take(rec, "quota")
                if quota is not None:
                    return self._arm_error(409, "QuotaExceeded", (
                        f"Operation could not be completed as it results in exceeding approved Total Regional Cores quota. "
                        f"Location: {body['location']}, Current Limit: {quota.args['limit']}."), rec)
                disk_id = ((props.get("storageProfile") or {}).get("osDisk") or {}).get("managedDisk", {}).get("id", "")
                disk = self.state.by_id.get(disk_id.lower())
                if disk is None:
                    return self._arm_error(404, "NotFound", f"Disk {disk_id} not found.", rec)
                disk["properties"]["diskState"] = "Attached"
                disk["managedBy"] = rid
                props["vmId"] = str(uuid.uuid4())
                props["instanceView"] = {"statuses": [
                    {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"},
                    {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"}]}
            props["provisioningState"] = "Succeeded"
            rtype = {"snapshots": "snapshots", "disks": "disks"}.get(kind, "virtualMachines")
            res = {"id": rid, "name": name, "type": RESOURCE_TYPES[rtype], "location": body["location"],
                   "tags": dict(body.get("tags") or {}), "properties": props}
            if kind in ("snapshots", "disks"):
                res["sku"] = body.get("sku") or {"name": "Standard_LRS"}
            self.state.by_id[rid.lower()] = res
            self.state.by_sub[sub].append(res)
            answer = self._public(res, instance_view=False) if kind == "virtualmachines" else copy.deepcopy(res)
        return self._send(200, answer, rec=rec)

    def _manual_upgrade(
        self, vmss: dict[str, Any], members: list[dict[str, Any]], body: dict[str, Any], rec: RecordedRequest
    ) -> None:
        ids = body.get("instanceIds")
        by_instance = {str(vm.get("instanceId")): vm for vm in members}
        if not isinstance(ids, list) or not ids:
            return self._arm_error(400, "InvalidParameter", "instanceIds must be a non-empty list.", rec)
        unknown = [i for i in ids if str(i) not in by_instance]
        if unknown:
            return self._arm_error(
                400,
                "InvalidParameter",
                f"The provided instanceId(s) {unknown} are not active Virtual Machine Scale Set VM instanceIds.",
                rec,
            )
        ref = _image_reference(vmss)
        now = time.strftime("%Y-%m-%dT%H:%M:%S.0000000+00:00", time.gmtime())
        for i in ids:
            vm = by_instance[str(i)]
            props = vm["properties"]
            props.setdefault("storageProfile", {})["imageReference"] = copy.deepcopy(ref)
            props["latestModelApplied"] = True
            props["instanceView"] = {
                "statuses": [
                    {"code": "ProvisioningState/succeeded", "level": "Info",
                     "displayStatus": "Provisioning succeeded", "time": now},
                    {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"},
                ]
            }
        op = str(uuid.uuid4())
        self.state.operations[op] = {"status": "Succeeded", "polls": self.state.operation_polls, "start": now}
        loc = vmss.get("location", "westeurope")
        sub = vmss["id"].split("/")[2]
        url = (
            f"{self.state.base_url}/subscriptions/{sub}/providers/Microsoft.Compute/locations/{loc}/operations/"
            f"{op}?api-version={rec.param('api-version')}"
        )
        headers = {"Azure-AsyncOperation": url, "Location": url + "&monitor=true", "Retry-After": "0"}
        return self._send(202, b"", headers, rec)

    def _operation(self, op: str, monitor: bool, rec: RecordedRequest) -> None:
        with self.state.lock:
            found = self.state.operations.get(op)
            if found is None:
                return self._arm_error(404, "NotFound", f"Operation '{op}' was not found.", rec)
            if monitor:
                return self._send(200, b"", rec=rec)
            if found["polls"] > 0:
                found["polls"] -= 1
                return self._send(200, {"name": op, "status": "InProgress", "startTime": found["start"]}, rec=rec)
        return self._send(
            200, {"name": op, "status": found["status"], "startTime": found["start"], "endTime": found["start"]}, rec=rec
        )

    def _public(
        self, res: dict[str, Any], *, instance_view: bool, status_only: bool = False
    ) -> dict[str, Any]:
        if res["type"].lower() not in _INSTANCE_VIEW_TYPES:
            return res
        if status_only and self.state.status_only_trims:
            out = {k: res[k] for k in ("id", "name", "type", "location") if k in res}
            out["properties"] = {"instanceView": res["properties"].get("instanceView", {})}
            return out
        if instance_view:
            return res
        out = dict(res)
        out["properties"] = {k: v for k, v in res["properties"].items() if k != "instanceView"}
        return out

    def _page(
        self,
        path: str,
        query: dict[str, list[str]],
        items: list[dict[str, Any]],
        rec: RecordedRequest,
        *,
        instance_view: bool,
        status_only: bool = False,
    ) -> None:
        skip = query.get("$skiptoken", ["0"])[0]
        try:
            start = int(skip)
        except ValueError:
            return self._arm_error(400, "InvalidSkipToken", f"The skip token '{skip}' is invalid.", rec)
        end = start + self.state.page_size
        body: dict[str, Any] = {
            "value": [
                self._public(r, instance_view=instance_view, status_only=status_only)
                for r in items[start:end]
            ]
        }
        if end < len(items):
            q = [(k, v) for k, vs in query.items() if k != "$skiptoken" for v in vs]
            q.append(("$skiptoken", str(end)))
            body["nextLink"] = f"{self.state.base_url}{path}?{urlencode(q)}"
        self._send(200, body, {"x-ms-ratelimit-remaining-subscription-reads": "11999"}, rec)

    # -- Entra ID -------------------------------------------------------------------------
    def _openid(self, tenant: str, rec: RecordedRequest) -> None:
        base = f"{self.state.base_url}/{tenant}"
        self._send(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{base}/openid/userinfo",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "oid"],
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com",
                "rbac_url": "https://pas.windows.net",
            },
            rec=rec,
        )

    def _aad_error(self, status: int, error: str, code: int, description: str, rec: RecordedRequest) -> None:
        trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
        ts = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        self._send(
            status,
            {
                "error": error,
                "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}"
                f"\r\nTimestamp: {ts}",
                "error_codes": [code],
                "timestamp": ts,
                "trace_id": trace,
                "correlation_id": corr,
                "error_uri": f"{self.state.base_url}/error?code={code}",
            },
            rec=rec,
        )

    def _token(self, tenant: str, form: dict[str, list[str]], rec: RecordedRequest) -> None:
        f = {k: v[0] for k, v in form.items()}
        if tenant.lower() != str(self.state.fixture.get("tenant_id", tenant)).lower():
            return self._aad_error(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud.",
                rec,
            )
        if f.get("grant_type") != "client_credentials":
            return self._aad_error(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.", rec
            )
        cid, secret = f.get("client_id", ""), f.get("client_secret", "")
        clients = self.state.clients
        if clients is not None:
            if cid not in clients:
                return self._aad_error(
                    400,
                    "unauthorized_client",
                    700016,
                    f"Application with identifier '{cid}' was not found in the directory.",
                    rec,
                )
            if clients[cid] != secret:
                return self._aad_error(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request "
                    "is the client secret value, not the client secret ID, for a secret added "
                    f"to app '{cid}'.",
                    rec,
                )
        token = f"fake-arm-token-{uuid.uuid4().hex}"
        with self.state.lock:
            self.state.issued_tokens.append(token)
        self._send(
            200,
            {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token},
            rec=rec,
        )


class AzureFake(HttpFake):
    """Handle yielded by :func:`start_azure_fake`."""

    handler = _Handler
    thread_name = "azure-fake"

    def __init__(self, state: AzureFakeState, host: str = "127.0.0.1") -> None:
        super().__init__(host, tls=True)
        self.state = state
        self.fixture = state.fixture
        self.tenant_id: str = state.fixture.get("tenant_id", "")
        client = state.fixture.get("client", {})
        self.client_id: str = client.get("client_id", "")
        self.client_secret: str = client.get("client_secret", "")

    @property
    def authority(self) -> str:
        """For azure-identity's ``authority=`` (https is implied)."""
        return f"{self.host}:{self.port}"

    @property
    def subscriptions(self) -> list[str]:
        return list(self.state.fixture["subscriptions"])

    @property
    def issued_tokens(self) -> list[str]:
        return list(self.state.issued_tokens)

    # -- fault control --------------------------------------------------------------------
    def fail(self, subscription: str, kind: str | tuple[int, str, str] = "AuthorizationFailed") -> None:
        """Make every request for ``subscription`` fail.

        ``kind``: ``"AuthorizationFailed"`` (403), ``"SubscriptionNotFound"`` (404), or a tuple
        ``(status, code, message)``.
        """
        if isinstance(kind, tuple):
            status, code, message = kind
        elif kind == "SubscriptionNotFound":
            status, code, message = 404, kind, None
        else:
            status, code, message = 403, kind, None
        self.faults.add("fail", when=scope_is(subscription), times=None, key=("fail", subscription.lower()),
                        status=status, code=code, message=message)

    def unfail(self, subscription: str) -> None:
        self.faults.remove(("fail", subscription.lower()))

    def exhaust_quota(self, subscription: str = "*", times: int | None = None, limit: int = 20) -> None:
        """Answer a VM ``PUT`` in ``subscription`` with ARM's 409 ``QuotaExceeded`` (a DR region without quota)."""
        self.faults.add("quota", when=scope_is(subscription), times=times, key=("quota", subscription.lower()), limit=limit)

    def throttle(self, subscription: str = "*", times: int = 1, retry_after: str | int = "0") -> None:
        """Answer the next ``times`` requests for ``subscription`` (``"*"``: any) with 429."""
        self.faults.add("throttle", when=scope_is(subscription), times=times, key=("throttle", subscription.lower()),
                        retry_after=str(retry_after))

    def set_page_size(self, n: int) -> None:
        self.state.page_size = n

    # -- write-side state (scale set upgrades) ----------------------------------------------
    def set_operation_polls(self, n: int) -> None:
        """How many times an async operation reads ``InProgress`` before its final status."""
        self.state.operation_polls = n

    def resource(self, resource_id: str) -> dict[str, Any]:
        """The live JSON of a resource (what the fake serves; edits show in the next answer)."""
        return self.state.by_id[resource_id.lower()]

    def set_power_state(self, resource_id: str, code: str = "PowerState/stopped") -> None:
        """Give a VM / scale set VM another power state (e.g. to fail a health gate)."""
        with self.state.lock:
            props = self.state.by_id[resource_id.lower()]["properties"]
            statuses = [s for s in props.get("instanceView", {}).get("statuses", []) if not s["code"].startswith("PowerState/")]
            statuses.append({"code": code, "level": "Info", "displayStatus": code.split("/", 1)[1]})
            props.setdefault("instanceView", {})["statuses"] = statuses

    # -- clients --------------------------------------------------------------------------
    def credential(self, token: str = "fake-static-arm-token") -> StaticTokenCredential:
        return StaticTokenCredential(token)

    def client_secret_credential(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        tenant_id: str | None = None,
        **kwargs: Any,
    ):
        """The real ``azure.identity.ClientSecretCredential`` pointed at this fake."""
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(
            tenant_id or self.tenant_id,
            client_id or self.client_id,
            client_secret or self.client_secret,
            authority=self.authority,
            disable_instance_discovery=True,
            connection_verify=self.ca_path,
            **kwargs,
        )

    def compute_client(
        self, subscription_id: str, credential: Any = None, *, retry_total: int = 0, **kwargs: Any
    ):
        """A real ``ComputeManagementClient`` talking to this fake (fails fast by default)."""
        from azure.mgmt.compute import ComputeManagementClient

        kwargs.setdefault("retry_backoff_factor", 0)
        return ComputeManagementClient(
            credential or self.credential(),
            subscription_id,
            base_url=self.base_url,
            connection_verify=self.ca_path,
            retry_total=retry_total,
            **kwargs,
        )


@contextlib.contextmanager
def start_azure_fake(
    fixture: dict[str, Any],
    *,
    page_size: int = 50,
    fail: dict[str, str | tuple[int, str, str]] | None = None,
    throttle: dict[str, int] | None = None,
    retry_after: str | int = "0",
    status_only_trims: bool = False,
    clients: dict[str, str] | None = None,
    accept_any_client: bool = False,
    accepted_tokens: set[str] | None = None,
    host: str = "127.0.0.1",
) -> Iterator[AzureFake]:
    """Start the fake on an ephemeral port; yields an :class:`AzureFake`.

    ``fail`` / ``throttle`` extend ``fixture["faults"]``.  ``clients`` maps client id to secret for
    the token endpoint (default: the fixture's client; ``accept_any_client=True`` accepts anything).
    ``status_only_trims=True`` makes ``statusOnly=true`` list responses carry only
    ``id/name/type/location/properties.instanceView`` (to test connectors that must not rely on the
    other properties there).
    """
    if clients is None and not accept_any_client and fixture.get("client"):
        clients = {fixture["client"]["client_id"]: fixture["client"]["client_secret"]}
    state = AzureFakeState(
        fixture=fixture,
        page_size=page_size,
        status_only_trims=status_only_trims,
        clients=None if accept_any_client else clients,
        accepted_tokens=accepted_tokens,
    )
    state.index()
    seed_nics(state)
    fake = AzureFake(state, host)
    faults = fixture.get("faults", {})
    for sub, kind in {**faults.get("fail", {}), **(fail or {})}.items():
        fake.fail(sub, kind)
    for sub, times in {**faults.get("throttle", {}), **(throttle or {})}.items():
        fake.throttle(sub, times, retry_after)
    with fake:
        state.base_url = fake.base_url
        yield fake
