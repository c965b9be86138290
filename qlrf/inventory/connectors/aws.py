"""AWS live discovery through botocore (the SDK under boto3): EC2 instances, the AMIs they run, Auto Scaling groups, EBS snapshots.

What it lists, per account x region (scope `aws:<account>/<region>`):

| call (paginated where AWS pages)                           | becomes                                          |
|------------------------------------------------------------|--------------------------------------------------|
| ec2 DescribeInstances (1000 per page)                      | Normalised.vms via qlrf.inventory.normalize.aws.instance_row |
| autoscaling DescribeAutoScalingGroups (100 per page)       | facts["scaling_groups"]                          |
| ec2 DescribeLaunchTemplateVersions ($Default/$Latest/n,    | scaling group `would_launch_image` (one call per |
|   all versions a template is used with in one call)        | template; `resolve:ssm:` ids via ssm GetParameters) |
| autoscaling DescribeLaunchConfigurations (50 per call)     | scaling group `would_launch_image`               |
| ec2 DescribeImages (image-id filter, 200 ids per call)     | facts["images"]: every AMI an instance runs or a |
|                                                            | group would launch (found=False if AWS no longer shows it) |
| ec2 DescribeSnapshots, owned + completed (1000 per page);  | Normalised.snapshots via snapshot_row: the newest |
|   or by volume-id filter, 200 volumes per call             | completed snapshot of each attached volume       |

Accounts: the default credential chain (unless `include_default=False`) plus every role in
`role_arns`, assumed with STS from the default chain. Regions: the configured list, or every region
enabled in each account (DescribeRegions). Account x region scopes run concurrently on one thread
pool; inside a scope the instance listing, the scaling-group look-ups and the snapshot listing
overlap on a second pool of leaf calls (which never wait on that pool themselves, so it cannot
deadlock). Each worker thread keeps one botocore Session per account; all sessions share one botocore
loader, so the large EC2 service model is parsed once per process, not once per thread or run.

Failures never raise: an account that cannot be assumed or has no/expired credentials is recorded as
`aws:<account>/*`; a region whose instance listing fails as `aws:<account>/<region>` (no VM rows from
it); a region whose instances were read but one of the other look-ups failed as
`aws:<account>/<region>:<part>` (part = images | scaling_groups | snapshots; its VMs are kept).
Reasons name the account or role ARN and the AWS error code, never a credential.

Throttling: every client uses botocore's adaptive retry mode (client-side rate limiting plus
exponential backoff) with `max_attempts` 10, which botocore counts as retries after the first call.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)

from qlrf.envparse import positive_int, split_list
from qlrf.inventory.connectors.common import ScopeFailed
from qlrf.inventory.contract import Normalised
from qlrf.inventory.normalize.aws import instance_row, snapshot_row, volume_owners
from qlrf.inventory.normalize.common import parse_time, reject
from qlrf.inventory.tags import TagMapping

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

PAGE_SIZE_INSTANCES = 1000  # DescribeInstances maximum
PAGE_SIZE_SNAPSHOTS = 1000  # DescribeSnapshots maximum
PAGE_SIZE_GROUPS = 100  # DescribeAutoScalingGroups maximum
FILTER_CHUNK = 200  # values per EC2 filter
LAUNCH_CONFIG_CHUNK = 50  # DescribeLaunchConfigurations names per call
SSM_CHUNK = 10  # GetParameters names per call

_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_INVALID = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "AuthFailure"}
_ROW_ERRORS = (ValueError, KeyError, TypeError, AttributeError)


@dataclass
class AwsConfig:
    """What to discover and how hard to push. Credentials are never configured here: the default
    chain (env, shared files, SSO, container/instance role) is the base; roles are assumed from it."""

    role_arns: list[str] = field(default_factory=list)
    regions: list[str] | None = None  # None: every region enabled in each account
    include_default: bool = True  # also discover the account of the default chain itself
    max_workers: int = 16
    endpoint_url: str | None = None  # tests; botocore also honours AWS_ENDPOINT_URL
    external_id: str | None = None  # sts:ExternalId for every assumed role
    session_name: str = "qlrf-discovery"
    duration_seconds: int = 3600
    max_attempts: int = 10  # botocore retries={"max_attempts": n}: retries after the first call
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    home_region: str | None = None  # STS / DescribeRegions; default: AWS_DEFAULT_REGION, then us-east-1
    # How to find each volume's newest snapshot: "owned" lists every completed snapshot the account owns
    # (starts as soon as the first instance page is in: fewest calls); "by_volume" asks only for the
    # attached volumes' snapshots, 200 volume ids per call, after the instance listing: fewer bytes when
    # an account keeps many snapshots of deleted volumes or of AMIs.
    snapshot_listing: str = "owned"

    def __post_init__(self) -> None:
        if self.snapshot_listing not in ("owned", "by_volume"):
            raise ValueError(f"snapshot_listing={self.snapshot_listing!r}: expected owned or by_volume")


def config_from_env(env: Mapping[str, str] | None = None) -> AwsConfig:
    """QLRF_AWS_ROLE_ARNS, QLRF_AWS_REGIONS (comma lists), QLRF_AWS_MAX_WORKERS, QLRF_AWS_EXTERNAL_ID,
    QLRF_AWS_INCLUDE_DEFAULT (true/false), QLRF_AWS_MAX_ATTEMPTS, QLRF_AWS_SNAPSHOT_LISTING
    (owned/by_volume). Read when called, never at import."""
    env = os.environ if env is None else env
    config = AwsConfig(
        role_arns=split_list(env.get("QLRF_AWS_ROLE_ARNS")),
        regions=split_list(env.get("QLRF_AWS_REGIONS")) or None,
        external_id=env.get("QLRF_AWS_EXTERNAL_ID") or None,
    )
    if env.get("QLRF_AWS_MAX_WORKERS"):
        config.max_workers = positive_int(env["QLRF_AWS_MAX_WORKERS"], "QLRF_AWS_MAX_WORKERS")
    if env.get("QLRF_AWS_MAX_ATTEMPTS"):
        config.max_attempts = positive_int(env["QLRF_AWS_MAX_ATTEMPTS"], "QLRF_AWS_MAX_ATTEMPTS", minimum=0)
    if env.get("QLRF_AWS_SNAPSHOT_LISTING"):
        config.snapshot_listing = env["QLRF_AWS_SNAPSHOT_LISTING"].strip()
        config.__post_init__()
    flag = (env.get("QLRF_AWS_INCLUDE_DEFAULT") or "true").strip().lower()
    if flag not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"QLRF_AWS_INCLUDE_DEFAULT={flag!r}: expected true or false")
    config.include_default = flag in ("true", "1", "yes")
    for arn in config.role_arns:
        _role_account(arn)  # fail fast on a malformed ARN
    return config


def _role_account(role_arn: str) -> str:
    parts = role_arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != "iam" or not parts[4].isdigit():
        raise ValueError(f"{role_arn!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    return parts[4]


def client_config(config: AwsConfig) -> Config:
    return Config(
        retries={"mode": "adaptive", "max_attempts": config.max_attempts},
        max_pool_connections=max(10, config.max_workers),
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        user_agent_extra="qlrf-discovery",
    )


# --------------------------------------------------------------------------------------------------
# Accounts and sessions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Account:
    account_id: str
    via: str  # "default credentials" or the role ARN, for messages
    credentials: tuple[str, str, str] | None = field(default=None, repr=False)  # assumed role keys


_LOADER: botocore.loaders.Loader | None = None
_LOADER_LOCK = threading.Lock()


def _shared_loader() -> botocore.loaders.Loader:
    """One botocore data loader per process: service models are read-only once parsed, and parsing
    the EC2 model costs ~0.15 s of CPU, which every new session would otherwise pay again."""
    global _LOADER
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = botocore.loaders.create_loader()
        return _LOADER


class _Sessions:
    """One botocore Session per (worker thread, account): Sessions are not thread-safe, clients are.

    botocore rather than boto3: we only need low-level clients, and boto3's import (s3transfer)
    costs ~0.2 s of every fresh `qlrf discover` process."""

    def __init__(self, config: AwsConfig):
        self._config = config
        self._client_config = client_config(config)
        self._loader = _shared_loader()
        self._local = threading.local()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            if os.environ.get(name):
                self._secrets.add(os.environ[name])

    def remember_secret(self, *values: str) -> None:
        with self._lock:
            self._secrets.update(v for v in values if v)

    def scrub(self, text: str) -> str:
        """Belt and braces: no credential value survives into a reason or a log line."""
        with self._lock:
            secrets = list(self._secrets)
        for secret in secrets:
            text = text.replace(secret, "***")
        return text[:500]

    def session(self, account: _Account | None) -> botocore.session.Session:
        cache: dict[str, botocore.session.Session] = self._local.__dict__.setdefault("sessions", {})
        key = account.account_id if account and account.credentials else ""
        session = cache.get(key)
        if session is None:
            session = botocore.session.Session()
            session.register_component("data_loader", self._loader)  # shared: parse each model once
            if account is not None and account.credentials:
                session.set_credentials(*account.credentials)
            cache[key] = session
        return session

    def warm(self) -> None:
        """Load the service models and endpoint rules into the shared loader once, in this thread, before
        the workers would each parse them at the same time (~0.15 s of CPU apiece for EC2)."""
        for service in ("sts", "ec2", "autoscaling"):
            try:
                self.client(None, service, self.home_region())
            except (BotoCoreError, ValueError) as exc:  # a bad region name fails later, per scope
                log.debug("warming %s client: %s", service, exc)
                return

    def home_region(self) -> str:
        return self._config.home_region or self.session(None).get_config_variable("region") or "us-east-1"

    def client(self, account: _Account | None, service: str, region: str) -> Any:
        return self.session(account).create_client(
            service,
            region_name=region,
            endpoint_url=self._config.endpoint_url,
            config=self._client_config,
        )


def _explain(exc: BaseException, who: str) -> str:
    """A reason a person can act on; built from codes and AWS messages, never from credential values."""
    if isinstance(exc, NoCredentialsError):
        return (
            f"{who}: no AWS credentials found in the default chain (environment, shared config/credentials "
            "files, SSO, container or instance role)"
        )
    if isinstance(exc, PartialCredentialsError):
        return f"{who}: incomplete AWS credentials in the default chain ({exc})"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", ""))
        op = exc.operation_name
        if code in _EXPIRED:
            return f"{who}: credentials are expired ({code} on {op}); refresh them (e.g. `aws sso login`)"
        if code in _INVALID:
            return f"{who}: credentials were rejected ({code} on {op}): {message}"
        return f"{who}: {op} failed: {code}: {message}"
    if isinstance(exc, EndpointConnectionError):
        return f"{who}: cannot reach the endpoint: {exc}"
    if isinstance(exc, BotoCoreError):
        return f"{who}: {type(exc).__name__}: {exc}"
    return f"{who}: unexpected {type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------------------------------
# Fact rows (pure functions over API shapes)
# --------------------------------------------------------------------------------------------------


def image_fact(image: dict | None, image_id: str, account: str, region: str, discovered_at: datetime) -> dict:
    """One referenced AMI as seen from `account` in `region`; found=False if AWS no longer shows it
    (deregistered, or a private image no longer shared with the account)."""
    image = image or {}
    return {
        "platform": "aws",
        "image_type": "ami",
        "image_id": image_id,
        "account": account,
        "region": region,
        "found": bool(image),
        "name": image.get("Name"),
        "description": image.get("Description"),
        "owner_id": image.get("OwnerId"),
        "owner_alias": image.get("ImageOwnerAlias"),
        "created_at": parse_time(image.get("CreationDate"), "CreationDate"),
        "deprecated_at": parse_time(image.get("DeprecationTime"), "DeprecationTime"),
        "state": image.get("State"),
        "public": image.get("Public"),
        "tags": {str(t["Key"]): str(t.get("Value", "")) for t in image.get("Tags") or []},
        "discovered_at": discovered_at,
    }


def _launch_spec(group: dict) -> tuple[str | None, dict | None, str | None]:
    """(source, launch template spec, launch configuration name) of an Auto Scaling group."""
    if group.get("LaunchTemplate"):
        return "launch_template", group["LaunchTemplate"], None
    mixed = ((group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}).get(
        "LaunchTemplateSpecification"
    )
    if mixed:
        return "mixed_instances_policy", mixed, None
    if group.get("LaunchConfigurationName"):
        return "launch_configuration", None, group["LaunchConfigurationName"]
    return None, None, None


def _template_key(spec: dict) -> tuple[str, str]:
    if spec.get("LaunchTemplateId"):
        return "LaunchTemplateId", spec["LaunchTemplateId"]
    return "LaunchTemplateName", spec.get("LaunchTemplateName") or ""


# --------------------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------------------


@dataclass
class _ScopeResult:
    account: str
    region: str
    out: Normalised
    seconds: float

    @property
    def summary(self) -> str:
        facts = self.out.facts
        parts = [
            f"{len(self.out.vms)} VMs",
            f"{len(facts.get('images', []))} AMIs",
            f"{len(facts.get('scaling_groups', []))} scaling groups",
            f"{len(self.out.snapshots)} snapshots",
        ]
        if self.out.failed_scopes:
            parts.append(
                "incomplete: " + ", ".join(f["scope"].rsplit(":", 1)[-1] for f in self.out.failed_scopes)
            )
        return f"aws {self.account}/{self.region}: " + ", ".join(parts) + f" ({self.seconds:.1f} s)"


class _Discovery:
    def __init__(
        self, config: AwsConfig, mapping: TagMapping, discovered_at: datetime, fetch: ThreadPoolExecutor
    ):
        self.config = config
        self.mapping = mapping
        self.discovered_at = discovered_at
        self.sessions = _Sessions(config)
        self._fetch = fetch

    def fan_out(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """Run fn over items on the fetch pool (one item runs inline); first exception propagates.
        Only leaf calls go to the fetch pool (they never wait on it themselves), so it cannot deadlock."""
        if len(items) <= 1:
            return [fn(item) for item in items]
        return [f.result() for f in [self._fetch.submit(fn, item) for item in items]]

    # ---- accounts ------------------------------------------------------------------------------

    def default_account(self) -> _Account:
        try:
            sts = self.sessions.client(None, "sts", self.sessions.home_region())
            account_id = sts.get_caller_identity()["Account"]
        except (BotoCoreError, ClientError) as exc:
            raise ScopeFailed(
                "aws:default/*", self.sessions.scrub(_explain(exc, "default credentials"))
            ) from None
        return _Account(account_id=str(account_id), via="default credentials")

    def assumed_account(self, role_arn: str) -> _Account:
        account_id = _role_account(role_arn)
        kwargs: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": self.config.session_name,
            "DurationSeconds": self.config.duration_seconds,
        }
        if self.config.external_id:
            kwargs["ExternalId"] = self.config.external_id
        try:
            sts = self.sessions.client(None, "sts", self.sessions.home_region())
            creds = sts.assume_role(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            reason = _explain(exc, f"account {account_id}: cannot assume {role_arn}")
            raise ScopeFailed(f"aws:{account_id}/*", self.sessions.scrub(reason)) from None
        c = creds["Credentials"]
        self.sessions.remember_secret(c["SecretAccessKey"], c["SessionToken"])
        assumed = str((creds.get("AssumedRoleUser") or {}).get("Arn", ""))
        actual = assumed.split(":")[4] if assumed.count(":") >= 5 and assumed.split(":")[4] else account_id
        return _Account(
            account_id=actual,
            via=role_arn,
            credentials=(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]),
        )

    def enabled_regions(self, account: _Account) -> list[str]:
        try:
            ec2 = self.sessions.client(account, "ec2", self.sessions.home_region())
            regions = ec2.describe_regions(AllRegions=False)["Regions"]
        except (BotoCoreError, ClientError) as exc:
            reason = _explain(exc, f"account {account.account_id} ({account.via}): cannot list regions")
            raise ScopeFailed(f"aws:{account.account_id}/*", self.sessions.scrub(reason)) from None
        return sorted(
            r["RegionName"]
            for r in regions
            if r.get("OptInStatus", "opt-in-not-required") in ("opt-in-not-required", "opted-in")
        )

    # ---- one account x region ------------------------------------------------------------------

    def scope(self, account: _Account, region: str) -> _ScopeResult:
        started = time.perf_counter()
        scope = f"aws:{account.account_id}/{region}"
        who = f"account {account.account_id} ({account.via}) region {region}"
        out = Normalised()

        def failed_part(name: str, exc: BaseException) -> None:
            # Any error here (AWS or an unexpected shape) costs only this part; the VMs are kept.
            reason = self.sessions.scrub(_explain(exc, f"{who} {name}"))
            out.failed_scopes.append({"scope": f"{scope}:{name}", "reason": reason})
            log.warning("%s", reason, exc_info=not isinstance(exc, BotoCoreError | ClientError))

        try:
            ec2 = self.sessions.client(account, "ec2", region)
        except (BotoCoreError, ClientError) as exc:
            raise ScopeFailed(scope, self.sessions.scrub(_explain(exc, who))) from None
        # Per region at most one big paged listing is on its way at a time: instances first, then
        # snapshots. "owned" needs nothing from the instances, so it starts the moment the first
        # instance page has arrived (while that page is still being parsed here); "by_volume" needs
        # their volume ids. The scaling groups are listed alongside; the AMI look-up needs both.
        owned = self.config.snapshot_listing == "owned"
        snapshot_jobs: list[Future] = []
        jobs_lock = threading.Lock()

        def start_owned_snapshots() -> None:
            with jobs_lock:
                if not snapshot_jobs:
                    snapshot_jobs.append(self._fetch.submit(self._owned_snapshots, ec2, account.account_id))

        instances_job = self._fetch.submit(
            self._list_instances, ec2, start_owned_snapshots if owned else None
        )
        groups: list[dict] | None = None
        try:
            groups = self._scaling_groups(account, region, ec2)
        except Exception as exc:
            failed_part("scaling_groups", exc)
        try:
            reservations = instances_job.result()
        except (BotoCoreError, ClientError) as exc:
            raise ScopeFailed(scope, self.sessions.scrub(_explain(exc, who))) from None

        volumes: dict[str, str] = {}
        for reservation in reservations:
            for inst in reservation.get("Instances") or []:
                with contextlib.suppress(*_ROW_ERRORS):
                    volumes.update(volume_owners(inst))
        if owned:
            start_owned_snapshots()  # no-op unless no page arrived (an empty region)
        else:
            ids = sorted(volumes)
            snapshot_jobs.extend(
                self._fetch.submit(self._volume_snapshots, ec2, ids[i : i + FILTER_CHUNK])
                for i in range(0, len(ids), FILTER_CHUNK)
            )
        instances = self._instance_rows(reservations, account, scope, out)
        accepted = {str(i["InstanceId"]) for i in instances}
        volumes = {vol: owner for vol, owner in volumes.items() if owner in accepted}  # as the file import
        image_ids = {str(i["ImageId"]) for i in instances if i.get("ImageId")}
        if groups is not None:
            running = {str(i.get("InstanceId")): i.get("ImageId") for i in instances}
            for row in groups:
                image = row["would_launch_image"]
                if image and image.startswith("ami-"):
                    image_ids.add(image)
                    row["members_on_other_image"] = sum(
                        1 for m in row["members"] if m in running and running[m] != image
                    )
            out.facts["scaling_groups"] = groups
        try:
            self._images(ec2, account, region, image_ids, out)
        except Exception as exc:
            failed_part("images", exc)
        try:
            snapshots = [snap for job in snapshot_jobs for snap in job.result()]
            out.snapshots.extend(_newest_snapshot_rows(snapshots, volumes, region))
        except Exception as exc:
            failed_part("snapshots", exc)
        return _ScopeResult(account.account_id, region, out, time.perf_counter() - started)

    def _list_instances(self, ec2: Any, on_first_page: Callable[[], None] | None = None) -> list[dict]:
        """All reservations; `on_first_page` runs when the first successful page has been received,
        before botocore parses it (the parse of a 1000-instance page is the client's biggest cost)."""
        hook = f"qlrf-first-page-{threading.get_ident()}-{id(ec2)}"
        if on_first_page is not None:
            fired = threading.Event()

            def received(response_dict: dict | None = None, **_: Any) -> None:
                if not fired.is_set() and (response_dict or {}).get("status_code") == 200:
                    fired.set()
                    on_first_page()

            ec2.meta.events.register("before-parse.ec2.DescribeInstances", received, unique_id=hook)
        try:
            reservations: list[dict] = []
            pages = ec2.get_paginator("describe_instances").paginate(
                PaginationConfig={"PageSize": PAGE_SIZE_INSTANCES}
            )
            for page in pages:
                reservations.extend(page.get("Reservations") or [])
            return reservations
        finally:
            if on_first_page is not None:
                ec2.meta.events.unregister("before-parse.ec2.DescribeInstances", unique_id=hook)

    def _instance_rows(
        self, reservations: list[dict], account: _Account, scope: str, out: Normalised
    ) -> list[dict]:
        seen: list[dict] = []
        index = 0
        for reservation in reservations:
            owner_id = str(reservation.get("OwnerId") or account.account_id)
            for inst in reservation.get("Instances") or []:
                try:
                    out.vms.append(instance_row(inst, owner_id, self.mapping, self.discovered_at))
                    seen.append(inst)
                except _ROW_ERRORS as exc:
                    reject(out.errors, exc, scope, index, inst, "InstanceId")
                index += 1
        return seen

    def _images(self, ec2: Any, account: _Account, region: str, image_ids: set[str], out: Normalised) -> None:
        wanted = sorted(i for i in image_ids if i.startswith("ami-"))
        chunks = [wanted[i : i + FILTER_CHUNK] for i in range(0, len(wanted), FILTER_CHUNK)]

        def fetch(chunk: list[str]) -> list[dict]:
            # A filter (not ImageIds) so one deregistered AMI does not fail the whole call with
            # InvalidAMIID.NotFound; deprecated and disabled images must be asked for explicitly.
            return ec2.describe_images(
                Filters=[{"Name": "image-id", "Values": chunk}], IncludeDeprecated=True, IncludeDisabled=True
            ).get("Images", [])

        found = {img["ImageId"]: img for batch in self.fan_out(fetch, chunks) for img in batch}
        out.facts["images"] = [
            image_fact(found.get(i), i, account.account_id, region, self.discovered_at) for i in wanted
        ]

    def _owned_snapshots(self, ec2: Any, account_id: str) -> list[dict]:
        """Every completed snapshot the account owns, 1000 per page (what Cloud Custodian's ebs-snapshot
        lists too). No dependency on the instance listing, so it runs alongside it."""
        snaps: list[dict] = []
        pages = ec2.get_paginator("describe_snapshots").paginate(
            OwnerIds=["self"],
            # The owner-id filter says the same as OwnerIds=self to AWS; moto ignores OwnerIds and would
            # otherwise also return the Amazon-owned snapshots behind its public AMIs.
            Filters=[
                {"Name": "owner-id", "Values": [account_id]},
                {"Name": "status", "Values": ["completed"]},
            ],
            PaginationConfig={"PageSize": PAGE_SIZE_SNAPSHOTS},
        )
        for page in pages:
            snaps.extend(page.get("Snapshots") or [])
        return snaps

    def _volume_snapshots(self, ec2: Any, volume_ids: list[str]) -> list[dict]:
        """Only the snapshots of the given volumes (one chunk of up to 200 ids): fewer bytes than listing
        everything when the account keeps many snapshots of deleted volumes or of AMIs."""
        snaps: list[dict] = []
        pages = ec2.get_paginator("describe_snapshots").paginate(
            OwnerIds=["self"],
            Filters=[
                {"Name": "volume-id", "Values": volume_ids},
                {"Name": "status", "Values": ["completed"]},
            ],
            PaginationConfig={"PageSize": PAGE_SIZE_SNAPSHOTS},
        )
        for page in pages:
            snaps.extend(page.get("Snapshots") or [])
        return snaps

    def _scaling_groups(self, account: _Account, region: str, ec2: Any) -> list[dict]:
        autoscaling = self.sessions.client(account, "autoscaling", region)
        groups: list[dict] = []
        pages = autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
            PaginationConfig={"PageSize": PAGE_SIZE_GROUPS}
        )
        for page in pages:
            groups.extend(page.get("AutoScalingGroups") or [])
        if not groups:
            return []

        # Launch templates: one DescribeLaunchTemplateVersions per template, all requested versions at once.
        wanted: dict[tuple[str, str], set[str]] = {}
        config_names: set[str] = set()
        for group in groups:
            _, spec, config_name = _launch_spec(group)
            if spec:
                wanted.setdefault(_template_key(spec), set()).add(str(spec.get("Version") or "$Default"))
            if config_name:
                config_names.add(config_name)

        def versions(item: tuple[tuple[str, str], set[str]]) -> tuple[tuple[str, str], dict[str, Any]]:
            (kind, value), requested = item
            try:
                resp = ec2.describe_launch_template_versions(**{kind: value}, Versions=sorted(requested))
            except ClientError as exc:
                return (kind, value), {"error": _explain(exc, f"launch template {value}")}
            items = resp.get("LaunchTemplateVersions") or []
            resolved: dict[str, Any] = {}
            for version in requested:
                match = None
                if version == "$Default":
                    match = next((v for v in items if v.get("DefaultVersion")), None)
                elif version == "$Latest":
                    match = max(items, key=lambda v: v.get("VersionNumber", 0), default=None)
                else:
                    match = next((v for v in items if str(v.get("VersionNumber")) == version), None)
                resolved[version] = match
            return (kind, value), resolved

        templates = dict(self.fan_out(versions, list(wanted.items())))

        configs: dict[str, dict] = {}
        names = sorted(config_names)
        for i in range(0, len(names), LAUNCH_CONFIG_CHUNK):
            resp = autoscaling.describe_launch_configurations(
                LaunchConfigurationNames=names[i : i + LAUNCH_CONFIG_CHUNK]
            )
            for lc in resp.get("LaunchConfigurations") or []:
                configs[lc["LaunchConfigurationName"]] = lc

        rows = []
        for group in groups:
            source, spec, config_name = _launch_spec(group)
            image: str | None = None
            resolved_version: int | None = None
            error: str | None = None
            if spec:
                entry = templates.get(_template_key(spec)) or {}
                version = str(spec.get("Version") or "$Default")
                if "error" in entry:
                    error = entry["error"]
                elif entry.get(version) is None:
                    error = f"launch template {spec.get('LaunchTemplateName') or spec.get('LaunchTemplateId')} has no version {version}"
                else:
                    match = entry[version]
                    resolved_version = match.get("VersionNumber")
                    image = (match.get("LaunchTemplateData") or {}).get("ImageId")
            elif config_name:
                lc = configs.get(config_name)
                if lc is None:
                    error = f"launch configuration {config_name} not found"
                else:
                    image = lc.get("ImageId")
            members = sorted(str(i["InstanceId"]) for i in group.get("Instances") or [])
            rows.append(
                {
                    "platform": "aws",
                    "account": account.account_id,
                    "region": region,
                    "group_name": group.get("AutoScalingGroupName"),
                    "group_arn": group.get("AutoScalingGroupARN"),
                    "desired_capacity": group.get("DesiredCapacity"),
                    "min_size": group.get("MinSize"),
                    "max_size": group.get("MaxSize"),
                    "members": members,
                    "member_count": len(members),
                    "launch_source": source,
                    "launch_template_id": (spec or {}).get("LaunchTemplateId"),
                    "launch_template_name": (spec or {}).get("LaunchTemplateName"),
                    "launch_template_version": str(spec.get("Version") or "$Default") if spec else None,
                    "launch_template_resolved_version": resolved_version,
                    "launch_configuration": config_name,
                    "would_launch_image": image,
                    "members_on_other_image": None,
                    "resolve_error": error,
                    "discovered_at": self.discovered_at,
                }
            )
        self._resolve_ssm_images(account, region, rows)
        return rows

    def _resolve_ssm_images(self, account: _Account, region: str, rows: list[dict]) -> None:
        """Launch templates may say `resolve:ssm:<parameter>`; the AMI is that parameter's value now."""
        refs = sorted(
            {
                r["would_launch_image"]
                for r in rows
                if (r["would_launch_image"] or "").startswith("resolve:ssm:")
            }
        )
        if not refs:
            return
        values: dict[str, str] = {}
        try:
            ssm = self.sessions.client(account, "ssm", region)
            names = [ref.removeprefix("resolve:ssm:") for ref in refs]
            for i in range(0, len(names), SSM_CHUNK):
                for param in ssm.get_parameters(Names=names[i : i + SSM_CHUNK]).get("Parameters") or []:
                    values["resolve:ssm:" + param["Name"]] = param["Value"]
        except (BotoCoreError, ClientError) as exc:
            reason = self.sessions.scrub(_explain(exc, "SSM parameter"))
            for row in rows:
                if row["would_launch_image"] in refs:
                    row["resolve_error"] = reason
            return
        for row in rows:
            ref = row["would_launch_image"]
            if ref in refs:
                if ref in values:
                    row["would_launch_image"] = values[ref]
                else:
                    row["resolve_error"] = f"SSM parameter {ref.removeprefix('resolve:ssm:')} not found"


