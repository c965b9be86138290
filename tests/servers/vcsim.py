"""vSphere simulator (vcsim) for tests: build, start, stop, and populate.

The simulator is tools/vcsim/main.go (govmomi 0.24.2 ``simulator.VPX()`` model
plus a paging/Fetch fix), built offline from Debian packages by
scripts/build-vcsim.sh into var/bin/vcsim (override with $VCSIM_BIN).

    with start_vcsim(vms=12, datacenters=2, clusters=2) as server:
        si = server.connect()           # pyVmomi SmartConnect, cert checks off
        rows = retrieve_vms(si, ["name", "config.instanceUuid"], page_size=5)
        population = populate(si, seed=7)

What works in this simulator (checked with pyVmomi 9.1.1.0 against
govmomi 0.24.2, vCenter "6.5" API, on 2026-11-27):

* Inventory: VMs are named ``DC<d>_C<c>_RP0_VM<i>``; ``config.uuid`` and
  ``config.instanceUuid`` are derived from the VM path, so they are unique and
  identical from run to run for the same model. Model VMs start powered on.
* PropertyCollector: ``RetrievePropertiesEx`` over a ContainerView works. Stock
  0.24.2 ignores ``options.maxObjects`` and has no ``ContinueRetrievePropertiesEx``
  (MethodNotFound); our main.go adds token paging (client maxObjects, plus an
  optional server cap ``max_objects=`` / ``-max-objects``) and
  ``CancelRetrievePropertiesEx``. Unset properties are simply absent from
  ``propSet`` (as in vCenter).
* Accessor reads (``vm.snapshot`` etc., i.e. PropertyCollector.Fetch): stock
  0.24.2 panics on an *unset* property and drops the connection
  (``RemoteDisconnected``); our main.go returns None as vCenter does.
  Connectors should use the PropertyCollector anyway.
* Custom attributes: WORKS. ``CustomFieldsManager.AddCustomFieldDef(name=...,
  moType=vim.VirtualMachine)`` (keys 0, 1, 2, ...; DuplicateName on repeats),
  ``CustomFieldsManager.SetField`` and ``vm.setCustomValue(key=name, value=...)``;
  values show in ``customValue``/``value`` and the defs in ``availableField``
  and ``customFieldsManager.field``. Caveat: setting the same key twice
  *appends* a second value instead of replacing it (vCenter replaces), so set
  each field once; ``populate`` does.
* Snapshots: WORKS. ``CreateSnapshot_Task`` builds a tree (second snapshot is a
  child of the current one), ``snapshot.currentSnapshot`` and
  ``rootSnapshotList`` are set. ``createTime`` is always "now" (it cannot be
  backdated), ``RemoveAllSnapshots_Task`` and ``RevertToCurrentSnapshot_Task`` exist.
* MarkAsTemplate: WORKS, but only for powered-off VMs (InvalidPowerState
  otherwise, as in vCenter): power off first. Then ``config.template`` and
  ``summary.config.template`` are true and ``resourcePool`` is unset.
* CloneVM_Task: WORKS, from a VM or a template (a pool must be given in
  ``spec.location.pool`` when cloning a template); ``spec.template=True``
  produces a template directly (even from a powered-on source). The clone gets
  a new instanceUuid.
* Power tasks work. Any non-empty user/password is accepted.
* Speed (2 cores): building the binary 11-14 s cold on an idle machine (~40 s
  when the cores are busy; 1-2 s incremental; + ~10 s apt-get if Go/govmomi
  are missing). A 5,000-VM model costs ~3.7 s of CPU: ready in ~2.5 s idle,
  ~7.5 s under load, with the datastore directories on tmpfs (this module uses
  /dev/shm when it can); ~25-30 s on the ext4 disk. Listing 5,000 VMs (2
  properties) ~0.6 s; populate() on 5,000 VMs ~11 s (SetField ~0.25 ms per
  call, CreateSnapshot_Task ~3.5 ms).

Not covered by 0.24.2's simulator as wired here: vAPI REST (tags), events with
history, and realistic performance counters.
"""

from __future__ import annotations

