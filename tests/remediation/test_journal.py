"""The execution journal on SQLite (tests/integration/test_journal_postgres.py runs the same checks on
PostgreSQL): intent committed before the call, results after, attempts, take-over, checkpoints."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from qlrf.db import database_url
from qlrf.remediation.calls import CallRecorder, CloudCall
from qlrf.remediation.journal import (
    ATTEMPT,
    DONE,
    FAILED,
    INTENT,
    INTERRUPTED,
    ExecutionJournal,
    journal_lines,
    this_owner,
)
from qlrf.remediation.journaled import JournaledDriver
from tests.remediation.support import Clock, make_plan

T0 = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)


class CountingDriver:
    """A driver with the state protocol whose every change goes through its recorder (a test double:
    the code under test is the journal around it). ``seen`` holds what a second connection read from
    the journal while each call was being made."""

    def __init__(self, url: str):
        self.recorder = CallRecorder()
        self.url = url
        self.changed: list[str] = []
        self.seen: list[tuple[str, str]] = []

    def checkpoint(self) -> dict:
        return {"changed": list(self.changed)}

    def restore(self, state: dict) -> None:
        self.changed = list(state["changed"])

    def prepare(self, plan):
        return {"prepared": True}

    def _change(self, name: str) -> None:
        def perform() -> dict:
            with create_engine(database_url(self.url)).connect() as other:  # another connection: only committed rows
                row = other.execute(text("SELECT step, status FROM rf_execution_journal ORDER BY id DESC LIMIT 1")).first()
            self.seen.append((row.step, row.status))
            self.changed.append(name)
            return {"Id": name, "ResponseMetadata": {"RequestId": "x"}}

        self.recorder.send(CloudCall("test", "svc", "Change", name, {"n": name}), perform)

    def run_wave(self, plan, index):
        for target in plan.spec.waves[index].instances:
            self._change(target)
        return {"wave": index}

    def health(self, plan, index):
        from qlrf.remediation.executor import HealthReport

        return HealthReport(True, 1, 1)

    def rollback(self, plan, waves_done):
        raise RuntimeError("boom: rollback failed")


def journal_checks(url: str) -> None:
    """The journal's contract on the database at ``url`` (shared with the PostgreSQL test)."""
    clock = Clock(T0)
    journal = ExecutionJournal(url, clock=clock)
    plan = make_plan("jr-1").sealed()
    driver = CountingDriver(url)
    attempt = journal.begin("task-1", plan.metadata.id, plan.content_hash, mode="execute", actor="cli:alice")
    wrapped = JournaledDriver(driver, attempt)
    wrapped.prepare(plan)
    wrapped.run_wave(plan, 0)
    wrapped.health(plan, 0)
    wrapped.health(plan, 0)  # the same verdict again: not journalled twice
    wrapped.run_wave(plan, 1)

    # the intent row of every call was committed before the call was made
    assert driver.seen == [("chunk", INTENT)] * 3
    entries = journal.entries("task-1")
    assert [(e.seq, e.step, e.wave, e.status) for e in entries] == [
        (0, ATTEMPT, None, INTENT), (1, "prepare", None, DONE), (2, "wave 0 run", 0, DONE), (3, "chunk", 0, DONE),
        (4, "health", 0, DONE), (5, "wave 1 run", 1, DONE), (6, "chunk", 1, DONE), (7, "chunk", 1, DONE)]
    chunk = entries[3]
    assert chunk.intent["call"] == {"platform": "test", "service": "svc", "operation": "Change", "target": "i-0",
                                    "params": {"n": "i-0"}}
    assert chunk.result == {"Id": "i-0"}  # the response's identifiers, not its metadata
    assert entries[6].checkpoint == {"changed": ["i-0"]}  # the state before the call: the rollback data
    saved, row = journal.latest_checkpoint("task-1")
    assert saved == {"changed": ["i-0", "i-1", "i-2"]} and row.step == "wave 1 run"
    assert journal.waves_started("task-1") == [0, 1] and journal.changed_anything("task-1")
    assert journal.unfinished("task-1").attempt == attempt.id
    assert any("svc.Change i-1" in line for line in journal_lines(entries))

    # a step that fails is completed as failed, with the error named
    with pytest.raises(RuntimeError, match="boom"):
        wrapped.rollback(plan, [0, 1])
    last = journal.entries("task-1")[-1]
    assert (last.step, last.status, last.result) == ("rollback", FAILED, {"error": "RuntimeError: boom: rollback failed"})

    # liveness: this process is alive and just wrote; silence past stale_after abandons it
    entry = journal.unfinished("task-1")
    assert entry.owner == this_owner() and journal.abandoned(entry, stale_after=900) is None
    clock.set(T0 + timedelta(seconds=901))
    assert "nothing journalled for 901s" in journal.abandoned(entry, stale_after=900)

    # a dead process of this host is abandoned at once; an interrupted attempt too
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    other = journal.begin("task-2", plan.metadata.id, plan.content_hash, mode="execute", actor="cli:alice",
                          owner=f"{this_owner().rpartition(':')[0]}:{gone.pid}")
    clock.set(T0 + timedelta(seconds=902))
    assert journal.abandoned(journal.unfinished("task-2"), stale_after=900) == f"its process {other.owner} is gone"
    third = journal.begin("task-3", plan.metadata.id, plan.content_hash, mode="execute", actor="cli:alice")
    third.finish(INTERRUPTED, {"error": "KeyboardInterrupt"})
    assert journal.abandoned(journal.unfinished("task-3"), stale_after=900) == "the run was interrupted (signal)"

    # one recoverer takes an abandoned attempt over; the next finds nothing unfinished
    first = journal.unfinished("task-2")
    assert journal.take_over(first, "gone") is True and journal.take_over(first, "gone") is False
    assert journal.unfinished("task-2") is None
    attempt.finish(DONE, {"state": "succeeded"})
    assert journal.unfinished("task-1") is None


def test_journal_on_sqlite(tmp_path):
    journal_checks(f"sqlite:///{tmp_path / 'tasks.db'}")


def test_a_dry_run_recorder_journals_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    journal = ExecutionJournal(url)
    plan = make_plan("jr-dry").sealed()
    driver = CountingDriver(url)
    driver.recorder = CallRecorder(dry_run=True)
    attempt = journal.begin("task-d", plan.metadata.id, plan.content_hash, mode="dry", actor="cli:alice")
    JournaledDriver(driver, attempt).run_wave(plan, 0)
    assert [e.step for e in journal.entries("task-d")] == [ATTEMPT, "wave 0 run"] and driver.changed == []
