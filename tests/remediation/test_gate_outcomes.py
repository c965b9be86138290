"""Decision.outcome: callers tell a policy deny from a gate that did not decide without parsing text."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlrf.remediation.gate import Gate, Outcome
from tests.fakes.opa_fake import start_opa_fake
from tests.remediation.test_gate import POLICY, wave


@pytest.fixture(scope="module")
def opa():
    with start_opa_fake() as fake:
        yield fake


def test_policy_verdicts_are_not_gate_failures():
    gate = Gate.embedded(POLICY)
    allowed = gate.decide(wave())
    denied = gate.decide(wave(maintenance_window_open=False))
    pending = gate.decide(wave(risk_level="high"))
    assert [d.outcome for d in (allowed, denied, pending)] == [Outcome.ALLOWED, Outcome.POLICY_DENY, Outcome.NEEDS_APPROVAL]
    assert not any(d.gate_failed for d in (allowed, denied, pending))


def test_undefined_and_bad_input_are_gate_failures(tmp_path: Path):
    (tmp_path / "gate.rego").write_text('package qlrf.gate\n\nimport rego.v1\n\ndecision := {"allow": true} if input.never\n')
    undefined = Gate.embedded(tmp_path).decide(wave())
    assert (undefined.outcome, undefined.gate_failed) == (Outcome.UNDEFINED, True)
    bad = Gate.embedded(POLICY).decide(wave(site="a\x00b"))
    assert (bad.outcome, bad.gate_failed) == (Outcome.BAD_INPUT, True)


def test_remote_failures_say_how_they_failed(opa):
    remote = Gate.remote(opa.url, timeout=5)
    opa.fail_next(500)
    assert remote.decide(wave()).outcome == Outcome.REMOTE_ERROR
    opa.garbage_next()
    assert remote.decide(wave()).outcome == Outcome.REMOTE_ERROR
    opa.undefined_next()
    assert remote.decide(wave()).outcome == Outcome.UNDEFINED
    assert remote.decide(wave()).outcome == Outcome.ALLOWED
    refused = Gate.remote("http://127.0.0.1:9", timeout=1).decide(wave())  # nothing listens on the discard port
    assert (refused.outcome, refused.gate_failed) == (Outcome.REMOTE_UNREACHABLE, True)


def test_a_slow_opa_is_a_timeout(opa):
    opa.delay = 0.5
    try:
        decision = Gate.remote(opa.url, timeout=0.1).decide(wave())
    finally:
        opa.delay = 0
    assert (decision.outcome, decision.gate_failed) == (Outcome.REMOTE_TIMEOUT, True)
    assert decision.as_dict()["outcome"] == "remote_timeout"