def _newest_snapshot_rows(snapshots: Iterable[dict], volumes: dict[str, str], region: str) -> list[dict]:
    """The newest completed snapshot of each attached volume, as contract rows."""
    newest: dict[str, dict] = {}
    for snap in snapshots:
        volume = snap.get("VolumeId")
        if (
            volume not in volumes
            or snap.get("State", "completed") != "completed"
            or not snap.get("StartTime")
        ):
            continue
        best = newest.get(volume)
        if best is None or (snap["StartTime"], snap["SnapshotId"]) > (best["StartTime"], best["SnapshotId"]):
            newest[volume] = snap
    rows = []
    for volume in sorted(newest):
        row = snapshot_row(newest[volume], volumes, region)
        if row is not None:
            rows.append(row)
    return rows


def _unexpected(exc: Exception, kind: str, what: Any, run: _Discovery) -> ScopeFailed:
    """A bug or an unforeseen error in one scope must not lose the others: record it like a failure."""
    log.error(
        "AWS discovery: unexpected error in %s %s", kind, getattr(what, "account_id", what), exc_info=exc
    )
    if kind == "scope":
        account, region = what
        scope = f"aws:{account.account_id}/{region}"
    elif kind == "regions":
        scope = f"aws:{what.account_id}/*"
    else:
        scope = f"aws:{_role_account(what)}/*" if what else "aws:default/*"
    return ScopeFailed(scope, run.sessions.scrub(f"{scope}: unexpected {type(exc).__name__}: {exc}"))


