"""Dry run against vcsim: the vSphere driver lists clone, power and rename calls, vCenter is left as
it was, and the real run then makes exactly those calls."""

from __future__ import annotations

import pytest

pytest.importorskip("pyVim.connect")

from qlrf.remediation.calls import CallRecorder  # noqa: E402
from qlrf.remediation.dryrun import dry_run_plan  # noqa: E402
from qlrf.remediation.gate import Gate  # noqa: E402
from tests.remediation.support import NOW, audit_log, kinds  # noqa: E402
from tests.remediation.test_vsphere_driver import by_name, make_driver, make_plan, run, vcsim  # noqa: E402, F401

pytestmark = pytest.mark.slow


def _state(si) -> dict:
    return {name: (r["runtime.powerState"], r["config.instanceUuid"]) for name, r in by_name(si).items()}


def test_vsphere_dry_run_changes_nothing_and_matches_the_real_run(vcsim, tmp_path):  # noqa: F811
    server, si, vc, rows, keys = vcsim
    targets = rows[1:3]
    uuids = [r["config.instanceUuid"] for r in targets]
    plan = make_plan(vc, targets, [{"name": "canary", "canary": True, "instances": uuids[:1]},
                                   {"name": "rest", "instances": uuids[1:]}])
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    before = _state(si)
    dry_driver = make_driver(vc)
    dry_driver.recorder = CallRecorder(dry_run=True)
    dry = dry_run_plan(plan, driver=dry_driver, gate=Gate.embedded(), audit=audit, requested_by="cli:alice",
                       fleet_size=100, now=NOW, log=lambda _: None)
    dry_driver.close()
    assert dry.error is None and dry.would_run and kinds(audit) == ["dry_run"]
    assert _state(si) == before
    ops = [c.operation for c in dry.calls]
    assert ops.count("CloneVM_Task") == 2 and ops.count("Rename_Task") == 4 and ops.count("PowerOffVM_Task") == 2
    assert "SetField" in ops

    real = make_driver(vc)
    result = run(plan, real, Gate.embedded(), audit)
    real.close()
    assert result.state == "succeeded", result.reason
    assert [(c.name, c.target, dict(c.params)) for c in real.recorder.calls] == [
        (c.name, c.target, dict(c.params)) for c in dry.calls]
