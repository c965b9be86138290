"""Patch plans: validation names the field, the hash binds the content, waves cover every target."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from qlrf.remediation.plans import PatchPlan, PlanError, parse_plan


def plan_doc(**spec_over) -> dict:
    spec = {
        "targets": {
            "groups": [{"kind": "asg", "platform": "aws", "account": "1", "region": "eu-west-1", "name": "web", "size": 12}],
            "instances": [{"asset_id": "i-1", "platform": "aws", "account": "1", "region": "eu-west-1", "name": "db-1"}],
        },
        "from_images": [{"image_ref": "ami-0000000000000aaa1", "family": "ubuntu-22.04", "version": "2.1.0"}],
        "to_image": {"image_ref": "ami-0000000000000bbb2", "family": "ubuntu-22.04", "version": "3.0.0"},
        "waves": [
            {"name": "canary", "canary": True, "groups": ["web"], "group_percent": 10, "instances": []},
            {"name": "batch-1", "groups": ["web"], "group_percent": 45, "instances": ["i-1"]},
            {"name": "batch-2", "groups": ["web"], "group_percent": 45},
        ],
        "health_gate": {"timeout_seconds": 300, "min_healthy_percent": 90},
        "max_unavailable": 2,
        "maintenance_window": {"days": ["sat", "sun"], "start": "22:00", "end": "04:00"},
        "rollback": {"strategy": "previous_launch_template_version", "launch_template_version": "7"},
    }
    spec.update(spec_over)
    return {
        "metadata": {"id": "plan-1", "created_at": "2026-11-27T10:00:00Z", "created_by": "sensor:drift_breach",
                     "reason": "site lon1 prod drift 41 > 30", "environment": "prod", "platform": "aws", "site": "lon1",
                     "risk_level": "high", "autonomy_mode": "canary_only"},
        "spec": spec,
    }


def test_round_trip_and_hash_binding():
    plan = PatchPlan.model_validate(plan_doc()).sealed()
    again = parse_plan(plan.to_yaml())
    assert again.content_hash == plan.content_hash and again.content_hash.startswith("sha256:")
    assert plan.wave_targets(0) == 2 and plan.wave_targets(1) == 7  # ceil(12 x 10%), ceil(12 x 45%) + 1
    assert plan.spec.targets.count() == 13
    tampered = yaml.safe_load(plan.to_yaml())
    tampered["spec"]["to_image"]["image_ref"] = "ami-00000000000evil01"
    with pytest.raises(PlanError, match="content_hash does not match"):
        parse_plan(yaml.safe_dump(tampered), "plan.yaml")


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"waves": [{"name": "b", "groups": ["web"], "instances": ["i-1"]}]}, "waves[0] must be the canary"),
        ({"waves": [{"name": "c", "canary": True, "groups": ["web"], "group_percent": 50, "instances": ["i-1"]}]}, "only 50% covered"),
        ({"waves": [{"name": "c", "canary": True, "groups": ["web"], "instances": []}]}, "missing ['i-1']"),
        ({"max_unavailable": 0}, "spec.max_unavailable"),
        ({"rollback": {"strategy": "pray"}}, "spec.rollback.strategy"),
        ({"to_image": {"image_ref": "ami-0000000000000bbb2"}}, "to_image.version"),
    ],
)
def test_invalid_plans_name_the_field(over, field):
    with pytest.raises(PlanError) as err:
        parse_plan(yaml.safe_dump(plan_doc(**over)), "p.yaml")
    assert "p.yaml: invalid patch plan" in str(err.value) and field in str(err.value)


def test_maintenance_window_across_midnight():
    window = PatchPlan.model_validate(plan_doc()).spec.maintenance_window
    assert window.is_open(datetime(2026, 11, 28, 23, 0, tzinfo=UTC))  # Saturday 23:00
    assert window.is_open(datetime(2026, 11, 29, 3, 59, tzinfo=UTC))  # Sunday 03:59
    assert not window.is_open(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))
    assert not window.is_open(datetime(2026, 11, 27, 23, 0, tzinfo=UTC))  # Friday