import contextlib
import os
import random
import selectors
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-vcsim.sh"
VCSIM_SOURCE = REPO_ROOT / "tools" / "vcsim" / "main.go"
DEFAULT_BINARY = REPO_ROOT / "var" / "bin" / "vcsim"

URL_PREFIX = "VCSIM_URL="

DEFAULT_SITES = ("fra1", "ams2", "dub1", "lon3")
DEFAULT_ENVIRONMENTS = ("prod", "staging", "dev", "dr")
DEFAULT_OWNERS = ("team-payments", "team-identity", "team-data", "team-platform", "team-web")
# Golden images: populate() clones one vSphere template per name.
DEFAULT_IMAGES = ("rhel9-golden-2026.10", "ubuntu2404-golden-2026.09", "win2022-golden-2026.08")
# Image names VMs may still carry in the "template" attribute, with no template left.
DEFAULT_RETIRED_IMAGES = ("rhel8-golden-2025.02",)
CUSTOM_FIELDS = ("site", "environment", "owner", "template")


class VcsimError(RuntimeError):
    """vcsim could not be built or started."""


def vcsim_binary() -> Path:
    return Path(os.environ["VCSIM_BIN"]) if os.environ.get("VCSIM_BIN") else DEFAULT_BINARY


def vcsim_needs_build() -> bool:
    """True if start_vcsim() would have to (re)build the binary (slow: ~15 s, maybe apt-get)."""
    binary = vcsim_binary()
    if os.environ.get("VCSIM_BIN"):
        return not binary.exists()
    if not binary.exists():
        return True
    return VCSIM_SOURCE.exists() and binary.stat().st_mtime <= VCSIM_SOURCE.stat().st_mtime


def ensure_vcsim(timeout: float = 1200) -> Path:
    """Build var/bin/vcsim if needed (scripts/build-vcsim.sh is idempotent) and return its path."""
    binary = vcsim_binary()
    if os.environ.get("VCSIM_BIN"):
        if not binary.exists():
            raise VcsimError(f"VCSIM_BIN={binary} does not exist")
        return binary
    if not vcsim_needs_build():
        return binary
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0 or not binary.exists():
        raise VcsimError(
            f"{BUILD_SCRIPT.relative_to(REPO_ROOT)} failed (exit {proc.returncode}):\n"
            f"{proc.stdout[-4000:]}{proc.stderr[-4000:]}"
        )
    return binary


@dataclass
class VcsimServer:
    """A running vcsim. ``url`` is the SDK URL with credentials, as printed by vcsim."""

    url: str
    host: str
    port: int
    user: str
    password: str
    tls: bool
    process: subprocess.Popen[bytes]
    log_path: Path
    datacenters: int
    clusters: int
    hosts_per_cluster: int
    vms_per_cluster: int

    @property
    def expected_vms(self) -> int:
        """VMs the model creates (before populate() adds image templates)."""
        return self.datacenters * self.clusters * self.vms_per_cluster

    @property
    def sdk_url(self) -> str:
        """The SDK URL without credentials."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/sdk"

    @property
    def protocol(self) -> str:
        return "https" if self.tls else "http"

    def connect(self) -> Any:
        """A pyVmomi ServiceInstance logged in to this server (certificate checks off)."""
        from pyVim.connect import SmartConnect

        return SmartConnect(
            protocol=self.protocol,
            host=self.host,
            port=self.port,
            user=self.user,
            pwd=self.password,
            disableSslCertValidation=True,
        )

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _datastore_parent() -> str | None:
    """tmpfs is ~10x faster than ext4 for vcsim's per-VM files: use /dev/shm when possible."""
    shm = Path("/dev/shm")
    try:
        if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 512 * 1024 * 1024:
            return str(shm)
    except OSError:
        pass
    return None


def _read_url_line(proc: subprocess.Popen[bytes], deadline: float) -> str:
    assert proc.stdout is not None
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise VcsimError("timed out waiting for the VCSIM_URL line")
            if not sel.select(timeout=min(remaining, 0.5)):
                if proc.poll() is not None:
                    raise VcsimError(f"vcsim exited with code {proc.returncode} before printing its URL")
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                proc.wait(timeout=5)
                raise VcsimError(f"vcsim exited with code {proc.returncode} before printing its URL")
            buf += chunk
    line = buf.split(b"\n", 1)[0].decode().strip()
    if not line.startswith(URL_PREFIX):
        raise VcsimError(f"unexpected first line from vcsim: {line!r}")
    return line[len(URL_PREFIX) :]


