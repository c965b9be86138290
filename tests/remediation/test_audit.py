"""The audit log: a keyed, anchored hash chain whose verification finds edited, removed, truncated,
wiped and backdated records."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import stat
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from qlrf.db import GENESIS_HASH
from qlrf.remediation.audit import REDACTED, AuditError, AuditLog, canonical_json, record_hash


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


# --- the anchor: key, MAC, head file, database clock ---------------------------------------------


def test_the_key_file_is_created_private_and_reused(log):
    record = log.append("alert", "alerts", "task-1", {"n": 1})
    key_file = log.anchor.folder / "key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_text().strip()) == 64
    assert record.mac == hmac.new(key_file.read_text().strip().encode(), f"record:{record.hash}".encode(),
                                  hashlib.sha256).hexdigest()
    again = AuditLog(str(log.engine.url))  # a new process on the same database: same key, record authentic
    assert again.authentic(again.records()[0]) and again.verify().ok


def test_a_key_from_the_environment_signs_and_a_short_one_is_refused(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    monkeypatch.setenv("QLRF_AUDIT_KEY", "k" * 40)
    keyed = AuditLog(url)
    keyed.append("alert", "alerts", "task-1", {})
    assert not (keyed.anchor.folder / "key").exists() and keyed.verify().ok
    monkeypatch.setenv("QLRF_AUDIT_KEY", "x" * 40)
    assert AuditLog(url).verify().problems == [  # another key: nothing verifies
        "record 1: MAC does not match (edited, or written without the audit key)",
        f"the anchored head {keyed.anchor.head_path} does not verify under the audit key (forged)",
    ]
    monkeypatch.setenv("QLRF_AUDIT_KEY", "short")
    with pytest.raises(ValueError, match="QLRF_AUDIT_KEY: expected at least 32 characters, got 5"):
        AuditLog(url)


def test_the_anchored_head_only_moves_forward(log):
    records = fill(log, 3)
    head = json.loads(log.anchor.head_path.read_text())
    assert (head["seq"], head["hash"]) == (3, records[-1].hash)
    assert stat.S_IMODE(log.anchor.head_path.stat().st_mode) == 0o600
    log.anchor.advance(1, records[0].hash)  # a slow writer publishing an older head
    assert log.anchor.read_head().seq == 3


def test_a_missing_or_forged_head_file_is_reported(log):
    fill(log, 2)
    doc = json.loads(log.anchor.head_path.read_text())
    log.anchor.head_path.write_text(json.dumps({**doc, "seq": 1}))
    assert log.verify().problems == [f"the anchored head {log.anchor.head_path} does not verify under the audit key (forged)"]
    log.anchor.head_path.unlink()
    assert log.verify().problems == [f"the anchored head {log.anchor.head_path} is missing: truncation cannot be ruled out"]


def test_times_come_from_the_database_and_never_go_backwards(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    before = datetime.now(UTC)
    first = AuditLog(url).append("alert", "a", "task-1", {})
    assert before - timedelta(seconds=1) <= first.at <= datetime.now(UTC) + timedelta(seconds=1)
    backwards = AuditLog(url, clock=lambda: datetime(2020, 1, 1, tzinfo=UTC))
    second = backwards.append("alert", "b", "task-1", {})
    assert second.at == first.at and backwards.verify().ok


def test_verify_flags_timestamps_that_go_backwards(log):
    records = fill(log, 3)
    r = records[1]  # an insider with the key rewrites record 2 a day earlier, chain and MAC recomputed
    at = (r.at - timedelta(days=1)).isoformat(timespec="microseconds")
    digest = record_hash(r.seq, at, r.kind, r.actor, r.subject, r.data, r.prev_hash)
    raw(log, "UPDATE rf_audit_log SET at = :at, hash = :h, mac = :m WHERE seq = 2", at=at, h=digest, m=log.anchor.mac(digest))
    problems = log.verify().problems
    assert problems[0] == (f"record 2: timestamp {at} is earlier than record 1's {records[0].to_dict()['at']} "
                           "(out of order: backdated?)")


def test_records_without_a_mac_are_reported_once(log):
    fill(log, 3)
    raw(log, "UPDATE rf_audit_log SET mac = NULL WHERE seq <= 2")
    assert log.verify().problems == [
        "2 record(s) carry no MAC (seq 1..2): written before the log was keyed, or behind its back"
    ]


def test_an_audit_table_from_before_the_mac_column_is_upgraded(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE rf_audit_log (seq INTEGER PRIMARY KEY, at VARCHAR(40) NOT NULL, kind VARCHAR(64) NOT NULL, "
                     "actor VARCHAR(200) NOT NULL, subject VARCHAR(200) NOT NULL, data TEXT NOT NULL, "
                     "prev_hash VARCHAR(64) NOT NULL, hash VARCHAR(64) NOT NULL)")
    log = AuditLog(f"sqlite:///{path}")
    assert log.append("alert", "a", "task-1", {}).mac is not None and log.verify().ok


def test_verify_while_others_append_reports_nothing(log):
    fill(log, 2)
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            log.append("wave_end", "executor", "task-2", {})

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        results = [log.verify() for _ in range(15)]
    finally:
        stop.set()
        thread.join()
    assert [r.problems for r in results if not r.ok] == []
    assert log.verify().ok and log.anchor.read_head().seq == log.head()[0]
