"""The Rego action gate: each rule, embedded (regopy bundle) and remote (OPA REST API over loopback HTTP)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from qlrf.remediation.gate import (
    Decision,
    Gate,
    Outcome,
    PolicyError,
    decision_from_result,
    json_input,
    run_policy_tests,
)
from tests.fakes.opa_fake import OpaFake, start_opa_fake

POLICY = Path(__file__).resolve().parents[2] / "policy"
HASH = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32

FULL_AUTO = "production is never full_auto: set the prod autonomy mode to plan_only or canary_only"
WINDOW = "production waves run only inside an open maintenance window"


def wave(**overrides) -> dict:
    """A well-formed prod canary wave that every policy allows; tests change one thing at a time."""
    request = {
        "action": "execute_wave",
        "environment": "prod",
        "autonomy_mode": "canary_only",
        "risk_level": "low",
        "plan_hash": HASH,
        "targets": 12,
        "wave": 0,
        "canary": True,
        "drift_delta": 1.5,
        "maintenance_window_open": True,
        "requested_by": "sensor:drift_breach",
        "fleet_size": 5490,
        "site": "lon1",
        "to_family": "ubuntu-22.04",
        "from_families": ["ubuntu-22.04"],
        "canary_passed": True,
    }
    request.update(overrides)
    return {k: v for k, v in request.items() if v is not ...}


@pytest.fixture(scope="module")
def opa():
    with start_opa_fake() as fake:
        yield fake


@pytest.fixture(scope="module")
def embedded():
    return Gate.embedded(POLICY)


@pytest.fixture(scope="module", params=["embedded", "remote"])
def gate(request, embedded, opa):
    if request.param == "embedded":
        yield embedded
        return
    remote = Gate.remote(opa.url, timeout=5)
    yield remote
    remote.close()


# (request, allow, requires_approval, deny reasons) -- every rule, both ways
CASES = {
    "prod canary in canary_only runs": (wave(), True, False, []),
    "prod is never full_auto": (wave(autonomy_mode="full_auto"), False, False, [FULL_AUTO]),
    "prod full_auto even blocks planning": (
        {"action": "plan", "environment": "prod", "autonomy_mode": "full_auto", "risk_level": "low",
         "to_family": "rhel-9", "from_families": ["rhel-9"]}, False, False, [FULL_AUTO]),
    "canary_only later wave before the canary passed": (
        wave(wave=1, canary=False, canary_passed=..., drift_delta=5, approval={"plan_hash": HASH, "approver": "alice"}),
        False, True, ["canary_only: wave 1 runs only after the canary passed its health gate"]),
    "a plan changing what a VM is": (wave(from_families=["rhel-9", "ubuntu-22.04"]), False, False, [
        "never change what a VM is: from-family 'rhel-9' is not the to-family 'ubuntu-22.04'"]),
    "staging may be full_auto": (wave(environment="staging", autonomy_mode="full_auto", wave=2, canary=False, drift_delta=20), True, False, []),
    "prod wave needs an open window": (wave(maintenance_window_open=False), False, False, [WINDOW]),
    "prod rollback outside the window": (wave(action="rollback", maintenance_window_open=False, wave=..., canary=...), True, False, []),
    "high risk needs approval": (
        wave(environment="dev", autonomy_mode="full_auto", risk_level="high", wave=3, canary=False, drift_delta=5), False, True, []),
    "critical risk needs approval even for the canary": (wave(risk_level="critical"), False, True, []),
    "high risk approved runs": (
        wave(environment="dev", autonomy_mode="full_auto", risk_level="high", wave=3, canary=False, drift_delta=5,
             approval={"plan_hash": HASH, "approver": "alice"}), True, True, []),
    "plan_only never executes": (
        wave(autonomy_mode="plan_only"), False, False, ["autonomy mode plan_only never executes (action execute_wave)"]),
    "plan_only never rolls back": (
        wave(autonomy_mode="plan_only", action="rollback"), False, False, ["autonomy mode plan_only never executes (action rollback)"]),
    "plan_only may plan": ({"action": "plan", "environment": "prod", "autonomy_mode": "plan_only", "risk_level": "critical",
                           "to_family": "rhel-9", "from_families": ["rhel-9"]}, True, False, []),
    "canary_only later wave waits for approval": (wave(wave=1, canary=False, drift_delta=8), False, True, []),
    "canary_only later wave approved runs": (
        wave(wave=1, canary=False, drift_delta=8, approval={"plan_hash": HASH, "approver": "alice"}), True, True, []),
    "only wave 0 is a canary": (wave(wave=2), False, False, ["only wave 0 can be the canary, got canary wave 2"]),
    "drift delta above the prod limit": (
        wave(wave=1, canary=False, drift_delta=12.5, approval={"plan_hash": HASH, "approver": "alice"}), False, True,
        ["drift delta 12.5% exceeds the prod limit of 10%"]),
    "the same delta is fine in dev": (
        wave(environment="dev", autonomy_mode="full_auto", wave=1, canary=False, drift_delta=12.5), True, False, []),
    "canary above the canary limit": (wave(drift_delta=2.5), False, False, ["canary wave changes 2.5% of prod, above the canary limit of 2%"]),
    "missing drift delta": (
        wave(drift_delta=...), False, False, ["drift_delta must be a number in [0, 100] (% of the environment's fleet), got <null>"]),
    "unknown environment": (wave(environment="qa"), False, False, ["environment 'qa' is not one of dev, prod, staging"]),
    "unknown risk level": (wave(risk_level="extreme"), False, False, ["risk_level 'extreme' is not one of low, medium, high, critical"]),
    "wave without plan hash": (
        wave(plan_hash=...), False, False, ["plan_hash must be the plan's sha256:<digest> (71 characters) for an action that changes machines"]),
    "approval of another plan": (
        wave(wave=1, canary=False, drift_delta=8, approval={"plan_hash": OTHER, "approver": "alice"}), False, True,
        ["approval is for a different plan hash: a modified plan needs a new approval"]),
    "self approval": (
        wave(wave=1, canary=False, drift_delta=8, requested_by="bob", approval={"plan_hash": HASH, "approver": "bob"}), False, True,
        ["self-approval is not an approval: 'bob' requested this action"]),
    "anonymous approval": (
        wave(wave=1, canary=False, drift_delta=8, approval={"plan_hash": HASH, "approver": "  "}), False, True,
        ["approval must name its approver"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rule(gate, case):
    request, allow, needs, reasons = CASES[case]
    decision = gate.decide(request)
    assert (decision.allow, decision.requires_approval, list(decision.reasons)) == (allow, needs, sorted(reasons))
    assert decision.source == gate.mode
    assert decision.input is request


def test_approval_reasons_say_why(gate):
    decision = gate.decide(wave(risk_level="high", wave=1, canary=False, drift_delta=8))
    assert decision.approval_reasons == ("canary_only: wave 1 is not the canary wave", "risk level high always needs approval")
    assert decision.approved is False
    approved = gate.decide(wave(risk_level="high", wave=1, canary=False, drift_delta=8, approval={"plan_hash": HASH, "approver": "alice"}))
    assert (approved.allow, approved.approved) == (True, True)


def test_every_reason_is_reported_at_once(gate):
    decision = gate.decide(wave(autonomy_mode="full_auto", maintenance_window_open=False, wave=1, canary=False, drift_delta=30))
    assert decision.reasons == tuple(sorted([FULL_AUTO, WINDOW, "drift delta 30% exceeds the prod limit of 10%"]))
    assert not decision.allow


@pytest.mark.parametrize("request_doc", ["just a string", 42, None, [wave()], {}])
def test_anything_but_a_request_object_is_denied(gate, request_doc):
    decision = gate.decide(request_doc)
    assert decision.allow is False and decision.reasons


def test_non_json_input_is_denied_without_asking_the_policy(gate):
    decision = gate.decide(wave(drift_delta=float("nan")))
    assert decision.allow is False and decision.reasons[0].startswith("input is not a JSON document")
    assert gate.decide(wave(environment="prod\x00dev")).reasons == ("input is not a JSON document: strings must not contain NUL characters",)


def test_huge_integers_do_not_wrap_around(gate):
    """rego-cpp's input conversion would turn 2**64 + 1 into 1; the gate must still see a huge delta."""
    assert json_input({"x": 2**64 + 1}) == {"x": float(2**64 + 1)}
    decision = gate.decide(wave(drift_delta=2**64 + 1))
    assert decision.allow is False
    assert decision.reasons[0].startswith("drift_delta must be a number in [0, 100]")


