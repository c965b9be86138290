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