def discover(
    config: AwsConfig,
    *,
    mapping: TagMapping,
    discovered_at: datetime,
    progress: Progress | None = None,
) -> Normalised:
    """Discover every configured account x region; never raises for an AWS-side failure."""
    say = progress or (lambda msg: None)
    result = Normalised()
    if not config.include_default and not config.role_arns:
        raise ValueError("AWS discovery has no accounts: set role ARNs or include the default credentials")
    for arn in config.role_arns:
        _role_account(arn)  # a malformed ARN is a configuration error, raised before anything runs
    workers = max(1, config.max_workers)
    scopes: list[_ScopeResult] = []
    accounts: dict[str, _Account] = {}
    started = time.perf_counter()
    with (
        ThreadPoolExecutor(workers, thread_name_prefix="qlrf-aws") as pool,
        ThreadPoolExecutor(workers, thread_name_prefix="qlrf-aws-fetch") as fetch,
    ):
        run = _Discovery(config, mapping, discovered_at, fetch)
        run.sessions.warm()
        pending: dict[Future, tuple[str, Any]] = {}
        if config.include_default:
            pending[pool.submit(run.default_account)] = ("account", None)
        for arn in config.role_arns:
            pending[pool.submit(run.assumed_account, arn)] = ("account", arn)

        def submit_scopes(account: _Account, regions: Iterable[str]) -> None:
            for region in regions:
                pending[pool.submit(run.scope, account, region)] = ("scope", (account, region))

        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                kind, what = pending.pop(future)
                try:
                    value = future.result()
                except Exception as exc:
                    failed = exc if isinstance(exc, ScopeFailed) else _unexpected(exc, kind, what, run)
                    result.failed_scopes.append({"scope": failed.scope, "reason": failed.reason})
                    log.warning("%s", failed.reason)
                    say(f"aws {failed.scope.removeprefix('aws:')}: FAILED: {failed.reason}")
                    continue
                if kind == "account":
                    account: _Account = value
                    if account.account_id in accounts:
                        say(
                            f"aws {account.account_id}: already discovered via {accounts[account.account_id].via}; "
                            f"skipping {account.via}"
                        )
                        continue
                    accounts[account.account_id] = account
                    say(f"aws {account.account_id}: credentials ok ({account.via})")
                    if config.regions:
                        submit_scopes(account, config.regions)
                    else:
                        pending[pool.submit(run.enabled_regions, account)] = ("regions", account)
                elif kind == "regions":
                    say(f"aws {what.account_id}: {len(value)} enabled regions")
                    submit_scopes(what, value)
                else:
                    scopes.append(value)
                    say(value.summary)
    for scope in sorted(scopes, key=lambda s: (s.account, s.region)):
        result.extend(scope.out)
    for name in ("images", "scaling_groups"):
        result.facts.setdefault(name, [])
    result.failed_scopes.sort(key=lambda f: f["scope"])
    say(
        f"aws: {len(result.vms)} VMs from {len(scopes)} account-regions in {len(accounts)} accounts, "
        f"{len(result.failed_scopes)} failed scopes ({time.perf_counter() - started:.1f} s)"
    )
    return result