def test_crafted_strings_cannot_forge_the_decision(gate):
    """rego-cpp writes strings into its JSON output unescaped: no request string may reach the output."""
    forged = 'x"], "allow": true, "deny": [], "requires_approval": false, "y": ["'
    decision = gate.decide(wave(environment=forged, requested_by=forged, approval={"plan_hash": HASH, "approver": forged}))
    assert decision.allow is False
    assert "environment <string> is not one of dev, prod, staging" in decision.reasons
    assert "self-approval is not an approval: <string> requested this action" in decision.reasons


def test_drift_limits_come_from_data(opa):
    data = {"qlrf": {"config": {"drift_delta_limits": {"prod": 5}, "canary_delta_limits": {"prod": 0.5}}}}
    request = wave(wave=1, canary=False, drift_delta=6, approval={"plan_hash": HASH, "approver": "alice"})
    strict = Gate.embedded(POLICY, data=data)
    assert strict.decide(request).reasons == ("drift delta 6% exceeds the prod limit of 5%",)
    assert strict.decide(wave(drift_delta=1)).reasons == ("canary wave changes 1% of prod, above the canary limit of 0.5%",)
    with start_opa_fake(data=data) as fake:
        assert Gate.remote(fake.url).decide(request).reasons == ("drift delta 6% exceeds the prod limit of 5%",)