_RETRIEVE_SERVICE_CONTENT = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    b'<soapenv:Body><RetrieveServiceContent xmlns="urn:vim25">'
    b'<_this type="ServiceInstance">ServiceInstance</_this>'
    b"</RetrieveServiceContent></soapenv:Body></soapenv:Envelope>"
)


def _wait_for_sdk(sdk_url: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """POST RetrieveServiceContent until the SDK answers with a ServiceContent."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # No proxies: an http(s)_proxy in the environment must not intercept loopback checks.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx)
    )
    last: Exception | str = "no attempt"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise VcsimError(f"vcsim exited with code {proc.returncode} while waiting for the SDK")
        req = urllib.request.Request(
            sdk_url,
            data=_RETRIEVE_SERVICE_CONTENT,
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "urn:vim25/6.5"},
        )
        try:
            with opener.open(req, timeout=5) as r:
                body = r.read()
            if b"rootFolder" in body:
                return
            last = f"unexpected answer: {body[:200]!r}"
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise VcsimError(f"vcsim SDK at {sdk_url} did not answer in time (last: {last})")


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM the process group (vcsim cleans its datastore dirs), SIGKILL if it hangs."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


@contextlib.contextmanager
def start_vcsim(
    vms: int = 8,
    datacenters: int = 1,
    tls: bool = True,
    *,
    clusters: int = 1,
    hosts_per_cluster: int = 2,
    host: str = "127.0.0.1",
    port: int = 0,
    max_objects: int = 0,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 120,
    build: bool = True,
) -> Iterator[VcsimServer]:
    """Start vcsim and yield a VcsimServer; SIGTERM its process group on exit.

    ``vms`` is the TOTAL number of VMs: they are spread evenly over
    ``datacenters * clusters`` clusters (vcsim's ``-vm`` is per cluster root pool),
    so ``vms`` must be divisible by ``datacenters * clusters``.
    ``max_objects`` > 0 caps every PropertyCollector page server-side.
    ``port=0`` lets vcsim pick a free port (no race). ``build=False`` fails
    instead of building when the binary is missing or stale.
    """
    if min(vms, datacenters, clusters, hosts_per_cluster, max_objects) < 0:
        raise ValueError("counts must be >= 0")
    pools = datacenters * clusters
    if vms and (pools == 0 or vms % pools):
        raise ValueError(f"vms={vms} is not divisible by datacenters*clusters={pools}")
    per_cluster = vms // pools if pools else 0

    if build:
        binary = ensure_vcsim()
    else:
        binary = vcsim_binary()
        if vcsim_needs_build():
            raise VcsimError(f"{binary} is missing or older than {VCSIM_SOURCE}; run scripts/build-vcsim.sh")

    workdir = Path(tempfile.mkdtemp(prefix="rf-vcsim-", dir=_datastore_parent()))
    log_path = workdir / "vcsim.log"
    cmd = [
        str(binary),
        "-l", f"{host}:{port}",
        "-dc", str(datacenters),
        "-cluster", str(clusters),
        "-host", str(hosts_per_cluster),
        "-vm", str(per_cluster),
        f"-tls={'true' if tls else 'false'}",
        "-max-objects", str(max_objects),
        "-tmpdir", str(workdir),
        "-exit-on-stdin-eof",  # we hold stdin open: if this process dies, vcsim exits too
        *extra_args,
    ]  # fmt: skip
    env = {**os.environ, "TMPDIR": str(workdir)}
    proc: subprocess.Popen[bytes] | None = None
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                start_new_session=True,  # own process group: killpg stops everything
            )
        deadline = time.monotonic() + startup_timeout
        try:
            url = _read_url_line(proc, deadline)
            parts = urlsplit(url)
            server = VcsimServer(
                url=url,
                host=parts.hostname or host,
                port=parts.port or 0,
                user=parts.username or "user",
                password=parts.password or "pass",
                tls=parts.scheme == "https",
                process=proc,
                log_path=log_path,
                datacenters=datacenters,
                clusters=clusters,
                hosts_per_cluster=hosts_per_cluster,
                vms_per_cluster=per_cluster,
            )
            _wait_for_sdk(server.sdk_url, proc, deadline)
        except VcsimError as exc:
            raise VcsimError(
                f"{exc}\ncommand: {' '.join(cmd)}\nvcsim log:\n{log_path.read_text(errors='replace')[-4000:]}"
            ) from None
        yield server
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------- PropertyCollector


def retrieve_vms(si: Any, paths: Sequence[str] = ("name",), page_size: int = 1000) -> list[dict[str, Any]]:
    """All VirtualMachines (templates included) with ``paths``, paged via RetrievePropertiesEx.

    Each row is ``{"obj": vim.VirtualMachine, "moid": str, <path>: value}``; unset
    properties are missing from the row (use ``row.get``).
    """
    from pyVmomi import vim, vmodl

    pc_types = vmodl.query.PropertyCollector
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        spec = pc_types.FilterSpec(
            objectSet=[
                pc_types.ObjectSpec(
                    obj=view,
                    skip=True,
                    selectSet=[
                        pc_types.TraversalSpec(
                            name="view", path="view", skip=False, type=vim.view.ContainerView
                        )
                    ],
                )
            ],
            propSet=[pc_types.PropertySpec(type=vim.VirtualMachine, pathSet=list(paths))],
        )
        collector = content.propertyCollector
        result = collector.RetrievePropertiesEx(
            specSet=[spec], options=pc_types.RetrieveOptions(maxObjects=page_size)
        )
        rows: list[dict[str, Any]] = []
        while result is not None:
            for oc in result.objects:
                row: dict[str, Any] = {"obj": oc.obj, "moid": oc.obj._moId}
                row.update({prop.name: prop.val for prop in oc.propSet})
                rows.append(row)
            if not result.token:
                break
            result = collector.ContinueRetrievePropertiesEx(token=result.token)
        return rows
    finally:
        view.DestroyView()


def custom_values(values: Sequence[Any] | None, field_names: dict[int, str]) -> dict[str, str]:
    """Turn a ``customValue`` list into ``{field name: value}`` (last value wins)."""
    return {field_names.get(v.key, str(v.key)): v.value for v in values or ()}


# --------------------------------------------------------------------------- populate


@dataclass
class Population:
    """What populate() did; everything is keyed by VM name and sorted for determinism."""

    seed: int
    field_keys: dict[str, int]
    attributes: dict[str, dict[str, str]]  # VM name -> {"site": ..., ...} (missing keys were left unset)
    templates: list[str]  # existing VMs powered off and marked as template
    image_templates: dict[str, str]  # golden image name -> moid of the template cloned for it
    snapshots: dict[str, list[str]]  # VM name -> snapshot names, root first (VMs without are absent)
    elapsed_s: float = 0.0


def _wait_task(task: Any, timeout: float = 60) -> Any:
    """Wait for a task with plain property reads (vcsim usually finishes before returning)."""
    from pyVmomi import vim

    deadline = time.monotonic() + timeout
    while True:
        info = task.info
        if info.state == vim.TaskInfo.State.success:
            return info.result
        if info.state == vim.TaskInfo.State.error:
            raise VcsimError(f"task {info.descriptionId} on {info.entityName} failed: {info.error}")
        if time.monotonic() > deadline:
            raise VcsimError(f"task {info.descriptionId} on {info.entityName} timed out")
        time.sleep(0.01)


def populate(
    si: Any,
    seed: int = 0,
    *,
    sites: Sequence[str] = DEFAULT_SITES,
    environments: Sequence[str] = DEFAULT_ENVIRONMENTS,
    owners: Sequence[str] = DEFAULT_OWNERS,
    images: Sequence[str] = DEFAULT_IMAGES,
    retired_images: Sequence[str] = DEFAULT_RETIRED_IMAGES,
    template_fraction: float = 0.0,
    snapshot_fraction: float = 0.1,
    max_snapshots: int = 3,
    missing_fraction: float = 0.0,
    workers: int = 4,
) -> Population:
    """Give the model's VMs custom attributes, snapshots and templates, deterministically.

    Call once per fresh server. The plan depends only on ``seed``, the
    parameters and the sorted VM names, never on timing:

    * custom fields ``site``, ``environment``, ``owner``, ``template`` (VM type)
      are defined; every VM gets each one (unless skipped with probability
      ``missing_fraction``); ``template`` is drawn from ``images + retired_images``;
    * one vSphere template per name in ``images`` is cloned (``CloneVM_Task``,
      ``spec.template=True``) from the first VM into the first datacenter's VM
      folder, named exactly like the image, so the VM count grows by ``len(images)``;
    * a ``template_fraction`` of the VMs is powered off and marked as template;
    * a ``snapshot_fraction`` of the other VMs gets 1..``max_snapshots`` snapshots
      named ``snap-0``, ``snap-1``, ... (a chain).

    5,000 VMs with the defaults take ~10 s (20,000 SetField calls).
    """
    from pyVmomi import vim

    started = time.monotonic()
    rng = random.Random(seed)
    content = si.RetrieveContent()

    rows = sorted(
        (
            r
            for r in retrieve_vms(si, ["name", "config.template", "runtime.powerState"])
            if not r.get("config.template")
        ),
        key=lambda r: r["name"],
    )
    if not rows:
        raise VcsimError("populate: the model has no VMs")

    # Plan first (pure function of seed + names), then apply in parallel.
    attribute_values = {
        "site": list(sites),
        "environment": list(environments),
        "owner": list(owners),
        "template": list(images) + list(retired_images),
    }
    plan: dict[str, dict[str, Any]] = {}
    for row in rows:
        attrs = {}
        for name in CUSTOM_FIELDS:
            value = rng.choice(attribute_values[name]) if attribute_values[name] else None
            if value is not None and rng.random() >= missing_fraction:
                attrs[name] = value
        is_template = rng.random() < template_fraction
        n_snap = (
            rng.randint(1, max_snapshots) if rng.random() < snapshot_fraction and max_snapshots > 0 else 0
        )
        plan[row["name"]] = {
            "attributes": attrs,
            "template": is_template,
            "snapshots": [] if is_template else [f"snap-{i}" for i in range(n_snap)],
        }

    cfm = content.customFieldsManager
    existing = {f.name: f.key for f in cfm.field or () if f.managedObjectType in (vim.VirtualMachine, None)}
    field_keys = {}
    for name in CUSTOM_FIELDS:
        field_keys[name] = (
            existing[name]
            if name in existing
            else cfm.AddCustomFieldDef(name=name, moType=vim.VirtualMachine).key
        )

    # Golden image templates, cloned from the first VM into the first datacenter.
    image_templates: dict[str, str] = {}
    if images:
        source = rows[0]["obj"]
        datacenter = next(e for e in content.rootFolder.childEntity if isinstance(e, vim.Datacenter))
        spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(), powerOn=False, template=True)
        for image in images:
            clone = _wait_task(source.CloneVM_Task(folder=datacenter.vmFolder, name=image, spec=spec))
            image_templates[image] = clone._moId

    def apply(row: dict[str, Any]) -> None:
        vm, item = row["obj"], plan[row["name"]]
        for name, value in item["attributes"].items():
            cfm.SetField(entity=vm, key=field_keys[name], value=value)
        if item["template"]:
            if row.get("runtime.powerState") != vim.VirtualMachine.PowerState.poweredOff:
                _wait_task(vm.PowerOffVM_Task())
            vm.MarkAsTemplate()
        for snap in item["snapshots"]:
            _wait_task(
                vm.CreateSnapshot_Task(
                    name=snap, description=f"populate seed={seed}", memory=False, quiesce=False
                )
            )

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(apply, rows))  # list() re-raises the first failure

    return Population(
        seed=seed,
        field_keys=field_keys,
        attributes={name: dict(item["attributes"]) for name, item in plan.items()},
        templates=sorted(name for name, item in plan.items() if item["template"]),
        image_templates=image_templates,
        snapshots={name: list(item["snapshots"]) for name, item in plan.items() if item["snapshots"]},
        elapsed_s=time.monotonic() - started,
    )
