"""query_alerts: which alerts were delivered lately, from the alert ledger (rf_alert_ledger).

The ledger is the dispatcher's dedup memory, kept in the remediation database next to the audit log,
so the tool reads it through the audit log's engine. It holds one row per (key, channel): the last
delivery of each alert key to each channel (or, with no channel configured, the alert kept under
channel "none"), within the ledger's retention, with its kind (its source: drift_findings,
run_failure, ...) and severity. Rows written before severities were recorded have none: a severity
filter leaves them out, and the facts say so.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from qlrf.ai.tools.context import ToolContext, ToolInputError
from qlrf.db import alert_ledger, read_tx, utc

_MODEL = ConfigDict(extra="forbid", strict=True)


class AlertQuery(BaseModel):
    model_config = _MODEL
    kind: str | None = Field(None, description="alert source kind, e.g. drift_findings, compliance_breach, "
                                               "run_failure, approval_expiring, approval_expired")
    channel: str | None = Field(None, description="delivery channel, e.g. slack, webhook; none = kept, no channel configured")
    severity: Literal["info", "warning", "critical"] | None = Field(None, description="only alerts of this severity")
    key_prefix: str | None = Field(None, description="literal start of the alert key, e.g. drift_findings|2026-11-20|")
    limit: int = Field(20, ge=1, le=200)


def _conditions(q: AlertQuery) -> list:
    c = alert_ledger.c
    conditions = []
    if q.kind is not None:
        conditions.append(c.kind == q.kind)
    if q.channel is not None:
        conditions.append(c.channel == q.channel)
    if q.severity is not None:
        conditions.append(c.severity == q.severity)
    if q.key_prefix is not None:  # substr, not LIKE: a prefix is literal text, never a pattern
        conditions.append(func.substr(c.key, 1, len(q.key_prefix)) == q.key_prefix)
    return conditions


def query_alerts(ctx: ToolContext, q: AlertQuery) -> dict:
    if ctx.orgs is not None:  # alert keys name sites and scopes of every tenant
        raise ToolInputError("the alert ledger is not kept per organisation: not available to a conversation "
                             "restricted to " + (", ".join(sorted(ctx.orgs)) or "no organisation"))
    c, where = alert_ledger.c, _conditions(q)
    rows_q = (select(c.key, c.kind, c.channel, c.severity, c.sent_at).where(*where)
              .order_by(c.sent_at.desc(), c.key).limit(q.limit))
    with read_tx(ctx.audit.engine) as conn:
        matching = conn.execute(select(func.count()).select_from(alert_ledger).where(*where)).scalar_one()
        rows = [{"key": r.key, "kind": r.kind, "channel": r.channel, "severity": r.severity, "sent_at": utc(r.sent_at)}
                for r in conn.execute(rows_q)]
    return {"rows": rows, "matching": matching,
            "facts": {"source": "alert ledger", "table": alert_ledger.name, "newest_first": True,
                      "holds": "the last delivery per alert key and channel (channel none: kept, no channel "
                               "configured), within the ledger retention; severity is null on rows recorded "
                               "before severities were kept, and a severity filter leaves those out"}}
