"""AI tasks in the task store on the machine's PostgreSQL: the kind column, added to an old table too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from qlrf.ai.tasks import spec_of, task_document
from qlrf.db import dispose_engines
from qlrf.remediation.approvals import AI_TASK, PATCH_PLAN, TaskStateError, TaskStore
from qlrf.remediation.audit import AuditLog
from tests.remediation.support import PENDING, Clock, make_plan
from tests.remediation.test_ai_task_kind import ai_spec

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.postgres


def test_ai_tasks_on_postgres(pg_url):
    clock = Clock(T0)
    store = TaskStore(pg_url, audit=AuditLog(pg_url), clock=clock)
    task = store.propose_ai_task(task_document(ai_spec()), "cli:alice", PENDING)
    assert (task.kind, task.state, task.expires_at) == (AI_TASK, "pending_approval", T0 + timedelta(hours=24))
    assert spec_of(task).content_hash == task.plan_hash
    with pytest.raises(TaskStateError, match="self-approval refused"):
        store.approve(task.id, task.plan_hash, "CLI:Alice", "mine")
    store.approve(task.id, task.plan_hash, "bob", "ok")
    plan = store.propose(make_plan(), "sensor", PENDING)
    store.approve(plan.id, plan.plan_hash, "bob", "ok")
    assert [t.id for t in store.approved_waiting()] == [plan.id]
    assert store.audit.verify().ok


def test_an_old_postgres_task_table_gains_the_kind_column(pg_url):
    old = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg2://"))
    with old.begin() as conn:
        conn.execute(text("CREATE TABLE rf_tasks (id VARCHAR(64) PRIMARY KEY, plan_hash VARCHAR(80) NOT NULL UNIQUE, "
                          "plan_id VARCHAR(200) NOT NULL, plan_yaml TEXT NOT NULL, state VARCHAR(32) NOT NULL, "
                          "environment VARCHAR(32) NOT NULL, platform VARCHAR(32) NOT NULL, site VARCHAR(200), "
                          "risk_level VARCHAR(16) NOT NULL, autonomy_mode VARCHAR(32) NOT NULL, "
                          "requested_by VARCHAR(200) NOT NULL, created_at TIMESTAMPTZ NOT NULL, "
                          "updated_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ, approver VARCHAR(200), reason TEXT, "
                          "decision TEXT NOT NULL, supersedes VARCHAR(64))"))
        conn.execute(text("INSERT INTO rf_tasks VALUES ('task-old', 'sha256:x', 'p', 'y', 'rejected', 'dev', 'aws', NULL, "
                          "'low', 'plan_only', 'a', '2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z', NULL, NULL, NULL, "
                          "'{}', NULL)"))
    old.dispose()
    dispose_engines()
    assert TaskStore(pg_url).get("task-old").kind == PATCH_PLAN
