"""The action gate: every action the remediation loop (or an AI task) takes is decided by Rego.

    decision   Decision, Outcome (why: policy deny, undefined, engine error, remote unreachable...)
    request    gate_request: the one request builder (planner previews and executor waves)
    modules    reading and linting Rego v1 modules under policy/
    embedded   regopy (rego-cpp) bundle, in-process
    remote     OPA REST data API
    testing    the Rego test runner behind ``qlrf policy test``
    gate       Gate: picks an engine, fails closed, decides one request or many
"""

from qlrf.remediation.gate.decision import Decision, GateFailure, Outcome, decision_from_result, strict_json
from qlrf.remediation.gate.embedded import EmbeddedEngine
from qlrf.remediation.gate.gate import Gate
from qlrf.remediation.gate.modules import DECISION_PATH, PolicyError, default_policy_dir, load_modules
from qlrf.remediation.gate.remote import RemoteEngine, RemoteError, json_input
from qlrf.remediation.gate.request import gate_request, percent
from qlrf.remediation.gate.testing import PolicyTest, PolicyTestReport, run_policy_tests

__all__ = [
    "DECISION_PATH",
    "Decision",
    "EmbeddedEngine",
    "Gate",
    "GateFailure",
    "Outcome",
    "PolicyError",
    "PolicyTest",
    "PolicyTestReport",
    "RemoteEngine",
    "RemoteError",
    "decision_from_result",
    "default_policy_dir",
    "gate_request",
    "json_input",
    "load_modules",
    "percent",
    "run_policy_tests",
    "strict_json",
]
