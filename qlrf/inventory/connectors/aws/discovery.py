"""AWS discovery: accounts x regions fan-out, and what one account x region scope lists.

Account look-ups, region listings and account x region scopes all run on one scope pool (AWS learns
its regions from its accounts, so scopes are submitted as accounts come in); inside a scope the
instance listing, the scaling-group look-ups and the snapshot listing overlap on a second pool of
leaf calls, which never wait on that pool themselves, so it cannot deadlock.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from qlrf.inventory.connectors.aws import facts
from qlrf.inventory.connectors.aws.config import AwsConfig, role_account
from qlrf.inventory.connectors.aws.sessions import Account, Sessions
from qlrf.inventory.connectors.common import (
    Progress,
    ScopeFailed,
    ScopeFanOut,
    ScopeResult,
    fan_map,
    finish,
    silent,
    unexpected_failure,
)
from qlrf.inventory.contract import Normalised
from qlrf.inventory.normalize.aws import instance_row, volume_owners
from qlrf.inventory.normalize.common import reject
from qlrf.inventory.tags import TagMapping

log = logging.getLogger(__name__)

PAGE_SIZE_INSTANCES = 1000  # DescribeInstances maximum
_ROW_ERRORS = (ValueError, KeyError, TypeError, AttributeError)


@dataclass
class AwsScope(ScopeResult):
    """One account x region: its rows, facts and failed parts, already normalised."""

    platform: str = field(init=False, default="aws")
    account: str = ""
    region: str = ""
    out: Normalised = field(default_factory=Normalised)

    def counts(self) -> list[str]:
        return [
            f"{len(self.out.vms)} VMs",
            f"{len(self.out.facts.get('images', []))} AMIs",
            f"{len(self.out.facts.get('scaling_groups', []))} scaling groups",
            f"{len(self.out.snapshots)} snapshots",
        ]


class _Discovery:
    def __init__(
        self, config: AwsConfig, mapping: TagMapping, discovered_at: datetime, fetch: ThreadPoolExecutor
    ):
        self.config = config
        self.mapping = mapping
        self.discovered_at = discovered_at
        self.sessions = Sessions(config)
        self._fetch = fetch
        self.fan = partial(fan_map, fetch)

    def enabled_regions(self, account: Account) -> list[str]:
        """Regions enabled in the account: opt-in regions count only once opted in."""
        try:
            ec2 = self.sessions.client(account, "ec2", self.sessions.home_region())
            regions = ec2.describe_regions(AllRegions=False)["Regions"]
        except (BotoCoreError, ClientError) as exc:
            reason = self.sessions.explain(
                exc, f"account {account.account_id} ({account.via}): cannot list regions"
            )
            raise ScopeFailed(f"aws:{account.account_id}/*", reason) from None
        return sorted(
            r["RegionName"]
            for r in regions
            if r.get("OptInStatus", "opt-in-not-required") in ("opt-in-not-required", "opted-in")
        )

    # ---- one account x region ------------------------------------------------------------------

    def scope(self, account: Account, region: str) -> AwsScope:
        started = time.perf_counter()
        scope = f"aws:{account.account_id}/{region}"
        who = f"account {account.account_id} ({account.via}) region {region}"
        out = Normalised()

        def failed_part(name: str, exc: BaseException) -> None:
            # Any error here (AWS or an unexpected shape) costs only this part; the VMs are kept.
            reason = self.sessions.explain(exc, f"{who} {name}")
            out.failed_scopes.append({"scope": f"{scope}:{name}", "reason": reason})
            log.warning("%s", reason, exc_info=not isinstance(exc, BotoCoreError | ClientError))

        try:
            ec2 = self.sessions.client(account, "ec2", region)
        except (BotoCoreError, ClientError) as exc:
            raise ScopeFailed(scope, self.sessions.explain(exc, who)) from None
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
                    snapshot_jobs.append(self._fetch.submit(facts.owned_snapshots, ec2, account.account_id))

        instances_job = self._fetch.submit(_list_instances, ec2, start_owned_snapshots if owned else None)
        groups: list[dict] | None = None
        try:
            groups = self._scaling_groups(account, region, ec2)
        except Exception as exc:
            failed_part("scaling_groups", exc)
        try:
            reservations = instances_job.result()
        except (BotoCoreError, ClientError) as exc:
            raise ScopeFailed(scope, self.sessions.explain(exc, who)) from None

        volumes = _attached_volumes(reservations)
        if owned:
            start_owned_snapshots()  # no-op unless no page arrived (an empty region)
        else:
            snapshot_jobs.extend(
                self._fetch.submit(facts.volume_snapshots, ec2, list(chunk))
                for chunk in facts.chunks(sorted(volumes), facts.FILTER_CHUNK)
            )
        instances = self._instance_rows(reservations, account, scope, out)
        accepted = {str(i["InstanceId"]) for i in instances}
        volumes = {vol: owner for vol, owner in volumes.items() if owner in accepted}  # as the file import
        image_ids = {str(i["ImageId"]) for i in instances if i.get("ImageId")}
        if groups is not None:
            image_ids |= _compare_members(groups, instances)
            out.facts["scaling_groups"] = groups
        try:
            out.facts["images"] = facts.image_facts(
                ec2, self.fan, image_ids, account.account_id, region, self.discovered_at
            )
        except Exception as exc:
            failed_part("images", exc)
        try:
            snapshots = [snap for job in snapshot_jobs for snap in job.result()]
            out.snapshots.extend(facts.newest_snapshot_rows(snapshots, volumes, region))
        except Exception as exc:
            failed_part("snapshots", exc)
        return AwsScope(
            name=f"{account.account_id}/{region}",
            failed=out.failed_scopes,
            seconds=time.perf_counter() - started,
            account=account.account_id,
            region=region,
            out=out,
        )

    def _scaling_groups(self, account: Account, region: str, ec2: Any) -> list[dict]:
        return facts.scaling_groups(
            self.sessions.client(account, "autoscaling", region),
            ec2,
            lambda: self.sessions.client(account, "ssm", region),
            self.fan,
            account.account_id,
            region,
            self.discovered_at,
            self.sessions.scrub,
        )

    def _instance_rows(
        self, reservations: list[dict], account: Account, scope: str, out: Normalised
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


def _list_instances(ec2: Any, on_first_page: Callable[[], None] | None = None) -> list[dict]:
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


def _attached_volumes(reservations: list[dict]) -> dict[str, str]:
    """volume id -> instance id of every attached EBS volume (rows the normaliser rejects skipped)."""
    volumes: dict[str, str] = {}
    for reservation in reservations:
        for inst in reservation.get("Instances") or []:
            with contextlib.suppress(*_ROW_ERRORS):
                volumes.update(volume_owners(inst))
    return volumes


def _compare_members(groups: list[dict], instances: list[dict]) -> set[str]:
    """Count each group's members running another AMI than it would launch; returns those AMIs."""
    running = {str(i.get("InstanceId")): i.get("ImageId") for i in instances}
    launched: set[str] = set()
    for row in groups:
        image = row["would_launch_image"]
        if image and image.startswith("ami-"):
            launched.add(image)
            row["members_on_other_image"] = sum(
                1 for m in row["members"] if m in running and running[m] != image
            )
    return launched


