"""qlrf.inventory.connectors.common: the scaffolding all four connectors share, exercised directly."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from qlrf.inventory.connectors.common import (
    FACT_TABLES,
    ScopeFailed,
    ScopeFanOut,
    ScopeResult,
    Scrubber,
    explain,
    fan_map,
    finish,
    gather,
    image_fact_row,
    one_line,
    scaling_group_row,
    unexpected_failure,
)
from qlrf.inventory.contract import Normalised

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _fan_out(pool: ThreadPoolExecutor, messages: list[str], failed: list[dict]) -> ScopeFanOut:
    def unexpected(exc: Exception, key: str) -> ScopeFailed:
        return unexpected_failure(exc, f"demo:{key}", f"{key}: unexpected {type(exc).__name__}: {exc}")

    return ScopeFanOut(pool, "demo", messages.append, failed, unexpected)


def test_fan_out_yields_every_scope_and_records_failures_without_losing_the_others():
    messages: list[str] = []
    failed: list[dict] = []

    def scope(name: str) -> str:
        if name == "denied":
            raise ScopeFailed("demo:denied", "denied: 403 AuthorizationFailed")
        if name == "buggy":
            raise KeyError("vmId")
        return name.upper()

    with ThreadPoolExecutor(4) as pool:
        fan_out = _fan_out(pool, messages, failed)
        for name in ("a", "denied", "buggy", "b"):
            fan_out.submit(name, scope, name)
        got = dict(fan_out)

    assert got == {"a": "A", "b": "B"}
    assert sorted(failed, key=lambda f: f["scope"]) == [
        {"scope": "demo:buggy", "reason": "buggy: unexpected KeyError: 'vmId'"},
        {"scope": "demo:denied", "reason": "denied: 403 AuthorizationFailed"},
    ]
    assert "demo denied: FAILED: denied: 403 AuthorizationFailed" in messages


def test_fan_out_runs_scopes_submitted_while_iterating():
    """AWS learns its regions from its accounts: scopes are added as results come in."""
    seen: list[tuple[str, str]] = []
    with ThreadPoolExecutor(2) as pool:
        fan_out = _fan_out(pool, [], [])
        fan_out.submit(("account", "111"), lambda: ["eu-west-1", "us-east-1"])
        for (kind, what), value in fan_out:
            if kind == "account":
                for region in value:
                    fan_out.submit(("scope", f"{what}/{region}"), lambda r=region: r)
            else:
                seen.append((what, value))
    assert sorted(seen) == [("111/eu-west-1", "eu-west-1"), ("111/us-east-1", "us-east-1")]


def test_fan_out_scopes_run_concurrently():
    both_started = threading.Barrier(2, timeout=5)

    def scope(name: str) -> str:
        both_started.wait()  # deadlocks (and times out) unless the two scopes overlap
        return name

    with ThreadPoolExecutor(2) as pool:
        fan_out = _fan_out(pool, [], [])
        fan_out.submit("x", scope, "x")
        fan_out.submit("y", scope, "y")
        assert sorted(value for _, value in fan_out) == ["x", "y"]


def test_finish_merges_in_the_given_order_sorts_failures_and_says_one_line():
    result = Normalised(failed_scopes=[{"scope": "demo:z", "reason": "z down"}])
    first = Normalised(vms=[{"asset_id": "1"}], facts={"images": [{"image_id": "i-1"}]})
    second = Normalised(
        vms=[{"asset_id": "2"}],
        snapshots=[{"snapshot_id": "s"}],
        failed_scopes=[{"scope": "demo:a:images", "reason": "a images"}],
    )
    messages: list[str] = []

    out = finish(result, [first, second], messages.append, lambda r: f"demo: {len(r.vms)} VMs", started=0.0)

    assert out is result
    assert [v["asset_id"] for v in out.vms] == ["1", "2"]
    assert out.snapshots == [{"snapshot_id": "s"}]
    assert [f["scope"] for f in out.failed_scopes] == ["demo:a:images", "demo:z"]
    assert out.facts == {"images": [{"image_id": "i-1"}], "scaling_groups": []}
    assert len(messages) == 1 and messages[0].startswith("demo: 2 VMs (")


def test_finish_creates_only_the_tables_asked_for():
    out = finish(Normalised(), [], lambda _: None, lambda r: "", started=0.0, tables=("templates",))
    assert out.facts == {"templates": []}
    assert FACT_TABLES == ("images", "scaling_groups")


@dataclass
class _DemoScope(ScopeResult):
    platform: str = field(init=False, default="demo")
    vms: int = 0

    def counts(self) -> list[str]:
        return [f"{self.vms} VMs"]


def test_scope_result_summary_names_the_incomplete_parts():
    done = _DemoScope(name="111/eu-west-1", seconds=1.25, vms=3)
    assert done.summary == "demo 111/eu-west-1: 3 VMs (1.2 s)"
    partial = _DemoScope(
        name="111/eu-west-1",
        vms=3,
        failed=[{"scope": "demo:111/eu-west-1:images", "reason": "x"}],
    )
    assert partial.summary == "demo 111/eu-west-1: 3 VMs, incomplete: images (0.0 s)"


class _Throttled(Exception):
    pass


def _throttling(exc: BaseException, who: str) -> str | None:
    return f"{who}: throttled, retries exhausted" if isinstance(exc, _Throttled) else None


def _never(exc: BaseException, who: str) -> str | None:
    return None


def test_explain_uses_the_first_rule_that_knows_the_error():
    assert (
        explain(_Throttled(), "project p", [_never, _throttling]) == "project p: throttled, retries exhausted"
    )


def test_explain_names_the_scope_of_an_error_no_rule_knows_on_one_line():
    reason = explain(RuntimeError("boom\n  at line 3"), "subscription s", [_throttling])
    assert reason == "subscription s: unexpected RuntimeError: boom at line 3"


def test_scrubber_hides_every_secret_it_was_given_or_told_later():
    scrub = Scrubber(["s3cret", None, ""], limit=40)
    threads = [threading.Thread(target=scrub.remember, args=(f"token-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert scrub("key s3cret and token-3 and token-0") == "key *** and *** and ***"
    assert len(scrub("x" * 100)) == 40
    assert Scrubber()("unchanged " * 200) == "unchanged " * 200


def test_one_line_folds_whitespace_and_caps_length():
    assert one_line("a\n b\t\tc ") == "a b c"
    assert one_line("x" * 2000) == "x" * 1000
    assert one_line(ValueError("bad  value"), limit=5) == "bad v"


def test_gather_returns_values_and_exceptions_by_name():
    with ThreadPoolExecutor(2) as pool:
        got = gather(pool, {"ok": lambda: 1, "bad": lambda: 1 / 0})
    assert got["ok"] == 1 and isinstance(got["bad"], ZeroDivisionError)


def test_fan_map_runs_one_item_inline_and_propagates_the_first_error():
    with ThreadPoolExecutor(2, thread_name_prefix="leaf") as pool:
        assert fan_map(pool, lambda _: threading.current_thread().name, ["only"]) == [
            threading.current_thread().name
        ]
        assert fan_map(pool, lambda x: x * 2, [1, 2, 3]) == [2, 4, 6]
        with pytest.raises(ZeroDivisionError):
            fan_map(pool, lambda x: 1 / x, [1, 0])


def test_image_fact_row_has_the_shared_columns_plus_the_platform_own():
    row = image_fact_row(
        image_id="ami-1",
        image_type="ami",
        account="111",
        region="eu-west-1",
        found=False,
        discovered_at=NOW,
        platform="aws",
    )
    assert row["tags"] == {} and row["found"] is False and row["platform"] == "aws"
    assert {
        "name",
        "description",
        "owner_id",
        "owner_alias",
        "created_at",
        "deprecated_at",
        "state",
        "public",
    } <= set(row)


def test_scaling_group_row_sorts_and_counts_members():
    row = scaling_group_row(
        account="p",
        region="europe-west1",
        group_name="web",
        desired_capacity=3,
        members=iter(["b", "a"]),
        discovered_at=NOW,
        zone="europe-west1-b",
    )
    assert row["members"] == ["a", "b"] and row["member_count"] == 2 and row["zone"] == "europe-west1-b"
    # A platform may count members its list cannot name (GCP: an instance without an id).
    assert (
        scaling_group_row(
            account=None,
            region=None,
            group_name=None,
            desired_capacity=None,
            members=["a"],
            discovered_at=NOW,
            member_count=2,
        )["member_count"]
        == 2
    )