def test_decide_many_matches_decide(embedded):
    requests = [wave(wave=i % 4, canary=i % 4 == 0, drift_delta=(i % 30) / 2) for i in range(80)]
    pooled = Gate.embedded(POLICY, workers=2)
    many = pooled.decide_many(requests)
    one_by_one = [embedded.decide(r) for r in requests]
    assert [(d.allow, d.requires_approval, d.reasons) for d in many] == [(d.allow, d.requires_approval, d.reasons) for d in one_by_one]
    assert [d.input for d in many] == requests
    # allowed: canary waves (i % 4 == 0) within the 2% canary limit: i = 0, 4, 32, 60, 64
    assert [i for i, d in enumerate(many) if d.allow] == [0, 4, 32, 60, 64]


def test_decision_as_dict_records_the_input(embedded):
    request = wave()
    assert embedded.decide(request).as_dict() == {
        "allow": True, "requires_approval": False, "deny": [], "approval_reasons": [], "approved": False,
        "source": "embedded", "outcome": "allowed", "input": request,
    }


# --- fail closed ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (None, "undefined decision"),
        ("yes", "malformed decision: expected an object"),
        ({"allow": "true", "requires_approval": False, "deny": []}, "must be booleans"),
        ({"allow": True, "requires_approval": False, "deny": "none"}, "lists of strings"),
    ],
)
def test_malformed_results_deny(result, reason):
    decision = decision_from_result(result, {}, "remote")
    assert decision.allow is False and reason in decision.reasons[0]


def test_allow_with_a_reason_is_still_a_deny():
    decision = decision_from_result({"allow": True, "requires_approval": False, "deny": ["no"]}, {}, "embedded")
    assert (decision.allow, decision.reasons) == (False, ("no",))


def test_undefined_decision_denies_embedded(tmp_path):
    (tmp_path / "gate.rego").write_text('package qlrf.remediation.gate\n\nimport rego.v1\n\ndecision := {"allow": true} if input.never\n')
    decision = Gate.embedded(tmp_path).decide(wave())
    assert decision == Decision.deny("undefined decision: the policy did not decide (treated as deny)", decision.input, "embedded",
                                     Outcome.UNDEFINED)


def test_remote_http_errors_deny_with_the_reason(opa):
    remote = Gate.remote(opa.url, timeout=5)
    assert remote.decide(wave()).allow
    opa.fail_next(500, message="boom")
    assert remote.decide(wave()).reasons == ("OPA HTTP 500 Internal Server Error: boom",)
    opa.undefined_next()
    assert remote.decide(wave()).reasons == ("undefined decision: the policy did not decide (treated as deny)",)
    opa.garbage_next()
    assert remote.decide(wave()).reasons[0].startswith("OPA answered with a body that is not JSON")
    opa.drop_next(1)  # a dropped kept-alive connection is retried once...
    assert remote.decide(wave()).allow
    opa.drop_next(2)  # ...but not twice
    assert remote.decide(wave()).reasons[0].startswith(f"OPA at {opa.url} closed the connection")
    assert remote.decide(wave()).allow
    remote.close()


def test_remote_sends_the_input_and_token(tmp_path):
    with start_opa_fake(token="t0ken") as fake:
        assert Gate.remote(fake.url).decide(wave()).reasons == ("OPA HTTP 401 Unauthorized: missing or invalid bearer token",)
        decision = Gate.remote(fake.url, token="t0ken").decide(wave())
        assert decision.allow
        last = fake.requests[-1]
        assert (last.method, last.path, last.body) == ("POST", "/v1/data/qlrf/gate/decision", {"input": wave()})


def test_unreachable_or_slow_opa_denies():
    with start_opa_fake() as fake:
        url = fake.url
        fake.delay = 0.5
        decision = Gate.remote(url, timeout=0.1).decide(wave())
        assert decision.allow is False and "unreachable: TimeoutError" in decision.reasons[0]
    decision = Gate.remote(url, timeout=0.5).decide(wave())
    assert decision.allow is False and "unreachable: ConnectionRefusedError" in decision.reasons[0]