def _unexpected(run: _Discovery) -> Callable[[Exception, tuple[str, Any]], ScopeFailed]:
    """A bug or an unforeseen error in one scope must not lose the others: record it like a failure."""

    def unexpected(exc: Exception, key: tuple[str, Any]) -> ScopeFailed:
        kind, what = key
        if kind == "scope":
            account, region = what
            scope = f"aws:{account.account_id}/{region}"
        elif kind == "regions":
            scope = f"aws:{what.account_id}/*"
        else:
            scope = f"aws:{role_account(what)}/*" if what else "aws:default/*"
        reason = run.sessions.scrub(f"{scope}: unexpected {type(exc).__name__}: {exc}")
        return unexpected_failure(exc, scope, reason)

    return unexpected


def discover(
    config: AwsConfig,
    *,
    mapping: TagMapping,
    discovered_at: datetime,
    progress: Progress | None = None,
) -> Normalised:
    """Discover every configured account x region; never raises for an AWS-side failure."""
    say = progress or silent
    result = Normalised()
    if not config.include_default and not config.role_arns:
        raise ValueError("AWS discovery has no accounts: set role ARNs or include the default credentials")
    for arn in config.role_arns:
        role_account(arn)  # a malformed ARN is a configuration error, raised before anything runs
    workers = max(1, config.max_workers)
    scopes: list[AwsScope] = []
    accounts: dict[str, Account] = {}
    started = time.perf_counter()
    with (
        ThreadPoolExecutor(workers, thread_name_prefix="qlrf-aws") as pool,
        ThreadPoolExecutor(workers, thread_name_prefix="qlrf-aws-fetch") as fetch,
    ):
        run = _Discovery(config, mapping, discovered_at, fetch)
        run.sessions.warm()
        fan_out = ScopeFanOut(pool, "aws", say, result.failed_scopes, _unexpected(run))
        if config.include_default:
            fan_out.submit(("account", None), run.sessions.default_account)
        for arn in config.role_arns:
            fan_out.submit(("account", arn), run.sessions.assumed_account, arn)

        def submit_scopes(account: Account, regions: Iterable[str]) -> None:
            for region in regions:
                fan_out.submit(("scope", (account, region)), run.scope, account, region)

        for (kind, what), value in fan_out:
            if kind == "account":
                account: Account = value
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
                    fan_out.submit(("regions", account), run.enabled_regions, account)
            elif kind == "regions":
                say(f"aws {what.account_id}: {len(value)} enabled regions")
                submit_scopes(what, value)
            else:
                scopes.append(value)
                say(value.summary)
    scopes.sort(key=lambda s: (s.account, s.region))

    def summary(merged: Normalised) -> str:
        return (
            f"aws: {len(merged.vms)} VMs from {len(scopes)} account-regions in {len(accounts)} accounts, "
            f"{len(merged.failed_scopes)} failed scopes"
        )

    return finish(result, (s.out for s in scopes), say, summary, started)
