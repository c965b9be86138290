"""Each platform's CLI JSON becomes contract rows; bad records are named and the rest survive."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from qlrf.inventory.contract import inventory_table, snapshot_table
from qlrf.inventory.normalize import aws, azure, gcp, normalise_files, vsphere
from qlrf.inventory.tags import TagMapping

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
M = TagMapping()


def _ec2(iid="i-0abc", az="eu-west-1b", state="running", tags=None, **extra):
    inst = {
        "InstanceId": iid,
        "ImageId": "ami-123",
        "InstanceType": "m6i.large",
        "LaunchTime": "2026-10-01T08:30:00+00:00",
        "Placement": {"AvailabilityZone": az},
        "State": {"Code": 16, "Name": state},
        "Tags": tags if tags is not None else [{"Key": "Name", "Value": "web-1"}, {"Key": "Owner", "Value": "sre"},
                                             {"Key": "env", "Value": "Production"}, {"Key": "site", "Value": "dub1"}],
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeId": f"vol-{iid}"}}],
    }
    inst.update(extra)
    return inst


def test_aws_row_fields():
    doc = {"Reservations": [{"OwnerId": "123456789012", "Instances": [_ec2(PublicIpAddress="1.2.3.4")]}]}
    out = aws.normalise([("f.json", doc)], mapping=M, discovered_at=NOW)
    assert not out.errors
    row = out.vms[0]
    assert row["asset_id"] == "i-0abc" and row["account"] == "123456789012"
    assert (row["region"], row["zone"], row["name"], row["state"]) == ("eu-west-1", "eu-west-1b", "web-1", "running")
    assert (row["site"], row["environment"], row["owner"]) == ("dub1", "prod", "sre")
    assert row["launched_at"] == datetime(2026, 10, 1, 8, 30, tzinfo=UTC)
    assert row["public_ip"] is True
    inventory_table(out.vms)  # conforms to the contract


@pytest.mark.parametrize(
    ("az", "region"), [("us-east-1a", "us-east-1"), ("us-west-2-lax-1a", "us-west-2"), ("ap-southeast-2c", "ap-southeast-2")]
)
def test_aws_region_from_zone(az, region):
    assert aws.region_from_az(az) == region


@pytest.mark.parametrize(("state", "expected"), [("stopping", "stopped"), ("shutting-down", "terminated"), ("pending", "other")])
def test_aws_states(state, expected):
    doc = {"Reservations": [{"OwnerId": "1", "Instances": [_ec2(state=state)]}]}
    assert aws.normalise([("f", doc)], mapping=M, discovered_at=NOW).vms[0]["state"] == expected


def test_aws_name_falls_back_to_id_and_group_from_asg_tag():
    tags = [{"Key": "aws:autoscaling:groupName", "Value": "web-asg"}]
    doc = {"Reservations": [{"OwnerId": "1", "Instances": [_ec2(tags=tags)]}]}
    row = aws.normalise([("f", doc)], mapping=M, discovered_at=NOW).vms[0]
    assert row["name"] == "i-0abc" and row["group"] == "web-asg" and row["owner"] is None


def test_aws_bad_record_is_named_and_others_survive():
    bad = _ec2(iid="i-bad")
    del bad["Placement"]
    doc = {"Reservations": [{"OwnerId": "1", "Instances": [_ec2(iid="i-1"), bad, _ec2(iid="i-3")]}]}
    out = aws.normalise([("export.json", doc)], mapping=M, discovered_at=NOW)
    assert [r["asset_id"] for r in out.vms] == ["i-1", "i-3"]
    assert len(out.errors) == 1
    assert str(out.errors[0]).startswith("export.json record #1 (i-bad): ")
    assert "Placement" in str(out.errors[0])


def test_aws_snapshots_link_through_volumes():
    doc = {"Reservations": [{"OwnerId": "1", "Instances": [_ec2(iid="i-1")]}]}
    snaps = {"Snapshots": [
        {"SnapshotId": "snap-1", "VolumeId": "vol-i-1", "StartTime": "2026-11-27T01:00:00.000Z", "State": "completed"},
        {"SnapshotId": "snap-2", "VolumeId": "vol-other", "StartTime": "2026-11-27T01:00:00.000Z", "State": "completed"},
        {"SnapshotId": "snap-3", "VolumeId": "vol-i-1", "StartTime": "2026-11-27T02:00:00.000Z", "State": "pending"},
    ]}
    out = aws.normalise([("i", doc), ("s", snaps)], mapping=M, discovered_at=NOW)
    assert [(s["asset_id"], s["snapshot_id"]) for s in out.snapshots] == [("i-1", "snap-1")]
    snapshot_table(out.snapshots)


def _azure_vm(**over):
    vm = {
        "id": "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1",
        "name": "vm1", "type": "Microsoft.Compute/virtualMachines", "location": "westeurope", "zones": ["2"],
        "tags": {"owner": "web", "environment": "dev", "site": "ams1"}, "vmId": "1111-2222",
        "hardwareProfile": {"vmSize": "Standard_D2s_v5"},
        "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu", "sku": "22_04", "version": "latest", "exactVersion": "22.04.1"},
                           "osDisk": {"managedDisk": {"id": "/subscriptions/sub-1/.../disks/vm1-os"}}},
        "powerState": "VM deallocated", "timeCreated": "2026-09-01T10:00:00.1234567+00:00", "publicIps": "",
    }
    vm.update(over)
    return vm


def test_azure_cli_shape():
    out = azure.normalise([("vms.json", [_azure_vm()])], mapping=M, discovered_at=NOW)
    row = out.vms[0]
    assert (row["asset_id"], row["account"], row["region"], row["zone"]) == ("1111-2222", "sub-1", "westeurope", "westeurope-2")
    assert row["state"] == "stopped" and row["image_ref"] == "Canonical:ubuntu:22_04:22.04.1"
    assert row["launched_at"].year == 2026 and row["public_ip"] is False


def test_azure_rest_shape_with_instance_view_and_gallery_image():
    rest = {
        "id": "/subscriptions/sub-2/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm2",
        "name": "vm2", "type": "Microsoft.Compute/virtualMachines", "location": "eastus", "tags": {},
        "properties": {
            "vmId": "3333", "hardwareProfile": {"vmSize": "Standard_E4s_v5"},
            "storageProfile": {"imageReference": {"id": "/subscriptions/g/resourceGroups/r/providers/Microsoft.Compute/galleries/golden/images/ubuntu/versions/1.2.3"}},
            "instanceView": {"statuses": [{"code": "ProvisioningState/succeeded"}, {"code": "PowerState/running"}]},
            "virtualMachineScaleSet": {"id": "/subscriptions/sub-2/.../virtualMachineScaleSets/web-vmss"},
        },
    }
    row = azure.normalise([("page", {"value": [rest]})], mapping=M, discovered_at=NOW).vms[0]
    assert row["state"] == "running" and row["image_ref"].endswith("/versions/1.2.3")
    assert row["group"] == "web-vmss" and row["account"] == "sub-2"


def test_azure_bad_record_named():
    bad = _azure_vm(vmId=None, name="broken")
    out = azure.normalise([("vms.json", [_azure_vm(), bad])], mapping=M, discovered_at=NOW)
    assert len(out.vms) == 1 and "vms.json record #1" in str(out.errors[0]) and "vmId" in str(out.errors[0])


def test_gcp_follows_boot_disk_to_source_image():
    api = "https://www.googleapis.com/compute/v1/projects/p1/zones/europe-west1-b"
    inst = {
        "kind": "compute#instance", "id": "123456789", "name": "gce-1", "zone": api, "status": "TERMINATED",
        "machineType": f"{api}/machineTypes/e2-standard-2", "creationTimestamp": "2026-10-01T01:02:03.000-07:00",
        "labels": {"env": "stg"}, "selfLink": f"{api}/instances/gce-1",
        "disks": [{"boot": True, "source": f"{api}/disks/gce-1"}],
        "networkInterfaces": [{"accessConfigs": [{"natIP": "34.1.1.1"}]}],
        "metadata": {"items": [{"key": "created-by", "value": "projects/p1/zones/europe-west1-b/instanceGroupManagers/mig-a"}]},
    }
    disk = {"kind": "compute#disk", "selfLink": f"{api}/disks/gce-1", "sourceImage": "https://www.googleapis.com/compute/v1/projects/g/global/images/img-1"}
    out = gcp.normalise([("i", [inst]), ("d", [disk])], mapping=M, discovered_at=NOW)
    row = out.vms[0]
    assert (row["account"], row["region"], row["zone"], row["state"]) == ("p1", "europe-west1", "europe-west1-b", "stopped")
    assert row["image_ref"].endswith("/images/img-1") and row["group"] == "mig-a" and row["environment"] == "staging"
    assert row["launched_at"] == datetime(2026, 10, 1, 8, 2, 3, tzinfo=UTC) and row["public_ip"] is True


def test_vsphere_govc_shape_with_camelcase_keys_and_snapshots():
    vm = {
        "config": {"name": "db-1", "instanceUuid": "5001-aaaa", "template": False, "createDate": "2026-01-01T00:00:00Z",
                   "hardware": {"numCPU": 4, "memoryMB": 8192}},
        "runtime": {"powerState": "poweredOn"},
        "availableField": [{"key": 1, "name": "template"}, {"key": 2, "name": "owner"}],
        "customValue": [{"key": 1, "value": "tmpl-rhel-9-3.0.0"}, {"key": 2, "value": "dba"}],
        "snapshot": {"rootSnapshotList": [{"name": "a", "createTime": "2026-11-25T00:00:00Z", "snapshot": {"value": "s-1"},
                                           "childSnapshotList": [{"name": "b", "createTime": "2026-11-26T00:00:00Z", "snapshot": {"value": "s-2"}}]}]},
    }
    template = {"config": {"name": "tmpl", "instanceUuid": "x", "template": True}}
    out = vsphere.normalise([("vm.json", {"virtualMachines": [vm, template]})], mapping=M, discovered_at=NOW, account="vc1", region="dc1")
    assert len(out.vms) == 1
    row = out.vms[0]
    assert (row["account"], row["region"], row["image_ref"], row["owner"], row["instance_type"]) == ("vc1", "dc1", "tmpl-rhel-9-3.0.0", "dba", "4vCPU-8192MB")
    assert sorted(s["snapshot_id"] for s in out.snapshots) == ["s-1", "s-2"]


def test_vsphere_without_datacenter_is_a_clear_error():
    vm = {"Config": {"Name": "x", "InstanceUuid": "u"}}
    out = vsphere.normalise([("vm.json", {"VirtualMachines": [vm]})], mapping=M, discovered_at=NOW)
    assert "--region DATACENTER" in str(out.errors[0])


def test_unreadable_file_and_wrong_document(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"Instances": []}))
    out = normalise_files("aws", [bad, wrong])
    assert len(out.errors) == 2
    assert str(bad) in str(out.errors[0]) and "cannot read JSON" in str(out.errors[0])
    assert "describe-instances" in str(out.errors[1])


def test_tag_mapping_from_file(tmp_path):
    cfg = tmp_path / "map.yaml"
    cfg.write_text("keys:\n  owner: [cost-center]\nenvironment_aliases:\n  live: prod\n")
    mapping = TagMapping.from_file(cfg)
    assert mapping.derive({"cost-center": "cc42", "env": "live", "site": "x"}) == ("x", "prod", "cc42")
    cfg.write_text("keys:\n  colour: [c]\n")
    with pytest.raises(ValueError, match="unknown tag attribute 'colour'"):
        TagMapping.from_file(cfg)
