"""Kill `qlrf plan execute` mid-wave on vcsim (the vSphere driver: clone from the golden template and
swap), then run the task again in a fresh process: every VM ends swapped to its clone (resume) or back
to the original VM (rollback), no clone or renamed VM left over, the audit chain intact."""

from __future__ import annotations

import pytest

pytest.importorskip("pyVim.connect")

from qlrf.remediation.approvals import TaskStore  # noqa: E402
from qlrf.remediation.audit import AuditLog  # noqa: E402
from qlrf.remediation.drivers.vsphere import NEW_SUFFIX  # noqa: E402
from tests.remediation.crash import cli_env, execute_and_kill, qlrf  # noqa: E402
from tests.remediation.support import PENDING  # noqa: E402
from tests.remediation.test_cli_loop import home  # noqa: E402, F401 - a fresh QLRF_HOME shared with the CLI
from tests.remediation.test_vsphere_driver import by_name, make_plan, vcsim  # noqa: E402, F401

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("on_crash", "targets"), [("rollback", slice(0, 3)), ("resume", slice(3, 6))])
def test_a_killed_vsphere_execution_ends_swapped_or_back(vcsim, home, tmp_path, on_crash, targets):  # noqa: F811
    server, si, vc, rows, _keys = vcsim
    chosen = rows[targets]
    uuids = [r["config.instanceUuid"] for r in chosen]
    waves = [{"name": "canary", "canary": True, "instances": uuids[:1]}, {"name": "rest", "instances": uuids[1:]}]
    plan = make_plan(vc, chosen, waves, max_unavailable=1)
    store = TaskStore(audit=AuditLog())
    task = store.propose(plan, "sensor:drift_findings_sensor", {**PENDING, "input": {**PENDING["input"], "fleet_size": 100}})
    store.approve(task.id, task.plan_hash, "alice@example.com", "CAB-12")
    policy = tmp_path / "remediation.yaml"
    policy.write_text(f"journal:\n  on_crash: {on_crash}\n")
    env = cli_env(QLRF_VSPHERE_HOSTS=f"{server.host}:{server.port}", QLRF_VSPHERE_USER=server.user,
                  QLRF_VSPHERE_PASSWORD=server.password, QLRF_VSPHERE_PROTOCOL=server.protocol,
                  QLRF_VSPHERE_INSECURE="1", QLRF_REMEDIATION_POLL_SECONDS="0.05",
                  QLRF_REMEDIATION_POLICY=str(policy))

    killed = execute_and_kill(task.id, env, wave=1)
    assert killed.unfinished, killed.output
    assert store.get(task.id).state == "running"

    again = qlrf("plan", "execute", task.id, env=env)
    final = store.get(task.id)
    vms = by_name(si)
    names = [r["name"] for r in chosen]
    assert not [n for n in vms if n.endswith(NEW_SUFFIX)]  # no clone left half-swapped
    if on_crash == "resume":
        assert final.state == "succeeded", again.stdout + again.stderr
        for row in chosen:
            new = vms[row["name"]]
            old = [v for n, v in vms.items() if n.startswith(row["name"] + "-replaced-")]
            assert new["runtime.powerState"] == "poweredOn" and new["config.instanceUuid"] != row["config.instanceUuid"]
            assert len(old) == 1 and old[0]["config.instanceUuid"] == row["config.instanceUuid"]
    else:
        assert final.state == "rolled_back", again.stdout + again.stderr
        for row in chosen:
            vm = vms[row["name"]]
            assert vm["config.instanceUuid"] == row["config.instanceUuid"] and vm["runtime.powerState"] == "poweredOn"
        assert not [n for n in vms if any(n.startswith(name + "-") for name in names)]  # no clone, no renamed VM
    verify = store.audit.verify()  # what `qlrf audit verify` runs
    assert verify.ok, verify
