"""Compliance plans (issue 12 item 6): the failed controls re-imaging cannot fix get their own plan types.

* ``apply_tags`` (control ``compliance.tag_control``, RF-TAG-001): a VM without an owner, site or
  environment gets the missing canonical tag. The tag mapping (:mod:`qlrf.inventory.tags`) already
  derived what the VM's tags can give (the ``vm_compliance`` row's owner/site/environment); what it
  could not is taken from ``compliance.tag_defaults`` of ``policy/remediation.yaml`` (first rule
  whose ``match`` fits the VM). A VM whose value no rule gives is *held*: listed in the plan (and the
  planning notes) for a person, never guessed, never a target. A VM whose environment is unknown is
  held too: without it no environment's policy can apply.
* ``detach_public_ip`` (control ``compliance.public_ip_control``, RF-NET-001): a production VM with a
  public IP. Always approval-required in prod (``policy/compliance.rego``); waves keep the
  environment's maintenance window.

One plan per type and site x environment x platform of a day's ``vm_compliance`` partition, as the
drift plans: canary + batches from the environment's policy, a hash-bound PatchPlan with a
``spec.compliance`` section, proposed through the same gate, queue (one open plan per scope and plan
type, WIP limit), approval and audit, and executed by the platform's compliance driver
(:mod:`qlrf.remediation.drivers.aws_compliance`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import pyarrow as pa

from qlrf.remediation.planner import plan_waves
from qlrf.remediation.plans import (
    ComplianceChange,
    HealthGate,
    InstanceTarget,
    Metadata,
    PatchPlan,
    Rollback,
    Spec,
    TagChange,
    Targets,
)
from qlrf.remediation.policy import RemediationPolicy

TAG_FIELDS = ("owner", "site", "environment")
MISSING = {"owner": (None, ""), "site": (None, "", "unassigned"), "environment": (None, "", "unknown")}
ENVIRONMENTS = ("dev", "staging", "prod")


@dataclass
class CompliancePlanning:
    plans: list[PatchPlan] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)  # asset id -> why a person must decide
    held_where: dict[str, tuple[str, str]] = field(default_factory=dict)  # asset id -> (site, platform)


def _rows(table: pa.Table | Sequence[Mapping]) -> list[dict]:
    return table.to_pylist() if isinstance(table, pa.Table) else [dict(r) for r in table]


def _tags(value: Any) -> dict[str, str]:
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list):  # pyarrow map as a list of (key, value)
        return {str(k): str(v) for k, v in value}
    return {}


def _default_for(policy: RemediationPolicy, vm: Mapping, key: str) -> tuple[str, str] | None:
    for i, rule in enumerate(policy.compliance.tag_defaults):
        if key in rule.tags and all(str(vm.get(k)) == v for k, v in rule.match.items()):
            shown = ",".join(f"{k}={v}" for k, v in sorted(rule.match.items())) or "*"
            return rule.tags[key], f"policy:compliance.tag_defaults[{i}] ({shown})"
    return None


def _tag_change(vm: Mapping, policy: RemediationPolicy) -> TagChange | str:
    """The tags `vm` lacks, or why a person must decide."""
    tags = _tags(vm.get("tags"))
    wanted: dict[str, str] = {}
    sources: dict[str, str] = {}
    for key in TAG_FIELDS:
        derived = vm.get(key)
        if derived not in MISSING[key]:
            if key not in tags:  # the mapping found it under another key: write the canonical key too
                wanted[key], sources[key] = str(derived), "tag mapping"
            continue
        default = _default_for(policy, vm, key)
        if default is None:
            return f"no {key}: its tags give none and no compliance.tag_defaults rule matches it"
        if key in tags:
            return f"tag {key!r} holds {tags[key]!r}, which the mapping does not accept: a person must correct it"
        wanted[key], sources[key] = default
    if not wanted:
        return "fails the tag control with every tag present: a person must look"
    return TagChange(asset_id=str(vm["asset_id"]), tags=wanted, derived_from=sources)


def _plan_id(kind: str, day: str, scope: tuple[str, str, str], ids: list[str]) -> str:
    digest = hashlib.sha256(json.dumps([kind, day, scope, ids]).encode()).hexdigest()[:12]
    return f"cp-{digest}-{kind.replace('_', '-')}"


def build_compliance_plans(
    vm_compliance: pa.Table | Sequence[Mapping],
    inventory: pa.Table | Sequence[Mapping],
    policy: RemediationPolicy,
    day: date | str,
    *,
    created_by: str = "qlrf.remediation.compliance_plans",
    now: datetime | None = None,
) -> CompliancePlanning:
    """Every apply_tags / detach_public_ip plan of a day's per-VM compliance results (see the module docstring)."""
    day_s = day.isoformat() if isinstance(day, date) else date.fromisoformat(str(day)).isoformat()
    cfg = policy.compliance
    inv = {str(r["asset_id"]): r for r in _rows(inventory)}
    out = CompliancePlanning()
    scopes: dict[tuple[str, tuple[str, str, str]], list[tuple[dict, TagChange | None]]] = {}
    for row in _rows(vm_compliance):
        failed = set(row.get("failed_controls") or [])
        if not failed & {cfg.tag_control, cfg.public_ip_control}:
            continue
        asset = str(row["asset_id"])
        vm = {**(inv.get(asset) or {}), **row}
        if str(vm.get("state") or "") == "terminated":
            continue
        environment = str(vm.get("environment") or "unknown")
        where = (str(vm.get("site") or "unassigned"), str(vm["platform"]))
        if cfg.tag_control in failed:
            change = _tag_change(vm, policy)
            if isinstance(change, str):
                out.held[asset], out.held_where[asset] = change, where
            elif environment not in ENVIRONMENTS and "environment" not in change.tags:
                out.held[asset], out.held_where[asset] = "environment unknown: no environment's policy can apply", where
            else:
                env = change.tags.get("environment", environment)
                if env not in ENVIRONMENTS:
                    out.held[asset] = f"environment default {env!r} is not one of {', '.join(ENVIRONMENTS)}"
                    out.held_where[asset] = where
                else:
                    scope = (str(vm.get("site") or "unassigned"), env, str(vm["platform"]))
                    scopes.setdefault(("apply_tags", scope), []).append((vm, change))
        if cfg.public_ip_control in failed and environment == "prod":
            scope = (str(vm.get("site") or "unassigned"), environment, str(vm["platform"]))
            scopes.setdefault(("detach_public_ip", scope), []).append((vm, None))
    created_at = now.astimezone(UTC) if now else datetime.combine(date.fromisoformat(day_s), time(0), UTC)
    for (kind, scope), items in sorted(scopes.items()):
        items.sort(key=lambda item: str(item[0]["asset_id"]))
        held = {a: why for a, why in out.held.items() if out.held_where[a] == (scope[0], scope[2])}
        out.plans.append(_plan(kind, scope, items, policy, day_s, created_at, created_by, held))
    return out


