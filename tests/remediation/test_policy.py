"""policy/remediation.yaml is the single source of the remediation policy's defaults."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from qlrf.remediation.policy import RemediationPolicy, RemediationPolicyError

POLICY_FILE = Path(__file__).resolve().parents[2] / "policy" / "remediation.yaml"


@pytest.fixture
def policy_dir(tmp_path, monkeypatch) -> Path:
    """A copy of the shipped policy file in a directory the defaults are read from."""
    shutil.copy(POLICY_FILE, tmp_path / "remediation.yaml")
    monkeypatch.setenv("QLRF_POLICY_DIR", str(tmp_path))
    monkeypatch.delenv("QLRF_REMEDIATION_POLICY", raising=False)
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_editing_the_yaml_changes_the_defaults(policy_dir, tmp_path):
    assert RemediationPolicy.defaults().for_env("dev").drift_threshold == 60
    _edit(policy_dir / "remediation.yaml", "drift_threshold: 60", "drift_threshold: 55")
    _edit(policy_dir / "remediation.yaml", "canary_percent: 20", "canary_percent: 25")
    defaults = RemediationPolicy.defaults()
    assert (defaults.for_env("dev").drift_threshold, defaults.for_env("dev").canary_percent) == (55, 25)
    # A partial policy elsewhere takes what it leaves out from the edited file.
    partial = tmp_path / "partial.yaml"
    partial.write_text("environments:\n  staging:\n    drift_threshold: 20\n")
    assert RemediationPolicy.load(partial).thresholds() == {"dev": 55.0, "staging": 20.0, "prod": 30.0}


def test_a_malformed_defaults_file_is_an_error_naming_the_field(policy_dir):
    path = policy_dir / "remediation.yaml"
    _edit(path, "max_unavailable: 3", "max_unavailable: many")
    with pytest.raises(RemediationPolicyError, match=r"remediation.yaml: invalid remediation policy: "
                                                     r"environments.staging.max_unavailable"):
        RemediationPolicy.defaults()
    with pytest.raises(RemediationPolicyError, match="environments.staging.max_unavailable"):
        RemediationPolicy.load()


def test_the_defaults_file_must_define_every_field_and_environment(policy_dir):
    path = policy_dir / "remediation.yaml"
    _edit(path, "    compliance_floor: 80\n", "")
    with pytest.raises(RemediationPolicyError, match="environments.staging.compliance_floor: Field required"):
        RemediationPolicy.defaults()
    shutil.copy(POLICY_FILE, path)
    text = path.read_text()
    path.write_text(text[: text.index("  prod:")])
    with pytest.raises(RemediationPolicyError, match="environments.prod: missing"):
        RemediationPolicy.defaults()


def test_the_defaults_file_must_be_yaml(policy_dir):
    (policy_dir / "remediation.yaml").write_text("environments: [unclosed\n")
    with pytest.raises(RemediationPolicyError, match="remediation.yaml: not YAML"):
        RemediationPolicy.defaults()


def test_the_queue_limit_is_validated_and_defaults_to_the_shipped_file(tmp_path):
    partial = tmp_path / "partial.yaml"
    partial.write_text("environments:\n  staging:\n    drift_threshold: 20\n")
    assert RemediationPolicy.load(partial).queue.max_pending == RemediationPolicy.load(POLICY_FILE).queue.max_pending == 25
    partial.write_text("queue:\n  max_pending_per_environment: {prod: 10}\n")
    loaded = RemediationPolicy.load(partial).queue
    assert (loaded.max_pending, loaded.max_pending_per_environment) == (25, {"prod": 10})
    for text, error in [
        ("queue:\n  max_pending: 0\n", "queue.max_pending: Input should be greater than or equal to 1"),
        ("queue:\n  max_pending_per_environment: {qa: 3}\n", "queue.max_pending_per_environment.qa.[key]: Input should be 'dev', 'staging' or 'prod'"),
        ("queue:\n  max_pending_per_environment: {prod: 0}\n", "queue: Value error, max_pending_per_environment.prod: must be at least 1"),
        ("queue:\n  max_pendng: 3\n", "queue.max_pendng: Extra inputs are not permitted"),
        ("queue: 25\n", "queue: Input should be a valid dictionary"),
    ]:
        partial.write_text(text)
        with pytest.raises(RemediationPolicyError, match=re.escape(f"partial.yaml: invalid remediation policy: {error}")):
            RemediationPolicy.load(partial)
