"""The audit log: a hash chain whose verification finds edited, removed and truncated records."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest
from sqlalchemy import text

from qlrf.db import GENESIS_HASH
from qlrf.remediation.audit import REDACTED, AuditError, AuditLog, canonical_json


@pytest.fixture()
def log(tmp_path):
    return AuditLog(f"sqlite:///{tmp_path / 'audit.db'}")


def fill(log: AuditLog, n: int = 5) -> list:
    return [log.append("wave_end", "executor", "task-1", {"wave": i, "healthy": 12 - i}) for i in range(n)]


def raw(log: AuditLog, statement: str, **params) -> None:
    with log.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_records_are_chained_and_verify(log):
    records = fill(log, 4)
    assert [r.seq for r in records] == [1, 2, 3, 4]
    assert records[0].prev_hash == GENESIS_HASH
    assert [r.prev_hash for r in records[1:]] == [r.hash for r in records[:-1]]
    first = records[0]
    body = {"seq": 1, "at": first.at.isoformat(timespec="microseconds"), "kind": "wave_end", "actor": "executor",
            "subject": "task-1", "data": {"wave": 0, "healthy": 12}, "prev_hash": GENESIS_HASH}
    assert first.hash == hashlib.sha256(canonical_json(body).encode()).hexdigest()
    result = log.verify()
    assert (result.ok, result.checked, result.problems, result.head_seq, result.head_hash) == (True, 4, [], 4, records[-1].hash)
    assert log.records() == records


def test_verify_detects_an_edited_record(log):
    fill(log)
    raw(log, "UPDATE rf_audit_log SET data = :d WHERE seq = 2", d=json.dumps({"healthy": 12, "wave": 1}))  # 11 -> 12
    result = log.verify()
    assert not result.ok and result.checked == 5
    assert result.problems == ["record 2 (wave_end, task-1): content does not match its hash (edited)"]


def test_verify_detects_an_edit_with_a_recomputed_hash(log):
    records = fill(log)
    forged = {"seq": 3, "at": records[2].at.isoformat(timespec="microseconds"), "kind": "wave_end", "actor": "executor",
              "subject": "task-1", "data": {"healthy": 99, "wave": 2}, "prev_hash": records[1].hash}
    digest = hashlib.sha256(canonical_json(forged).encode()).hexdigest()
    raw(log, "UPDATE rf_audit_log SET data = :d, hash = :h WHERE seq = 3", d=canonical_json(forged["data"]), h=digest)
    problems = log.verify().problems  # the MAC names the forged record itself (the key is not in the database)
    assert problems[0] == "record 3: MAC does not match (edited, or written without the audit key)"
    assert len(problems) == 2 and problems[1].startswith("record 4: prev_hash does not match the hash of record 3")


def test_verify_detects_a_deleted_middle_record(log):
    fill(log)
    raw(log, "DELETE FROM rf_audit_log WHERE seq = 3")
    result = log.verify()
    assert not result.ok and result.checked == 4
    assert result.problems[0] == "record 3 missing: seq jumps from 2 to 4 (removed)"
    assert result.problems[1].startswith("record 4: prev_hash does not match the hash of record 2")
    assert len(result.problems) == 2


def test_verify_detects_a_truncated_tail(log):
    fill(log)
    raw(log, "DELETE FROM rf_audit_log WHERE seq >= 4")
    result = log.verify()
    assert not result.ok and result.checked == 3
    assert result.problems == ["the log ends at seq 3 but the head records seq 5: 2 record(s) removed from the tail"]


def test_verify_detects_a_record_inserted_behind_the_logs_back(log):
    records = fill(log, 2)
    raw(log, "INSERT INTO rf_audit_log (seq, at, kind, actor, subject, data, prev_hash, hash) "
             "VALUES (3, :at, 'approval', 'mallory', 'task-1', '{}', :p, :h)",
        at=records[1].at.isoformat(), p=records[1].hash, h="0" * 64)
    assert log.verify().problems == ["1 record(s) beyond the head seq 2: not appended through the log"]


def test_secret_named_keys_are_redacted_and_bad_records_refused(log):
    record = log.append("alert", "alerts", "task-1", {
        "channel": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/x", "smtp": {"password": "p", "host": "mx"},
        "receivers": [{"api_key": "k", "name": "ops"}], "run_key": "drift:abc",
    })
    assert record.data == {"channel": "slack", "webhook_url": REDACTED, "smtp": {"password": REDACTED, "host": "mx"},
                           "receivers": [{"api_key": REDACTED, "name": "ops"}], "run_key": "drift:abc"}
    assert log.records()[0].data == record.data and log.verify().ok
    with pytest.raises(AuditError, match="kind"):
        log.append("Bad Kind", "x", "y", {})
    with pytest.raises(AuditError, match="actor"):
        log.append("alert", "", "y", {})
    with pytest.raises(AuditError, match="not JSON"):
        log.append("alert", "x", "y", {"value": float("nan")})
    assert log.head()[0] == 1


def test_records_filter_by_subject_kind_and_limit(log):
    log.append("plan_proposed", "sensor", "task-a", {"n": 1})
    log.append("approval", "alice", "task-a", {"n": 2})
    log.append("plan_proposed", "sensor", "task-b", {"n": 3})
    log.append("wave_start", "executor", "task-a", {"n": 4})
    assert [r.data["n"] for r in log.records(subject="task-a")] == [1, 2, 4]
    assert [r.data["n"] for r in log.records(kind="plan_proposed")] == [1, 3]
    assert [r.seq for r in log.records(limit=2)] == [3, 4]
    assert [r.data["n"] for r in log.records(subject="task-a", kind="approval")] == [2]


def test_concurrent_appends_keep_one_chain(log):
    def worker(name: str) -> None:
        for i in range(20):
            log.append("wave_end", name, f"task-{name}", {"i": i})

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = log.verify()
    assert result.ok and result.checked == 80 and result.head_seq == 80
    assert sorted(r.data["i"] for r in log.records(subject="task-w2")) == list(range(20))
