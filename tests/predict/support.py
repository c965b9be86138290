"""A small scored AWS day (the AI tool tests' estate) with instance types, for the predict tests."""

from __future__ import annotations

from tests.ai.support import openssl_packages, scored_aws_day
from tests.ai.test_tools import AS_OF, DAY, REGISTRY, VMS

# i-0002 runs the revoked image (openssl 3.0.2, below CVE-2026-31337's 3.0.5) and has a public IP;
# i-0004 has a type the price table does not know.
TYPES = {"i-0001": "m6i.large", "i-0002": "m6i.large", "i-0003": "t3.medium", "i-0004": "x9.mystery"}


def predict_day(wh) -> None:
    vms = [{**vm, "instance_type": TYPES[vm["asset_id"]], "public_ip": vm["asset_id"] == "i-0002",
            "group": "web-asg" if vm["asset_id"] in ("i-0001", "i-0002") else None} for vm in VMS]
    scored_aws_day(wh, DAY, AS_OF, REGISTRY, vms)
    openssl_packages(wh, DAY)


__all__ = ["AS_OF", "DAY", "TYPES", "predict_day"]
