"""Seed a loopback AWS (moto) with a small protected estate for trying a DR drill, as the README shows.

    python scripts/dr_demo_seed.py [--vms 3] [--region ap-southeast-2]

Needs AWS_ENDPOINT_URL pointing at a moto server (never a real account: it refuses otherwise).
Creates VMs tagged site=syd1, environment=staging, tier=web and one snapshot of each root volume
(the restore point a drill restores from). Discovery (`qlrf run --platform aws` with
QLRF_SOURCE_AWS=live) then puts them in the inventory a drill plan's scope is resolved against.
"""

from __future__ import annotations

import argparse
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=3)
    parser.add_argument("--region", default="ap-southeast-2")
    args = parser.parse_args()
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if not endpoint.startswith(("http://127.0.0.1", "http://localhost")):
        print("error: set AWS_ENDPOINT_URL to a loopback moto server (e.g. http://127.0.0.1:5000)", file=sys.stderr)
        return 2
    import boto3

    ec2 = boto3.client("ec2", region_name=args.region, endpoint_url=endpoint)
    image = ec2.register_image(Name="demo-base", RootDeviceName="/dev/sda1", VirtualizationType="hvm",
                               BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}}])["ImageId"]
    tags = [{"Key": "site", "Value": "syd1"}, {"Key": "environment", "Value": "staging"}, {"Key": "tier", "Value": "web"}]
    out = ec2.run_instances(ImageId=image, MinCount=args.vms, MaxCount=args.vms, InstanceType="t3.small",
                            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
    ids = [i["InstanceId"] for i in out["Instances"]]
    for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
        for inst in r["Instances"]:
            volume = inst["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
            snap = ec2.create_snapshot(VolumeId=volume, Description="nightly")["SnapshotId"]
            print(f"{inst['InstanceId']} in {args.region}: root volume {volume}, restore point {snap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
