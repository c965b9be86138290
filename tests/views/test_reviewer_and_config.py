"""Who may decide approval tasks in the dashboard, and what the settings page may show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from qlrf.remediation.plans import PlanError
from qlrf.remediation.reviewer import ENV_LOCAL_USER, countdown, edited_plan, execution_note, reviewer
from qlrf.settings import Settings
from qlrf.views.config import effective
from tests.sensors.support import make_plan

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_signed_in_wins_over_local_and_is_normalised():
    who = reviewer(" Bob@Example.COM ", {ENV_LOCAL_USER: "alice"})
    assert (who.name, who.mode) == ("bob@example.com", "signed_in")
    assert who.refusal("prod", "sensor:drift_findings_sensor") is None


def test_local_mode_refuses_production_and_self_approval():
    who = reviewer(None, {ENV_LOCAL_USER: "Alice"})
    assert (who.name, who.mode) == ("alice", "local")
    assert who.refusal("dev", "sensor:x") is None
    assert "local single-user mode" in who.refusal("prod", "sensor:x")
    assert "you requested this plan" in who.refusal("dev", " ALICE ")
    assert "Local single-user mode" in who.label


@pytest.mark.parametrize("env", [{}, {ENV_LOCAL_USER: "   "}])
def test_nobody_configured_decides_nothing(env):
    who = reviewer(None, env)
    assert who.mode == "none" and who.name is None
    assert ENV_LOCAL_USER in who.refusal("dev", "sensor:x")


def test_countdown_reads_like_a_person():
    assert countdown(NOW + timedelta(hours=5, minutes=7), NOW) == "5 h 07 min left"
    assert countdown(NOW + timedelta(minutes=42), NOW) == "42 min left"
    assert countdown(NOW - timedelta(seconds=1), NOW) == "expired"
    assert countdown(None, NOW) == "never expires"


def test_execution_note_says_the_sensor_is_stopped():
    assert "ships STOPPED" in execution_note("canary_only", "any time")
    assert "Will not execute" in execution_note("plan_only", "any time")


def test_an_edit_drops_the_old_hash_and_is_validated():
    plan = make_plan("rp-edit")
    doc = yaml.safe_load(plan.to_yaml())  # as stored with the task, content_hash included
    doc["spec"]["health_gate"]["timeout_seconds"] = 99
    edited = edited_plan(yaml.safe_dump(doc), "task-1")
    assert edited.spec.health_gate.timeout_seconds == 99 and edited.content_hash is None
    with pytest.raises(PlanError, match="edited plan of task-1: expected a YAML mapping"):
        edited_plan("- a list", "task-1")
    with pytest.raises(PlanError, match="edited plan of task-1: invalid patch plan"):
        edited_plan("metadata: {}", "task-1")


def test_effective_configuration_never_shows_a_secret(tmp_path):
    env = {"QLRF_HOME": str(tmp_path), "QLRF_POSTGRES_URL": "postgresql://u:s3cret@db:5432/x", "OPENAI_API_KEY": "sk-abc",
           "QLRF_SLACK_WEBHOOK": "https://hooks.example/T/B/token"}
    frame = effective(Settings.from_env(env), env, cwd=tmp_path)
    values = " ".join(frame["value"].astype(str))
    assert "s3cret" not in values and "sk-abc" not in values and "token" not in values
    shown = dict(zip(frame["variable"], frame["value"], strict=True))
    assert shown["QLRF_WAREHOUSE"] == "warehouse"  # relative to the working directory
    assert shown["OPENAI_API_KEY"] == shown["QLRF_SLACK_WEBHOOK"] == "set (value hidden)"
