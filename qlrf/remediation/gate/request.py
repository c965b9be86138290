"""The one gate-request builder: the planner's previews and the executor's per-wave decisions.

Both used to build the request themselves and disagreed (the planner clamped ``drift_delta`` at 100
and the executor did not). One rule now: percentages are rounded to 4 decimals and clamped to
[0, 100], so a preview and the real decision of the same plan and wave ask the gate the same thing.
The fields are documented in :mod:`qlrf.remediation.gate.gate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from qlrf.remediation.plans import PatchPlan

ACTIONS = ("plan", "execute_wave", "rollback")


def percent(n: float, fleet: float) -> float:
    """`n` machines as a percentage of `fleet`, rounded to 4 decimals, clamped to [0, 100] (0 for no fleet)."""
    if fleet <= 0:
        return 0.0
    return min(100.0, max(0.0, round(100.0 * n / fleet, 4)))


def window_open(plan: PatchPlan, now: datetime | None) -> bool:
    """Whether the plan's maintenance window is open at `now` (always, when the plan has none)."""
    window = plan.spec.maintenance_window
    if window is None:
        return True
    if now is None:
        raise ValueError(f"plan {plan.metadata.id} has a maintenance window: pass `now` or `window_open`")
    return window.is_open(now)


def from_families(plan: PatchPlan) -> dict[str, Any]:
    """``to_family`` and ``from_families`` (distinct, None first) of every target and from-image:
    what policy/image_family.rego checks so that no plan changes what a VM is."""
    found = {*plan.spec.targets.from_families(), *(image.family for image in plan.spec.from_images)}
    return {"to_family": plan.spec.to_image.family if plan.spec.to_image else None,
            "from_families": sorted(found, key=lambda f: (f is not None, f or ""))}


def gate_request(
    plan: PatchPlan,
    *,
    requested_by: str,
    fleet_size: int,
    action: str = "execute_wave",
    wave: int = 0,
    now: datetime | None = None,
    window_is_open: bool | None = None,
    approval: Mapping | None = None,
    targets: int | None = None,
    reason: str | None = None,
    canary_passed: bool | None = None,
) -> dict[str, Any]:
    """The gate input for `action` on `plan` (wave `wave` for ``execute_wave`` and ``rollback``).

    ``targets`` defaults to the wave's targets (``execute_wave``) or the whole plan (``plan``);
    a rollback passes the machines of the waves it undoes. ``window_is_open`` overrides the
    window check at ``now`` (previews assume it open: it is decided again when the wave runs).
    ``canary_passed``: whether the plan's canary wave passed its health gate (later waves only;
    previews assume it did, as they assume the window open).
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    meta = plan.metadata
    if targets is None:
        targets = plan.wave_targets(wave) if action == "execute_wave" else plan.spec.targets.count()
    request: dict[str, Any] = {
        "action": action,
        "environment": meta.environment,
        "autonomy_mode": meta.autonomy_mode,
        "risk_level": meta.risk_level,
        # The top risk score among the targets (qlrf/predict/risk.py), when the plan was built with one:
        # risk_level above already reflects it; the score travels so the decision record shows why.
        "risk_score": meta.finding.get("risk_score"),
        "plan_hash": plan.content_hash or plan.compute_hash(),
        "targets": targets,
        "requested_by": requested_by,
        "maintenance_window_open": window_open(plan, now) if window_is_open is None else window_is_open,
        "fleet_size": fleet_size,
        "plan_id": meta.id,
        "site": meta.site,
        "platform": meta.platform,
    }
    request.update(from_families(plan))
    request["plan_type"] = plan.spec.plan_type  # reimage | apply_tags | detach_public_ip (policy/compliance.rego)
    if plan.spec.terraform is not None:
        request["delivery"] = "terraform"  # changed through the Terraform code only (policy/delivery.rego)
    if action != "plan":
        request.update(wave=wave, canary=plan.spec.waves[wave].canary)
    if action == "execute_wave":
        request["drift_delta"] = percent(targets, fleet_size)
        if wave > 0:  # a later wave: has this plan's canary passed (in this run, or in the canary-only run)?
            request["canary_passed"] = bool(canary_passed)
    if approval is not None:
        request["approval"] = dict(approval)
    if reason is not None:
        request["reason"] = reason
    return request


__all__ = ["ACTIONS", "from_families", "gate_request", "percent", "window_open"]
