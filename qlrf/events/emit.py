"""Events derived from the warehouse, built where the breach is detected (the sensors) and written to the outbox.

Ids are stable per partition and scope, so a sensor that re-reads a partition writes nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from qlrf.events.contract import Event, build


def drift_detected(findings: Iterable[Any], now: datetime) -> list[Event]:
    """One ``drift.detected`` per finding (site x environment x platform breach; kind says threshold or revoked image)."""
    out = []
    for f in findings:
        fingerprint = f.fingerprint()
        out.append(build(
            "drift.detected", key=f"{f.day}|{f.platform}|{f.site}|{f.environment}|{fingerprint}", source="sensors/findings",
            subject=f"site/{f.site}/{f.environment}/{f.platform}", time=now,
            data={"date": f.day, "platform": f.platform, "site": f.site, "environment": f.environment,
                  "drift_score": float(f.drift_score), "threshold": float(f.threshold), "vms": int(f.vms),
                  "kind": f.kind, "fingerprint": fingerprint}))
    return out


def compliance_breached(day: str, platform: str, rows: Iterable[dict], now: datetime) -> list[Event]:
    """One ``compliance.breached`` per site x environment under its floor."""
    return [build(
        "compliance.breached", key=f"{day}|{platform}|{r['site']}|{r['environment']}|{r['compliance_score']}",
        source="sensors/compliance", subject=f"site/{r['site']}/{r['environment']}/{platform}", time=now,
        data={"date": day, "platform": platform, "site": r["site"], "environment": r["environment"],
              "compliance_score": float(r["compliance_score"]), "floor": float(r["floor"]),
              "vms": int(r.get("vms") or 0), "non_compliant_vms": int(r.get("non_compliant_vms") or 0)})
        for r in rows]


def inventory_discovered(day: str, platform: str, vms: int, now: datetime, *, sites: int | None = None,
                         run_id: str | None = None) -> list[Event]:
    """One ``inventory.discovered`` per written inventory partition (a re-materialisation is a new event: its run differs)."""
    data: dict[str, Any] = {"date": day, "platform": platform, "vms": int(vms), "run_id": run_id}
    if sites is not None:
        data["sites"] = int(sites)
    return [build("inventory.discovered", key=f"{day}|{platform}|{run_id}", source="sensors/outbound",
                  subject=f"inventory/{day}/{platform}", time=now, data=data)]


def image_revoked(rows: Iterable[dict], now: datetime) -> list[Event]:
    """One ``image.revoked`` per revoked image (family x version x platform x region row): the id is the
    image, so every later registry partition that still lists it adds nothing."""
    return [build("image.revoked", key=f"{r['image_id']}", source="sensors/outbound", subject=f"image/{r['image_id']}",
                  time=now, data={"image_id": r["image_id"], "platform": r["platform"], "reason": r.get("reason"),
                                  "affected_vms": int(r.get("affected_vms") or 0)})
            for r in rows]


def wave_completed(task_id: str, plan_hash: str, wave: int, succeeded: int, failed: int, now: datetime) -> list[Event]:
    """One ``wave.completed`` per wave a run finished (healthy or not); the key holds the attempt's time so
    a continued or recovered run's repeat of a wave is its own event."""
    return [build("wave.completed", key=f"{task_id}|{wave}|{now.isoformat()}", source="executor",
                  subject=f"task/{task_id}", time=now,
                  data={"task_id": task_id, "plan_hash": plan_hash, "wave": int(wave), "succeeded": int(succeeded),
                        "failed": int(failed)})]


def alert_raised(key: str, kind: str, severity: str, title: str, fields: dict, now: datetime) -> list[Event]:
    """One ``alert.raised`` per raise of an alert (the dispatcher raises a key once per dedup window)."""
    return [build("alert.raised", key=f"{key}|{now.isoformat()}", source="alerts", subject=f"alert/{kind}", time=now,
                  data={"key": key, "kind": kind, "severity": severity, "title": title[:500], "fields": fields})]


def drill_completed(drill_id: str, site: str, platform: str, passed: bool, now: datetime, *,
                    rto_seconds: float | None = None, rpo_seconds: float | None = None) -> list[Event]:
    """One ``dr.drill.completed`` per drill run (worst RTO / RPO over its VMs)."""
    data: dict[str, Any] = {"drill_id": drill_id, "site": site, "platform": platform, "passed": bool(passed)}
    if rto_seconds is not None:
        data["rto_seconds"] = float(rto_seconds)
    if rpo_seconds is not None:
        data["rpo_seconds"] = float(rpo_seconds)
    return [build("dr.drill.completed", key=drill_id, source="dr", subject=f"drill/{drill_id}", time=now, data=data)]
