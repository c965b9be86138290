"""AWS execution of compliance plans (``apply_tags``, ``detach_public_ip``) through boto3.

Wraps the platform's :class:`~qlrf.remediation.drivers.aws.AwsDriver` for its clients and its call
recorder (so a dry run records these calls too and makes none), and implements the executor's
Driver protocol, so a compliance plan runs under the same gate, waves, health gate, rollback and
audit as a re-imaging plan:

- ``prepare``: reads every target (DescribeInstances; DescribeAddresses for its Elastic IP) and keeps
  what rollback needs. apply_tags refuses a target that meanwhile got one of the planned keys with
  another value (a person's value is never overwritten); detach_public_ip refuses a public IP that is
  not an Elastic IP (an auto-assigned address cannot be given back by a rollback: a person decides).
- ``run_wave``: ``create_tags`` with the planned tags / ``disassociate_address`` of the Elastic IP.
- ``health``: every changed target is ``running`` and carries the planned tags / has no public IP.
- ``rollback``: ``delete_tags`` of exactly the keys the plan added / ``associate_address`` of the
  same allocation to the same network interface.
- ``checkpoint`` / ``restore``: what prepare read and which targets a wave was about to change, as
  JSON, so a run killed mid-wave is rolled back or resumed from the execution journal like a
  re-imaging plan. A target is marked changed *before* its call is sent: the journal's checkpoint
  before a call then covers it, and undoing a change that never landed is harmless (deleting tags
  that are absent, re-associating an address that is still associated).
"""

from __future__ import annotations

from typing import Any

from qlrf.remediation.drivers import DriverError
from qlrf.remediation.executor import HealthReport
from qlrf.remediation.plans import PatchPlan