def test_from_env_picks_the_mode(opa):
    assert Gate.from_env({}).mode == "embedded"
    remote = Gate.from_env({"QLRF_OPA_URL": opa.url})
    assert remote.mode == "remote" and remote.decide(wave()).allow


# --- bad modules ----------------------------------------------------------------------------------


def _policy_copy(tmp_path: Path) -> Path:
    target = tmp_path / "policy"
    shutil.copytree(POLICY, target)
    return target


def test_syntax_error_names_file_and_line(tmp_path):
    policy = _policy_copy(tmp_path)
    text = (policy / "risk_level.rego").read_text().replace('input.risk_level in approval_levels', 'input.risk_level in ==', 1)
    (policy / "risk_level.rego").write_text(text)
    line = text.splitlines().index("\tinput.risk_level in ==") + 1
    with pytest.raises(PolicyError, match=rf"^policy/risk_level.rego: invalid Rego: policy/risk_level.rego:{line}:\d+: "):
        Gate.embedded(policy)


def test_v0_modules_are_refused(tmp_path):
    policy = _policy_copy(tmp_path)
    (policy / "legacy.rego").write_text('package qlrf.remediation.gate.legacy\n\ndeny[msg] { msg := "x" }\n')
    with pytest.raises(PolicyError, match=r"policy/legacy.rego: Rego v1 only: add `import rego.v1`"):
        Gate.embedded(policy)
    (policy / "legacy.rego").write_text('package qlrf.remediation.gate.legacy\n\nimport rego.v1\n\ndeny[msg] { msg := "x" }\n')
    with pytest.raises(PolicyError, match=r"policy/legacy.rego:5: Rego v0 rule body `deny\[msg\] \{`"):
        Gate.embedded(policy)


def test_remote_fake_refuses_a_bad_policy_upload(opa):
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{opa.url}/v1/policies/bad.rego", data=b"package x\nimport rego.v1\nfoo if {", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 400 and b"invalid_parameter" in err.value.read()


# --- the Rego tests -------------------------------------------------------------------------------


def test_rego_tests_pass_via_the_python_runner(embedded):
    expected = sum(len(set(re.findall(r"^(test_\w+)", f.read_text(), re.M))) for f in POLICY.glob("*_test.rego"))
    passed, failed, details = embedded.run_tests()
    assert expected >= 40
    assert (passed, failed) == (expected, 0), "\n".join(f"{t.name}: {t.message}" for t in details if not t.passed)
    files = {t.file for t in details}
    assert files == {f"policy/{f.name}" for f in POLICY.glob("*_test.rego")}


def test_a_failing_rego_test_is_reported(tmp_path):
    policy = _policy_copy(tmp_path)
    (policy / "extra_test.rego").write_text(
        "package qlrf.remediation.gate.extra_test\n\nimport rego.v1\n\nimport data.qlrf.gate.risk_level\n\n"
        'test_medium_needs_approval if {\n\tcount(risk_level.needs_approval) == 1 with input.risk_level as "medium"\n'
        '\t\twith input.action as "execute_wave"\n}\n\ntest_true if true\n'
    )
    report = run_policy_tests(policy)
    failed = [t for t in report.details if not t.passed]
    assert [(t.name, t.file, t.message) for t in failed] == [
        ("qlrf.remediation.gate.extra_test.test_medium_needs_approval", "policy/extra_test.rego", "undefined: a condition did not hold")
    ]
    assert (report.failed, report.passed, report.ok) == (1, len(report.details) - 1, False)
    assert "FAIL qlrf.remediation.gate.extra_test.test_medium_needs_approval" in report.summary()


def test_unsupported_with_forms_are_refused_before_they_crash(tmp_path):
    policy = _policy_copy(tmp_path)
    (policy / "bad_test.rego").write_text(
        "package qlrf.remediation.gate.bad_test\n\nimport rego.v1\n\nimport data.qlrf.gate\n\n"
        'test_whole_input if {\n\tgate.allow with input as {"action": "plan"}\n}\n'
    )
    with pytest.raises(PolicyError, match=r"policy/bad_test.rego:8: `with input as` is not supported by regopy 1.5.2"):
        run_policy_tests(policy)


def test_fake_evaluates_other_documents(opa):
    assert opa.evaluate("qlrf/gate/common/environments") == (True, ["dev", "prod", "staging"])
    assert opa.evaluate("qlrf/gate/nothing/here") == (False, None)
    assert isinstance(opa, OpaFake)
