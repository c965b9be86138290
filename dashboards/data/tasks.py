"""Task-store loaders: approval tasks, their plans and the audit log (never a cloud or a model).

Tasks are read fresh on every run (they change under the reviewer's eyes); only the store object
and the chain verification, which walks the whole log, are cached.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st


def database_url() -> str:
    """The task database the pipeline writes (QLRF_POSTGRES_URL, else SQLite under QLRF_HOME)."""
    from qlrf.db import database_url as resolve

    return resolve()


@st.cache_resource(max_entries=4)
def task_store(url: str):
    """One TaskStore (with its audit log, same database) per URL; tasks are read fresh on every run."""
    from qlrf.remediation.approvals import TaskStore
    from qlrf.remediation.audit import AuditLog

    return TaskStore(url, audit=AuditLog(url))


def task_table(tasks: list) -> pd.DataFrame:
    columns = ["task", "plan", "state", "environment", "platform", "site", "risk", "autonomy", "requested_by", "expires_at",
               "approver", "reason"]
    rows = [
        {
            "task": t.id, "plan": t.plan_id, "state": t.state, "environment": t.environment, "platform": t.platform,
            "site": t.site, "risk": t.risk_level, "autonomy": t.autonomy_mode, "requested_by": t.requested_by,
            "expires_at": t.expires_at.strftime("%Y-%m-%d %H:%M UTC") if t.expires_at else "",
            "approver": t.approver or "", "reason": t.reason or "",
        }
        for t in tasks
    ]
    return pd.DataFrame(rows, columns=columns)


def plan_view(task) -> dict:
    """What a reviewer needs from a task's plan: images, targets, waves, the policy's reasons."""
    plan = task.plan()  # re-validated against the task's hash
    spec, meta = plan.spec, plan.metadata
    waves = pd.DataFrame(
        [
            {"wave": i, "name": w.name, "canary": w.canary, "targets": plan.wave_targets(i),
             "groups": ", ".join(f"{g} ({w.group_percent}%)" for g in w.groups), "instances": len(w.instances)}
            for i, w in enumerate(spec.waves)
        ]
    )
    targets = pd.DataFrame(
        [{"kind": g.kind, "id": g.name, "account": g.account, "region": g.region, "size": g.size, "from_image": ""}
         for g in spec.targets.groups]
        + [{"kind": "instance", "id": i.asset_id, "account": i.account, "region": i.region, "size": 1,
            "from_image": i.from_image or ""} for i in spec.targets.instances],
        columns=["kind", "id", "account", "region", "size", "from_image"],
    )
    decision = task.decision or {}
    window = spec.maintenance_window
    return {
        "plan": plan,
        "reason": meta.reason,
        "from_images": ", ".join(f"{i.family or '?'} {i.version or ''} ({i.image_ref})".replace("  ", " ") for i in spec.from_images),
        "to_image": change_text(spec),
        "targets_count": spec.targets.count(),
        "targets": targets,
        "waves": waves,
        "approval_reasons": [str(r) for r in decision.get("approval_reasons") or []],
        "deny": [str(r) for r in decision.get("deny") or []],
        "window": (f"{', '.join(window.days)} {window.start:%H:%M}-{window.end:%H:%M} UTC" if window else "any time"),
        "health_gate": (f"{spec.health_gate.min_healthy_percent}% healthy within {spec.health_gate.timeout_seconds}s, "
                        f"max {spec.max_unavailable} unavailable"),
        "rollback": spec.rollback.strategy.replace("_", " "),
    }


def change_text(spec) -> str:
    """What the plan changes, for the card: the golden image, or the compliance fix, and how it is delivered."""
    if spec.compliance is not None:
        c = spec.compliance
        text = f"{c.type.replace('_', ' ')} (fixes {', '.join(c.controls)})"
        if c.tags:
            keys = sorted({k for t in c.tags for k in t.tags})
            text += f": sets {', '.join(keys)} on {len(c.tags)} VM(s)"
        return text + (f"; {len(c.held)} VM(s) held for a person" if c.held else "")
    text = f"{spec.to_image.family or '?'} {spec.to_image.version} ({spec.to_image.image_ref})"
    if spec.terraform is not None:
        text += (f"; Terraform-managed ({spec.terraform.source}): patch {spec.terraform.path_glob} in {spec.terraform.repo}, "
                 "approval needs the checked terraform plan file's hash")
    return text


def audit_entries(url: str, limit: int = 25) -> pd.DataFrame:
    """The newest audit records, newest first, one line each."""
    from qlrf.remediation.audit import AuditLog

    rows = []
    for r in reversed(AuditLog(url).records(limit=limit)):
        data = r.data or {}
        what = data.get("reason") or data.get("to") or data.get("title") or data.get("plan_id") or ""
        rows.append({"seq": r.seq, "at": r.at.strftime("%Y-%m-%d %H:%M:%S"), "kind": r.kind, "actor": r.actor,
                     "subject": r.subject, "detail": str(what)[:200]})
    return pd.DataFrame(rows, columns=["seq", "at", "kind", "actor", "subject", "detail"])


def audit_search(url: str, kind: str | None, text: str, limit: int = 500) -> pd.DataFrame:
    """Audit records of `kind` (any if None) whose actor, subject or detail contains `text`, newest first."""
    from qlrf.remediation.audit import AuditLog

    needle = text.strip().casefold()
    rows = []
    for r in reversed(AuditLog(url).records(kind=kind, limit=None if needle else limit)):
        detail = " ".join(f"{k}={v}" for k, v in sorted((r.data or {}).items()) if k not in ("plan_yaml", "decision"))[:300]
        if needle and not any(needle in str(v).casefold() for v in (r.actor, r.subject, detail)):
            continue
        rows.append({"seq": r.seq, "at": r.at.strftime("%Y-%m-%d %H:%M:%S"), "kind": r.kind, "actor": r.actor,
                     "subject": r.subject, "detail": detail})
        if len(rows) >= limit:
            break
    return pd.DataFrame(rows, columns=["seq", "at", "kind", "actor", "subject", "detail"])


@st.cache_data(ttl=60, max_entries=4)
def audit_verification(url: str) -> dict:
    """The whole chain checked (qlrf.remediation.audit.AuditLog.verify), as plain data for the page."""
    from qlrf.remediation.audit import AuditLog

    result = AuditLog(url).verify()
    return {"ok": result.ok, "checked": result.checked, "problems": list(result.problems), "head_seq": result.head_seq,
            "head_hash": result.head_hash}


def audit_kinds() -> list[str]:
    from qlrf.remediation.audit import KINDS

    return sorted(KINDS)