class AwsComplianceDriver:
    """One compliance plan's AWS targets; see the module docstring."""

    def __init__(self, base: Any):
        self.base = base  # an AwsDriver: clients + recorder (dry runs)
        self.state: dict[str, dict[str, Any]] = {}  # asset id -> what prepare read
        self.changed: list[str] = []

    def checkpoint(self) -> dict[str, Any]:
        base = self.base.checkpoint() if hasattr(self.base, "checkpoint") else None
        return {"state": self.state, "changed": list(self.changed), "base": base}

    def restore(self, state: dict[str, Any]) -> None:
        self.state = {k: dict(v) for k, v in state["state"].items()}
        self.changed = list(state["changed"])
        if state.get("base") is not None and hasattr(self.base, "restore"):
            self.base.restore(state["base"])

    def _ec2(self, asset_id: str) -> Any:
        return self.base.client("ec2", self.state[asset_id]["region"])

    def _describe(self, region: str, asset_id: str) -> dict:
        ec2 = self.base.client("ec2", region)
        reservations = ec2.describe_instances(InstanceIds=[asset_id])["Reservations"]
        if not reservations or not reservations[0]["Instances"]:
            raise DriverError(f"instance {asset_id} ({region}) not found")
        return reservations[0]["Instances"][0]

    def prepare(self, plan: PatchPlan) -> dict[str, Any]:
        change = plan.spec.compliance
        if change is None:
            raise DriverError(f"plan {plan.metadata.id} is not a compliance plan")
        wanted = {t.asset_id: t.tags for t in change.tags}
        for target in plan.spec.targets.instances:
            inst = self._describe(target.region, target.asset_id)
            tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
            entry: dict[str, Any] = {"region": target.region, "tags": tags}
            if change.type == "apply_tags":
                clash = {k: tags[k] for k, v in wanted[target.asset_id].items() if k in tags and tags[k] != v}
                if clash:
                    raise DriverError(f"instance {target.asset_id}: tag(s) {sorted(clash)} now hold other values: "
                                      "not overwriting a person's value (re-plan)")
                entry["added"] = sorted(k for k in wanted[target.asset_id] if k not in tags)
            else:
                entry.update(self._address(target.region, target.asset_id, inst))
            self.state[target.asset_id] = entry
        return {"targets": len(self.state), "type": change.type}

    def _address(self, region: str, asset_id: str, inst: dict) -> dict[str, Any]:
        public = inst.get("PublicIpAddress")
        if not public:
            return {"public_ip": None}
        found = self.base.client("ec2", region).describe_addresses(Filters=[{"Name": "public-ip", "Values": [public]}])
        addresses = found.get("Addresses", [])
        if not addresses or not addresses[0].get("AssociationId"):
            raise DriverError(f"instance {asset_id}: public IP {public} is not an Elastic IP: an auto-assigned address "
                              "cannot be restored by a rollback, a person must remove it")
        a = addresses[0]
        return {"public_ip": public, "allocation_id": a.get("AllocationId"), "association_id": a["AssociationId"],
                "network_interface_id": a.get("NetworkInterfaceId")}

    def run_wave(self, plan: PatchPlan, index: int) -> dict[str, Any]:
        change = plan.spec.compliance
        assert change is not None
        wanted = {t.asset_id: t.tags for t in change.tags}
        done = []
        for asset_id in plan.spec.waves[index].instances:
            st = self.state[asset_id]
            ec2 = self._ec2(asset_id)
            if asset_id not in self.changed:  # before the call: see the module docstring
                self.changed.append(asset_id)
            if change.type == "apply_tags":
                tags = [{"Key": k, "Value": v} for k, v in sorted(wanted[asset_id].items())]
                self.base._send("ec2", "CreateTags", asset_id, {"Resources": [asset_id], "Tags": tags},
                                lambda ec2=ec2, asset_id=asset_id, tags=tags: ec2.create_tags(Resources=[asset_id], Tags=tags))
            elif st.get("association_id"):
                assoc = st["association_id"]
                self.base._send("ec2", "DisassociateAddress", asset_id, {"AssociationId": assoc},
                                lambda ec2=ec2, assoc=assoc: ec2.disassociate_address(AssociationId=assoc))
            done.append(asset_id)
        return {"changed": done}

    def health(self, plan: PatchPlan, index: int) -> HealthReport:
        change = plan.spec.compliance
        assert change is not None
        wanted = {t.asset_id: t.tags for t in change.tags}
        ids = [a for w in plan.spec.waves[: index + 1] for a in w.instances]
        problems: dict[str, str] = {}
        for asset_id in ids:
            inst = self._describe(self.state[asset_id]["region"], asset_id)
            tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
            if inst["State"]["Name"] != "running":
                problems[asset_id] = f"state {inst['State']['Name']}"
            elif change.type == "apply_tags" and any(tags.get(k) != v for k, v in wanted[asset_id].items()):
                problems[asset_id] = "planned tags missing"
            elif change.type == "detach_public_ip" and inst.get("PublicIpAddress"):
                problems[asset_id] = f"still has public IP {inst['PublicIpAddress']}"
        return HealthReport(not problems, len(ids), len(ids) - len(problems), {"problems": problems})

    def rollback(self, plan: PatchPlan, waves_done: list[int]) -> dict[str, Any]:
        change = plan.spec.compliance
        assert change is not None
        restored = []
        for asset_id in [a for a in self.changed if a in self.state]:
            st, ec2 = self.state[asset_id], self._ec2(asset_id)
            if change.type == "apply_tags" and st.get("added"):
                keys = [{"Key": k} for k in st["added"]]
                self.base._send("ec2", "DeleteTags", asset_id, {"Resources": [asset_id], "Tags": keys},
                                lambda ec2=ec2, asset_id=asset_id, keys=keys: ec2.delete_tags(Resources=[asset_id], Tags=keys))
            elif change.type == "detach_public_ip" and st.get("allocation_id"):
                params = {"AllocationId": st["allocation_id"], "NetworkInterfaceId": st["network_interface_id"]}
                self.base._send("ec2", "AssociateAddress", asset_id, params,
                                lambda ec2=ec2, params=params: ec2.associate_address(**params))
            restored.append(asset_id)
        return {"restored": restored}


def compliance_driver(plan: PatchPlan, platform_driver: Any) -> Any:
    """The compliance driver for the plan's platform, around its platform driver.

    AWS here; Azure, GCP and vSphere (custom attributes) in :mod:`.cloud_compliance` (apply_tags)."""
    if plan.metadata.platform == "aws":
        return AwsComplianceDriver(platform_driver)
    if plan.metadata.platform in ("azure", "gcp", "vsphere"):
        from qlrf.remediation.drivers.cloud_compliance import tag_driver

        return tag_driver(plan.metadata.platform, platform_driver, plan.spec.compliance.type)
    raise ValueError(f"no compliance driver for {plan.metadata.platform} yet (AWS, Azure, GCP, vSphere): plan "
                     f"{plan.metadata.id} can be approved, not executed")


__all__ = ["AwsComplianceDriver", "compliance_driver"]