def _plan(kind: str, scope: tuple[str, str, str], items: list[tuple[dict, TagChange | None]], policy: RemediationPolicy,
          day: str, created_at: datetime, created_by: str, held: dict[str, str]) -> PatchPlan:
    site, environment, platform = scope
    env = policy.for_env(environment)
    cfg = policy.compliance
    ids = [str(vm["asset_id"]) for vm, _ in items]
    control = cfg.tag_control if kind == "apply_tags" else cfg.public_ip_control
    held_here = held if kind == "apply_tags" else {}
    targets = [InstanceTarget(asset_id=str(vm["asset_id"]), platform=platform, account=str(vm.get("account") or "-"),
                              region=str(vm.get("region") or "-"), name=str(vm.get("name") or vm["asset_id"]))
               for vm, _ in items]
    if kind == "apply_tags":
        what = f"apply missing tags to {len(ids)} VM(s)"
        risk = "medium" if environment == "prod" else "low"
        rollback = Rollback(strategy="restore_tags")
        window = None  # tags change no running machine
    else:
        what = f"detach the public IP of {len(ids)} production VM(s)"
        risk = "high"
        rollback = Rollback(strategy="reattach_public_ip")
        window = env.maintenance_window
    plan = PatchPlan(
        metadata=Metadata(
            id=_plan_id(kind, day, scope, ids), created_at=created_at, created_by=created_by,
            reason=f"{site} {environment} {platform}: {control} failed: {what}", environment=environment,
            platform=platform, site=site, risk_level=risk, autonomy_mode=env.autonomy_mode,
            finding={"kind": "compliance", "control": control, "day": day, "targets": len(ids),
                     "held": len(held_here)},
        ),
        spec=Spec(
            targets=Targets(instances=targets),
            waves=plan_waves(ids, [], env),
            health_gate=HealthGate(timeout_seconds=env.health_gate.timeout_seconds, min_healthy_percent=100, soak_seconds=0),
            max_unavailable=max(env.max_unavailable, 1),
            maintenance_window=window,
            rollback=rollback,
            compliance=ComplianceChange(type=kind, controls=[control],  # type: ignore[arg-type]
                                        tags=[c for _, c in items if c is not None], held=dict(sorted(held_here.items()))),
        ),
    )
    return plan.sealed()


__all__ = ["CompliancePlanning", "build_compliance_plans"]
