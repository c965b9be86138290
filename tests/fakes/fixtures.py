"""Deterministic fixture builders for the Azure and GCP loopback fakes.

The builders return plain JSON-able dicts shaped like the real REST payloads
(Azure Resource Manager Compute, GCE ``compute/v1``); the fakes in
``azure_fake.py`` / ``gcp_fake.py`` serve them unchanged (apart from view
trimming such as ``instanceView``).  The same seed always yields the same
estate, so tests can assert on exact counts and values.

Realistic quirks deliberately reproduced (connectors must cope with them):

Azure
  * ARM ids are case-insensitive and their casing differs between resources:
    a VM's ``osDisk.managedDisk.id`` carries the resource group upper-cased
    while the disk's own ``id`` (and the snapshot's
    ``creationData.sourceResourceId``) carry it as created
    (``mixed_case_ids=True``).
  * ``imageReference`` is either marketplace (``publisher/offer/sku/version``
    plus read-only ``exactVersion``), a gallery image *version* id, a gallery
    image *definition* id (= "latest"), or a managed image id.
  * The golden gallery lives in the first ("shared images") subscription and
    is referenced cross-subscription.
  * Uniform VMSS instances are *not* in ``virtualMachines`` list-all; only
    VMSS Flex members are (with ``properties.virtualMachineScaleSet.id``).
  * Power state exists only in ``properties.instanceView.statuses`` (kept in
    the fixture; the fake strips it unless ``statusOnly=true`` /
    ``$expand=instanceView``).
  * Timestamps carry 7 fractional digits and ``+00:00``.

GCP
  * int64 fields (``id``, ``sizeGb``, ``diskSizeGb`` ...) are JSON strings.
  * ``creationTimestamp`` is RFC 3339 with a Pacific offset (``-08:00``).
  * Resource references are full ``https://www.googleapis.com/compute/v1/...``
    URLs; ``metadata.items[created-by]`` uses the project *number*, not id.
  * Boot disks usually carry ``sourceImage`` (often in a public or central
    image project); some were restored from a snapshot and have
    ``sourceSnapshot`` instead.
  * Label values are lowercase (GCP rejects ``@`` and capitals).
"""

from __future__ import annotations

import base64
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

# A fixed "now" so fixture ages (snapshot staleness, image age) never drift.
REFERENCE_TIME = datetime(2026, 11, 27, 6, 0, 0, tzinfo=UTC)

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _arm_time(dt: datetime) -> str:
    """ARM style: 2026-03-04T10:11:12.1234567+00:00 (7 fractional digits)."""
    dt = dt.astimezone(UTC)
    frac = f"{dt.microsecond:06d}" + str(dt.microsecond % 10)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + frac + "+00:00"


def _gce_time(dt: datetime) -> str:
    """GCE style: 2026-03-04T02:11:12.123-08:00."""
    local = dt.astimezone(UTC) - timedelta(hours=8)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}-08:00"


def _ago(rng: random.Random, min_days: float, max_days: float) -> datetime:
    return REFERENCE_TIME - timedelta(seconds=rng.uniform(min_days * 86400, max_days * 86400))


def _fingerprint(rng: random.Random) -> str:
    return base64.b64encode(rng.getrandbits(64).to_bytes(8, "big")).decode()


def _pick_weighted(rng: random.Random, choices: list[tuple[Any, float]]) -> Any:
    values, weights = zip(*choices, strict=True)
    return rng.choices(values, weights=weights, k=1)[0]


# ---------------------------------------------------------------------------
# Azure
# ---------------------------------------------------------------------------

AZ_LOCATIONS = ("westeurope", "northeurope", "eastus2")
AZ_LOCATION_DISPLAY = {"westeurope": "West Europe", "northeurope": "North Europe", "eastus2": "East US 2"}
AZ_SITES = {"westeurope": ("ams1", "ams2"), "northeurope": ("dub1",), "eastus2": ("iad2",)}
AZ_SHORT = {"westeurope": "weu", "northeurope": "neu", "eastus2": "eus2"}
AZ_SIZES = ("Standard_D2s_v5", "Standard_D4s_v5", "Standard_E4s_v5", "Standard_B2ms", "Standard_F8s_v2")
ENVIRONMENTS = ("prod", "prod", "staging", "dev")
OWNERS = ("team-platform@example.com", "team-payments@example.com", "team-data@example.com")
ROLES = ("web", "api", "db", "batch", "cache")

AZ_POWER_STATES: list[tuple[tuple[str, str], float]] = [
    (("PowerState/running", "VM running"), 0.72),
    (("PowerState/deallocated", "VM deallocated"), 0.16),
    (("PowerState/stopped", "VM stopped"), 0.06),
    (("PowerState/starting", "VM starting"), 0.03),
    (("PowerState/deallocating", "VM deallocating"), 0.03),
]

AZ_MARKETPLACE = (
    (
        {
            "publisher": "Canonical",
            "offer": "0001-com-ubuntu-server-jammy",
            "sku": "22_04-lts-gen2",
            "version": "latest",
            "exactVersion": "22.04.202410020",
        },
        "Linux",
    ),
    (
        {
            "publisher": "Canonical",
            "offer": "ubuntu-24_04-lts",
            "sku": "server",
            "version": "latest",
            "exactVersion": "24.04.202411030",
        },
        "Linux",
    ),
    (
        {
            "publisher": "RedHat",
            "offer": "RHEL",
            "sku": "9-lvm-gen2",
            "version": "9.4.2024081415",
            "exactVersion": "9.4.2024081415",
        },
        "Linux",
    ),
    (
        {
            "publisher": "MicrosoftWindowsServer",
            "offer": "WindowsServer",
            "sku": "2022-datacenter-azure-edition",
            "version": "latest",
            "exactVersion": "20348.2762.241009",
        },
        "Windows",
    ),
)

# golden gallery image definitions: name -> (osType, publisher, offer, sku)
AZ_GALLERY_IMAGES = {
    "rf-ubuntu-2204": ("Linux", "ResilienceFabric", "ubuntu", "22.04-golden"),
    "rf-rhel-9": ("Linux", "ResilienceFabric", "rhel", "9-golden"),
    "rf-win-2022": ("Windows", "ResilienceFabric", "windows-server", "2022-golden"),
}
AZ_GALLERY_VERSIONS = ("1.0.0", "1.1.0", "1.2.0", "1.3.0")


def _az_rg_id(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def _az_id(sub: str, rg: str, rtype: str, name: str) -> str:
    return f"{_az_rg_id(sub, rg)}/providers/Microsoft.Compute/{rtype}/{name}"


def _az_status_pair(code: str, display: str, created: datetime) -> list[dict[str, Any]]:
    return [
        {
            "code": "ProvisioningState/succeeded",
            "level": "Info",
            "displayStatus": "Provisioning succeeded",
            "time": _arm_time(created + timedelta(minutes=3)),
        },
        {"code": code, "level": "Info", "displayStatus": display},
    ]


def _az_os_profile(computer_name: str, os_type: str) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "computerName": computer_name,
        "adminUsername": "rfadmin",
        "secrets": [],
        "allowExtensionOperations": True,
        "requireGuestProvisionSignal": True,
    }
    if os_type == "Windows":
        profile["windowsConfiguration"] = {
            "provisionVMAgent": True,
            "enableAutomaticUpdates": True,
            "patchSettings": {"patchMode": "AutomaticByOS", "assessmentMode": "ImageDefault"},
        }
    else:
        profile["linuxConfiguration"] = {
            "disablePasswordAuthentication": True,
            "provisionVMAgent": True,
            "patchSettings": {"patchMode": "ImageDefault", "assessmentMode": "ImageDefault"},
        }
    return profile


def azure_fixture(
    subscriptions: int | list[str] = 3,
    vms_per_sub: int = 20,
    *,
    seed: int = 42,
    vmss_uniform_per_sub: int = 1,
    vmss_uniform_size: int = 3,
    vmss_flex_members: int = 2,
    snapshot_ratio: float = 0.6,
    mixed_case_ids: bool = True,
    failing_subscriptions: int = 0,
    throttled_subscriptions: dict[int, int] | None = None,
) -> dict[str, Any]:
    """Build an Azure estate.

    Returns ``{"cloud", "tenant_id", "client", "reference_time", "subscriptions": {sub: {...}},
    "faults": {"fail": {...}, "throttle": {...}}}`` where each subscription holds the lists
    ``virtualMachines`` (with ``properties.instanceView``), ``virtualMachineScaleSets``,
    ``virtualMachineScaleSetVMs``, ``images``, ``galleries``, ``galleryImages``,
    ``galleryImageVersions``, ``disks`` and ``snapshots``.

    ``failing_subscriptions`` adds that many extra (empty) subscriptions that the fake answers
    with 403 AuthorizationFailed; ``throttled_subscriptions`` maps a subscription *index* to the
    number of 429s the fake returns before answering.
    """
    rng = random.Random(seed)
    tenant_id = _guid(rng)
    client = {
        "client_id": _guid(rng),
        "client_secret": "rf-fake-secret-" + _guid(rng)[:8],
        "object_id": _guid(rng),
    }
    if isinstance(subscriptions, int):
        sub_ids = [_guid(rng) for _ in range(subscriptions)]
    else:
        sub_ids = list(subscriptions)
    if not sub_ids:
        raise ValueError("need at least one subscription")

    subs: dict[str, dict[str, Any]] = {}
    for sub in sub_ids:
        subs[sub] = {
            k: []
            for k in (
                "virtualMachines",
                "virtualMachineScaleSets",
                "virtualMachineScaleSetVMs",
                "images",
                "galleries",
                "galleryImages",
                "galleryImageVersions",
                "disks",
                "snapshots",
            )
        }

    # --- shared image subscription: golden gallery + source managed images -------------
    img_sub = sub_ids[0]
    img_rg = "rg-images-weu"
    gallery_name = "gal_rf_golden"
    gallery_id = _az_id(img_sub, img_rg, "galleries", gallery_name)
    subs[img_sub]["galleries"].append(
        {
            "id": gallery_id,
            "name": gallery_name,
            "type": "Microsoft.Compute/galleries",
            "location": "westeurope",
            "tags": {"owner": "team-platform@example.com", "purpose": "golden-images"},
            "properties": {
                "description": "Resilience Fabric golden images",
                "identifier": {"uniqueName": f"{img_sub}-{gallery_name.upper()}"},
                "provisioningState": "Succeeded",
            },
        }
    )
    gallery_version_ids: dict[str, list[str]] = {}
    gallery_def_ids: dict[str, str] = {}
    for image_name, (os_type, publisher, offer, sku) in AZ_GALLERY_IMAGES.items():
        def_id = f"{gallery_id}/images/{image_name}"
        gallery_def_ids[image_name] = def_id
        subs[img_sub]["galleryImages"].append(
            {
                "id": def_id,
                "name": image_name,
                "type": "Microsoft.Compute/galleries/images",
                "location": "westeurope",
                "tags": {"owner": "team-platform@example.com"},
                "properties": {
                    "osType": os_type,
                    "osState": "Generalized",
                    "hyperVGeneration": "V2",
                    "architecture": "x64",
                    "identifier": {"publisher": publisher, "offer": offer, "sku": sku},
                    "features": [{"name": "SecurityType", "value": "TrustedLaunchSupported"}],
                    "recommended": {"vCPUs": {"min": 2, "max": 16}, "memory": {"min": 4, "max": 64}},
                    "provisioningState": "Succeeded",
                },
            }
        )
        gallery_version_ids[image_name] = []
        for vi, version in enumerate(AZ_GALLERY_VERSIONS):
            published = REFERENCE_TIME - timedelta(
                days=30 * (len(AZ_GALLERY_VERSIONS) - vi) + rng.randint(0, 5)
            )
            src_image_name = f"img-{image_name}-{version.replace('.', '')}"
            src_image_id = _az_id(img_sub, img_rg, "images", src_image_name)
            subs[img_sub]["images"].append(
                {
                    "id": src_image_id,
                    "name": src_image_name,
                    "type": "Microsoft.Compute/images",
                    "location": "westeurope",
                    "tags": {"golden": image_name, "version": version},
                    "properties": {
                        "sourceVirtualMachine": {
                            "id": _az_id(
                                img_sub, "rg-image-builds", "virtualMachines", f"build-{image_name}-{vi}"
                            )
                        },
                        "storageProfile": {
                            "osDisk": {
                                "osType": os_type,
                                "osState": "Generalized",
                                "caching": "ReadWrite",
                                "storageAccountType": "Standard_LRS",
                                "diskSizeGB": 30,
                                "managedDisk": {
                                    "id": _az_id(
                                        img_sub,
                                        "RG-IMAGE-BUILDS",
                                        "disks",
                                        f"build-{image_name}-{vi}_OsDisk_1",
                                    )
                                },
                            },
                            "dataDisks": [],
                            "zoneResilient": True,
                        },
                        "provisioningState": "Succeeded",
                        "hyperVGeneration": "V2",
                    },
                }
            )
            version_id = f"{def_id}/versions/{version}"
            gallery_version_ids[image_name].append(version_id)
            publishing: dict[str, Any] = {
                "targetRegions": [
                    {
                        "name": AZ_LOCATION_DISPLAY[loc],
                        "regionalReplicaCount": 1,
                        "storageAccountType": "Standard_LRS",
                    }
                    for loc in AZ_LOCATIONS
                ],
                "replicaCount": 1,
                "excludeFromLatest": False,
                "publishedDate": _arm_time(published),
                "storageAccountType": "Standard_LRS",
                "replicationMode": "Full",
            }
            if vi == 0:  # the oldest version is end-of-life
                publishing["endOfLifeDate"] = _arm_time(REFERENCE_TIME - timedelta(days=10))
            subs[img_sub]["galleryImageVersions"].append(
                {
                    "id": version_id,
                    "name": version,
                    "type": "Microsoft.Compute/galleries/images/versions",
                    "location": "westeurope",
                    "tags": {},
                    "properties": {
                        "publishingProfile": publishing,
                        "storageProfile": {
                            "source": {"id": src_image_id},
                            "osDiskImage": {"sizeInGB": 30, "hostCaching": "ReadWrite"},
                        },
                        "safetyProfile": {"allowDeletionOfReplicatedLocations": False},
                        "provisioningState": "Succeeded",
                    },
                }
            )

    def image_reference(sub: str, rg: str, loc: str) -> tuple[dict[str, Any], str]:
        """Pick an imageReference and return it with the OS type."""
        kind = _pick_weighted(
            rng,
            [
                ("marketplace", 0.35),
                ("gallery_version", 0.4),
                ("gallery_latest", 0.1),
                ("managed_image", 0.15),
            ],
        )
        if kind == "marketplace":
            ref, os_type = rng.choice(AZ_MARKETPLACE)
            return dict(ref), os_type
        if kind in ("gallery_version", "gallery_latest"):
            image_name = rng.choice(list(AZ_GALLERY_IMAGES))
            os_type = AZ_GALLERY_IMAGES[image_name][0]
            if kind == "gallery_latest":
                return {"id": gallery_def_ids[image_name]}, os_type
            # weighted towards newer versions, but old/EOL ones exist
            vid = rng.choices(gallery_version_ids[image_name], weights=[1, 2, 3, 6], k=1)[0]
            return {"id": vid}, os_type
        # managed image local to the subscription (create one if needed)
        local = [i for i in subs[sub]["images"] if i["location"] == loc and "golden" not in i["tags"]]
        if not local:
            name = f"img-legacy-{AZ_SHORT[loc]}-{rng.randint(2019, 2023)}"
            created_from = _az_id(sub, rg, "virtualMachines", f"legacy-template-{AZ_SHORT[loc]}")
            local_img = {
                "id": _az_id(sub, rg, "images", name),
                "name": name,
                "type": "Microsoft.Compute/images",
                "location": loc,
                "tags": {"owner": rng.choice(OWNERS)},
                "properties": {
                    "sourceVirtualMachine": {"id": created_from},
                    "storageProfile": {
                        "osDisk": {
                            "osType": "Linux",
                            "osState": "Generalized",
                            "caching": "ReadWrite",
                            "storageAccountType": "Premium_LRS",
                            "diskSizeGB": 64,
                        },
                        "dataDisks": [],
                        "zoneResilient": False,
                    },
                    "provisioningState": "Succeeded",
                    "hyperVGeneration": "V1",
                },
            }
            subs[sub]["images"].append(local_img)
            local = [local_img]
        return {"id": local[0]["id"]}, "Linux"

    def make_disk(
        sub: str,
        rg: str,
        loc: str,
        zones: list[str] | None,
        vm_id: str,
        vm_name: str,
        os_type: str,
        ref: dict[str, Any],
        created: datetime,
        size_gb: int,
    ) -> dict[str, Any]:
        disk_name = f"{vm_name}_OsDisk_1_{uuid.UUID(int=rng.getrandbits(128)).hex}"
        creation: dict[str, Any] = {"createOption": "FromImage"}
        if "publisher" in ref:
            creation["imageReference"] = {
                "id": (
                    f"/Subscriptions/{sub}/Providers/Microsoft.Compute/Locations/{loc}/Publishers/{ref['publisher']}"
                    f"/ArtifactTypes/VMImage/Offers/{ref['offer']}/Skus/{ref['sku']}/Versions/{ref['exactVersion']}"
                )
            }
        elif "/galleries/" in ref["id"]:
            creation["galleryImageReference"] = {"id": ref["id"]}
        else:
            creation["imageReference"] = {"id": ref["id"]}
        disk: dict[str, Any] = {
            "id": _az_id(sub, rg, "disks", disk_name),
            "name": disk_name,
            "type": "Microsoft.Compute/disks",
            "location": loc,
            "tags": {},
            "managedBy": vm_id,
            "sku": {"name": "Premium_LRS", "tier": "Premium"},
            "properties": {
                "osType": os_type,
                "hyperVGeneration": "V2",
                "creationData": creation,
                "diskSizeGB": size_gb,
                "diskIOPSReadWrite": 120,
                "diskMBpsReadWrite": 25,
                "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
                "networkAccessPolicy": "AllowAll",
                "publicNetworkAccess": "Enabled",
                "timeCreated": _arm_time(created),
                "provisioningState": "Succeeded",
                "diskState": "Attached",
                "diskSizeBytes": size_gb * 1024**3,
                "uniqueId": _guid(rng),
                "tier": "P4" if size_gb <= 32 else "P6",
            },
        }
        if zones:
            disk["zones"] = list(zones)
        subs[sub]["disks"].append(disk)
        return disk

    def make_snapshots(sub: str, rg: str, loc: str, disk: dict[str, Any], os_type: str) -> None:
        if rng.random() >= snapshot_ratio:
            return
        for n in range(rng.randint(1, 3)):
            taken = _ago(rng, 0.2 + n * 7, 3 + n * 12)
            name = f"snap-{disk['name'].split('_OsDisk')[0]}-{taken:%Y%m%d%H%M}"
            subs[sub]["snapshots"].append(
                {
                    "id": _az_id(sub, rg, "snapshots", name),
                    "name": name,
                    "type": "Microsoft.Compute/snapshots",
                    "location": loc,
                    "tags": {"created-by": "rf-backup", "source-vm": disk["managedBy"].rsplit("/", 1)[1]},
                    "sku": {"name": "Standard_ZRS", "tier": "Standard"},
                    "properties": {
                        "osType": os_type,
                        "hyperVGeneration": "V2",
                        "creationData": {
                            "createOption": "Copy",
                            "sourceResourceId": disk["id"],
                            "sourceUniqueId": disk["properties"]["uniqueId"],
                        },
                        "diskSizeGB": disk["properties"]["diskSizeGB"],
                        "diskSizeBytes": disk["properties"]["diskSizeBytes"],
                        "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
                        "incremental": True,
                        "networkAccessPolicy": "AllowAll",
                        "publicNetworkAccess": "Enabled",
                        "timeCreated": _arm_time(taken),
                        "provisioningState": "Succeeded",
                        "diskState": "Unattached",
                        "uniqueId": _guid(rng),
                        "completionPercent": 100.0,
                    },
                }
            )

    def disk_ref_id(disk_id: str, rg: str) -> str:
        return (
            disk_id.replace(f"/resourceGroups/{rg}/", f"/resourceGroups/{rg.upper()}/")
            if mixed_case_ids
            else disk_id
        )

    for si, sub in enumerate(sub_ids):
        data = subs[sub]
        rgs = {
            loc: f"rg-{role}-{AZ_SHORT[loc]}"
            for loc, role in zip(AZ_LOCATIONS, ("app", "data", "edge"), strict=True)
        }

        # VMSS Flex (members are ordinary VMs in virtualMachines list-all)
        flex_id = None
        if vmss_flex_members:
            loc = AZ_LOCATIONS[si % len(AZ_LOCATIONS)]
            flex_name = f"vmssflex-api-{AZ_SHORT[loc]}"
            flex_id = _az_id(sub, rgs[loc], "virtualMachineScaleSets", flex_name)
            data["virtualMachineScaleSets"].append(
                {
                    "id": flex_id,
                    "name": flex_name,
                    "type": "Microsoft.Compute/virtualMachineScaleSets",
                    "location": loc,
                    "tags": {"site": AZ_SITES[loc][0], "environment": "prod", "owner": rng.choice(OWNERS)},
                    "zones": ["1", "2", "3"],
                    "properties": {
                        "orchestrationMode": "Flexible",
                        "platformFaultDomainCount": 1,
                        "singlePlacementGroup": False,
                        "uniqueId": _guid(rng),
                        "provisioningState": "Succeeded",
                        "timeCreated": _arm_time(_ago(rng, 60, 400)),
                    },
                }
            )

        for vi in range(vms_per_sub):
            loc = _pick_weighted(
                rng, [(AZ_LOCATIONS[0], 0.5), (AZ_LOCATIONS[1], 0.3), (AZ_LOCATIONS[2], 0.2)]
            )
            rg = rgs[loc]
            site = rng.choice(AZ_SITES[loc])
            role = rng.choice(ROLES)
            env = rng.choice(ENVIRONMENTS)
            in_flex = flex_id is not None and vi < vmss_flex_members
            name = (
                f"{flex_id.rsplit('/', 1)[1]}_{_guid(rng)[:8]}"
                if in_flex and flex_id
                else f"vm-{site}-{role}-{si:02d}{vi:03d}"
            )
            if in_flex:
                loc = next(v["location"] for v in data["virtualMachineScaleSets"] if v["id"] == flex_id)
                rg = rgs[loc]
            vm_id = _az_id(sub, rg, "virtualMachines", name)
            zones = [rng.choice("123")] if (in_flex or rng.random() < 0.7) else None
            ref, os_type = image_reference(sub, rg, loc)
            created = _ago(rng, 2, 900)
            size_gb = 30 if os_type == "Linux" else 127
            disk = make_disk(sub, rg, loc, zones, vm_id, name, os_type, ref, created, size_gb)
            make_snapshots(sub, rg, loc, disk, os_type)
            (code, display) = _pick_weighted(rng, AZ_POWER_STATES)
            props: dict[str, Any] = {
                "vmId": _guid(rng),
                "hardwareProfile": {"vmSize": rng.choice(AZ_SIZES)},
                "storageProfile": {
                    "imageReference": ref,
                    "osDisk": {
                        "osType": os_type,
                        "name": disk["name"],
                        "createOption": "FromImage",
                        "caching": "ReadWrite",
                        "deleteOption": "Delete",
                        "diskSizeGB": size_gb,
                        "managedDisk": {
                            "storageAccountType": "Premium_LRS",
                            "id": disk_ref_id(disk["id"], rg),
                        },
                    },
                    "dataDisks": [],
                    "diskControllerType": "SCSI",
                },
                "osProfile": _az_os_profile(name.replace("_", "")[:15], os_type),
                "networkProfile": {
                    "networkInterfaces": [
                        {
                            "id": f"{_az_rg_id(sub, rg)}/providers/Microsoft.Network/networkInterfaces/{name}-nic",
                            "properties": {"deleteOption": "Delete"},
                        }
                    ]
                },
                "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
                "securityProfile": {
                    "uefiSettings": {"secureBootEnabled": True, "vTpmEnabled": True},
                    "securityType": "TrustedLaunch",
                },
                "provisioningState": "Succeeded",
                "timeCreated": _arm_time(created),
                "instanceView": {"statuses": _az_status_pair(code, display, created)},
            }
            if in_flex and flex_id:
                props["virtualMachineScaleSet"] = {"id": flex_id}
                props["platformFaultDomain"] = 0
            vm: dict[str, Any] = {
                "id": vm_id,
                "name": name,
                "type": "Microsoft.Compute/virtualMachines",
                "location": loc,
                "tags": {"site": site, "environment": env, "owner": rng.choice(OWNERS), "role": role},
                "properties": props,
            }
            if in_flex and flex_id:
                vm["managedBy"] = flex_id
            if zones:
                vm["zones"] = zones
            data["virtualMachines"].append(vm)

        # VMSS Uniform (instances only under .../virtualMachineScaleSets/{name}/virtualMachines)
        for ui in range(vmss_uniform_per_sub):
            loc = AZ_LOCATIONS[(si + ui) % len(AZ_LOCATIONS)]
            rg = rgs[loc]
            vmss_name = f"vmss-web-{AZ_SHORT[loc]}-{ui}"
            vmss_id = _az_id(sub, rg, "virtualMachineScaleSets", vmss_name)
            ref, os_type = image_reference(sub, rg, loc)
            size = rng.choice(AZ_SIZES[:3])
            created = _ago(rng, 30, 500)
            data["virtualMachineScaleSets"].append(
                {
                    "id": vmss_id,
                    "name": vmss_name,
                    "type": "Microsoft.Compute/virtualMachineScaleSets",
                    "location": loc,
                    "tags": {"site": AZ_SITES[loc][0], "environment": "prod", "owner": rng.choice(OWNERS)},
                    "sku": {"name": size, "tier": "Standard", "capacity": vmss_uniform_size},
                    "zones": ["1", "2", "3"],
                    "properties": {
                        "orchestrationMode": "Uniform",
                        "singlePlacementGroup": False,
                        "overprovision": False,
                        "upgradePolicy": {"mode": "Manual"},
                        "platformFaultDomainCount": 1,
                        "uniqueId": _guid(rng),
                        "provisioningState": "Succeeded",
                        "timeCreated": _arm_time(created),
                        "virtualMachineProfile": {
                            "osProfile": {
                                "computerNamePrefix": vmss_name[:9],
                                "adminUsername": "rfadmin",
                                "linuxConfiguration": {
                                    "disablePasswordAuthentication": True,
                                    "provisionVMAgent": True,
                                },
                            },
                            "storageProfile": {
                                "imageReference": dict(ref),
                                "osDisk": {
                                    "osType": os_type,
                                    "createOption": "FromImage",
                                    "caching": "ReadWrite",
                                    "diskSizeGB": 30,
                                    "managedDisk": {"storageAccountType": "Premium_LRS"},
                                },
                            },
                            "timeCreated": _arm_time(created),
                        },
                    },
                }
            )
            for inst in range(vmss_uniform_size):
                inst_name = f"{vmss_name}_{inst}"
                inst_id = f"{vmss_id}/virtualMachines/{inst}"
                zone = str(inst % 3 + 1)
                disk = make_disk(sub, rg, loc, [zone], inst_id, inst_name, os_type, ref, created, 30)
                make_snapshots(sub, rg, loc, disk, os_type)
                (code, display) = _pick_weighted(rng, AZ_POWER_STATES)
                inst_ref = dict(ref)
                data["virtualMachineScaleSetVMs"].append(
                    {
                        "id": inst_id,
                        "name": inst_name,
                        "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
                        "location": loc,
                        "tags": dict(data["virtualMachineScaleSets"][-1]["tags"]),
                        "instanceId": str(inst),
                        "zones": [zone],
                        "sku": {"name": size, "tier": "Standard"},
                        "properties": {
                            "latestModelApplied": inst != 0,
                            "vmId": _guid(rng),
                            "hardwareProfile": {"vmSize": size},
                            "storageProfile": {
                                "imageReference": inst_ref,
                                "osDisk": {
                                    "osType": os_type,
                                    "name": disk["name"],
                                    "createOption": "FromImage",
                                    "caching": "ReadWrite",
                                    "diskSizeGB": 30,
                                    "managedDisk": {
                                        "storageAccountType": "Premium_LRS",
                                        "id": disk_ref_id(disk["id"], rg),
                                    },
                                },
                                "dataDisks": [],
                            },
                            "osProfile": _az_os_profile(f"{vmss_name[:9]}{inst:06d}", os_type),
                            "networkProfile": {
                                "networkInterfaces": [{"id": f"{inst_id}/networkInterfaces/{vmss_name}-nic"}]
                            },
                            "provisioningState": "Succeeded",
                            "timeCreated": _arm_time(created + timedelta(minutes=inst)),
                            "instanceView": {"statuses": _az_status_pair(code, display, created)},
                        },
                    }
                )

    faults: dict[str, Any] = {"fail": {}, "throttle": {}}
    for _ in range(failing_subscriptions):
        fsub = _guid(rng)
        subs[fsub] = {k: [] for k in subs[sub_ids[0]]}
        faults["fail"][fsub] = "AuthorizationFailed"
        sub_ids.append(fsub)
    for idx, times in (throttled_subscriptions or {}).items():
        faults["throttle"][sub_ids[idx]] = times

    return {
        "cloud": "azure",
        "seed": seed,
        "reference_time": REFERENCE_TIME.isoformat(),
        "tenant_id": tenant_id,
        "client": client,
        "image_subscription": img_sub,
        "subscriptions": subs,
        "faults": faults,
    }


# ---------------------------------------------------------------------------
# GCP
# ---------------------------------------------------------------------------

GCE = "https://www.googleapis.com/compute/v1"
GCP_ZONES = (
    "europe-west4-a",
    "europe-west4-b",
    "europe-west4-c",
    "us-central1-a",
    "us-central1-b",
    "us-central1-f",
    "us-east1-b",
)
GCP_SITES = {"europe-west4": "ams3", "us-central1": "cbf1", "us-east1": "chs1"}
GCP_MACHINE_TYPES = ("e2-standard-2", "e2-standard-4", "n2-standard-4", "n2-highmem-8", "c3-standard-4")
GCP_STATUSES: list[tuple[str, float]] = [
    ("RUNNING", 0.74),
    ("TERMINATED", 0.16),
    ("STOPPING", 0.03),
    ("SUSPENDED", 0.03),
    ("PROVISIONING", 0.02),
    ("STAGING", 0.02),
]
GCP_OWNERS = ("team-platform", "team-payments", "team-data")
GOLDEN_IMAGE_PROJECT = "rf-golden-images"

# image project -> [(name, family, deprecated_state or None, days_old, license)]
GCP_IMAGES: dict[str, list[tuple[str, str, str | None, int, str]]] = {
    "debian-cloud": [
        ("debian-12-bookworm-v20240910", "debian-12", "DEPRECATED", 78, "debian-12-bookworm"),
        ("debian-12-bookworm-v20241112", "debian-12", None, 15, "debian-12-bookworm"),
        ("debian-11-bullseye-v20241112", "debian-11", None, 15, "debian-11-bullseye"),
    ],
    "ubuntu-os-cloud": [
        ("ubuntu-2204-jammy-v20241115", "ubuntu-2204-lts", None, 12, "ubuntu-2204-lts"),
    ],
    GOLDEN_IMAGE_PROJECT: [
        ("rf-debian-12-golden-v20240801", "rf-debian-12-golden", "OBSOLETE", 118, "debian-12-bookworm"),
        ("rf-debian-12-golden-v20241001", "rf-debian-12-golden", "DEPRECATED", 57, "debian-12-bookworm"),
        ("rf-debian-12-golden-v20241101", "rf-debian-12-golden", None, 26, "debian-12-bookworm"),
        ("rf-ubuntu-2204-golden-v20241101", "rf-ubuntu-2204-golden", None, 26, "ubuntu-2204-lts"),
    ],
}


def _gce_id(rng: random.Random) -> str:
    """uint64 resource id as a JSON string; about 8% exceed the signed int64 range, like real ids."""
    return str(rng.randrange(10**18, 10**19))


def _region(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


def gcp_fixture(
    projects: int | list[str] = 3,
    instances_per_project: int = 20,
    *,
    seed: int = 42,
    zonal_mig_size: int = 3,
    regional_mig_size: int = 2,
    snapshot_ratio: float = 0.6,
    restored_ratio: float = 0.07,
    failing_projects: int = 0,
    throttled_projects: dict[int, int] | None = None,
) -> dict[str, Any]:
    """Build a GCP estate.

    Returns ``{"cloud", "zones", "workload_projects", "image_projects", "projects": {pid: {...}},
    "faults"}``; every project holds ``number`` and the lists ``instances``, ``disks``, ``images``,
    ``instanceGroupManagers`` and ``snapshots`` (image projects only have ``images``).
    """
    rng = random.Random(seed + 1)
    if isinstance(projects, int):
        envs = ("prod", "prod", "staging", "dev")
        project_ids = [f"rf-{envs[i % len(envs)]}-{rng.randint(1000, 9999)}-{i:02d}" for i in range(projects)]
    else:
        project_ids = list(projects)

    def empty_project() -> dict[str, Any]:
        return {
            "number": str(rng.randrange(10**11, 10**12)),
            "instances": [],
            "disks": [],
            "images": [],
            "instanceGroupManagers": [],
            "snapshots": [],
        }

    all_projects: dict[str, dict[str, Any]] = {}

    # --- image projects ----------------------------------------------------------------
    image_urls: dict[str, list[dict[str, Any]]] = {}
    for iproj, images in GCP_IMAGES.items():
        pdata = all_projects.setdefault(iproj, empty_project())
        for name, family, deprecated, days_old, lic in images:
            license_url = f"{GCE}/projects/{'debian-cloud' if 'debian' in lic else 'ubuntu-os-cloud'}/global/licenses/{lic}"
            image: dict[str, Any] = {
                "kind": "compute#image",
                "id": _gce_id(rng),
                "creationTimestamp": _gce_time(
                    REFERENCE_TIME - timedelta(days=days_old, hours=rng.randint(0, 20))
                ),
                "name": name,
                "description": f"{family} built on {name.rsplit('-v', 1)[1]}",
                "sourceType": "RAW",
                "status": "READY",
                "archiveSizeBytes": str(rng.randint(300, 1500) * 1024**2),
                "diskSizeGb": "10",
                "licenses": [license_url],
                "family": family,
                "selfLink": f"{GCE}/projects/{iproj}/global/images/{name}",
                "labelFingerprint": "42WmSpB8rSM=",
                "guestOsFeatures": [
                    {"type": "UEFI_COMPATIBLE"},
                    {"type": "VIRTIO_SCSI_MULTIQUEUE"},
                    {"type": "GVNIC"},
                    {"type": "SEV_CAPABLE"},
                ],
                "licenseCodes": [str(rng.randrange(10**18, 2**63))],  # int64, unlike the uint64 ids
                "storageLocations": ["eu", "us"],
                "architecture": "X86_64",
            }
            if deprecated:
                newest = [i for i in images if i[1] == family and i[2] is None][0][0]
                image["deprecated"] = {
                    "state": deprecated,
                    "replacement": f"{GCE}/projects/{iproj}/global/images/{newest}",
                }
            if iproj == GOLDEN_IMAGE_PROJECT:
                src_disk = f"{GCE}/projects/{iproj}/zones/europe-west4-a/disks/build-{name}"
                image.update(
                    {
                        "sourceDisk": src_disk,
                        "sourceDiskId": _gce_id(rng),
                        "labels": {"golden": "true", "owner": "team-platform"},
                        "labelFingerprint": _fingerprint(rng),
                    }
                )
            pdata["images"].append(image)
            image_urls.setdefault(iproj, []).append(image)

    def pick_image() -> dict[str, Any]:
        iproj = _pick_weighted(
            rng, [(GOLDEN_IMAGE_PROJECT, 0.55), ("debian-cloud", 0.3), ("ubuntu-os-cloud", 0.15)]
        )
        candidates = image_urls[iproj]
        weights = [1 if "deprecated" in i else 4 for i in candidates]
        return rng.choices(candidates, weights=weights, k=1)[0]

    # --- workload projects -------------------------------------------------------------
    for pi, pid in enumerate(project_ids):
        pdata = all_projects.setdefault(pid, empty_project())
        num = pdata["number"]
        # custom project-local image (some instances use it)
        local_img_name = f"{pid[:20]}-app-base-v2023"
        local_image = {
            "kind": "compute#image",
            "id": _gce_id(rng),
            "creationTimestamp": _gce_time(REFERENCE_TIME - timedelta(days=400 + pi)),
            "name": local_img_name,
            "description": "hand-built app image",
            "sourceType": "RAW",
            "status": "READY",
            "archiveSizeBytes": str(900 * 1024**2),
            "diskSizeGb": "20",
            "licenses": [f"{GCE}/projects/debian-cloud/global/licenses/debian-11-bullseye"],
            "family": "app-base",
            "selfLink": f"{GCE}/projects/{pid}/global/images/{local_img_name}",
            "labelFingerprint": "42WmSpB8rSM=",
            "storageLocations": ["eu"],
            "architecture": "X86_64",
            "sourceDisk": f"{GCE}/projects/{pid}/zones/europe-west4-a/disks/app-base-builder",
            "sourceDiskId": _gce_id(rng),
        }
        pdata["images"].append(local_image)

        # MIGs: one zonal, one regional
        zonal_zone = GCP_ZONES[pi % 3]
        zmig_name = f"mig-web-{zonal_zone}"
        region = "us-central1"
        rmig_name = f"mig-api-{region}"
        template = f"{GCE}/projects/{pid}/global/instanceTemplates/tpl-web-v{3 + pi}"
        rtemplate = f"{GCE}/projects/{pid}/regions/{region}/instanceTemplates/tpl-api-v7"
        migs = [
            ("zones", zonal_zone, zmig_name, template, zonal_mig_size),
            ("regions", region, rmig_name, rtemplate, regional_mig_size),
        ]
        mig_members: list[tuple[str, str, str, str]] = []  # (scope kind, scope, mig name, template)
        for kind, scope, mig_name, tpl, size in migs:
            scope_field = "zone" if kind == "zones" else "region"
            igm: dict[str, Any] = {
                "kind": "compute#instanceGroupManager",
                "id": _gce_id(rng),
                "creationTimestamp": _gce_time(_ago(rng, 100, 300)),
                "name": mig_name,
                scope_field: f"{GCE}/projects/{pid}/{kind}/{scope}",
                "instanceTemplate": tpl,
                "versions": [{"instanceTemplate": tpl, "targetSize": {"calculated": size}}],
                "instanceGroup": f"{GCE}/projects/{pid}/{kind}/{scope}/instanceGroups/{mig_name}",
                "baseInstanceName": mig_name.replace("mig-", ""),
                "fingerprint": _fingerprint(rng),
                "currentActions": {
                    "none": size,
                    "creating": 0,
                    "creatingWithoutRetries": 0,
                    "verifying": 0,
                    "recreating": 0,
                    "deleting": 0,
                    "abandoning": 0,
                    "restarting": 0,
                    "refreshing": 0,
                    "suspending": 0,
                    "resuming": 0,
                    "stopping": 0,
                    "starting": 0,
                },
                "status": {
                    "isStable": True,
                    "versionTarget": {"isReached": True},
                    "stateful": {"hasStatefulConfig": False, "perInstanceConfigs": {"allEffective": True}},
                },
                "targetSize": size,
                "selfLink": f"{GCE}/projects/{pid}/{kind}/{scope}/instanceGroupManagers/{mig_name}",
                "updatePolicy": {
                    "type": "OPPORTUNISTIC",
                    "minimalAction": "REPLACE",
                    "maxSurge": {"fixed": 1, "calculated": 1},
                    "maxUnavailable": {"fixed": 1, "calculated": 1},
                    "replacementMethod": "SUBSTITUTE",
                },
                "instanceLifecyclePolicy": {"forceUpdateOnRepair": "NO", "defaultActionOnFailure": "REPAIR"},
                "listManagedInstancesResults": "PAGELESS",
                "satisfiesPzi": True,
                "satisfiesPzs": False,
            }
            if kind == "regions":
                igm["distributionPolicy"] = {
                    "zones": [
                        {"zone": f"{GCE}/projects/{pid}/zones/{z}"} for z in GCP_ZONES if _region(z) == scope
                    ],
                    "targetShape": "EVEN",
                }
            pdata["instanceGroupManagers"].append(igm)
            mig_members.extend((kind, scope, mig_name, tpl) for _ in range(size))

        n_plain = max(0, instances_per_project - len(mig_members))
        specs: list[tuple[str | None, str | None, str | None, str | None]] = [
            (k, s, m, t) for k, s, m, t in mig_members
        ] + [(None, None, None, None)] * n_plain
        specs = specs[:instances_per_project] if instances_per_project < len(mig_members) else specs
        for ii, (mkind, mscope, mig_name, tpl) in enumerate(specs):
            if mkind == "zones" and mscope:
                zone = mscope
            elif mkind == "regions" and mscope:
                zone = rng.choice([z for z in GCP_ZONES if _region(z) == mscope])
            else:
                zone = _pick_weighted(rng, [(z, 2.0 if z.startswith("europe") else 1.0) for z in GCP_ZONES])
            region = _region(zone)
            site = GCP_SITES[region]
            env = pid.split("-")[1]
            role = "web" if mkind == "zones" else "api" if mkind == "regions" else rng.choice(ROLES)
            name = (
                f"{mig_name.replace('mig-', '')}-{uuid.UUID(int=rng.getrandbits(128)).hex[:4]}"
                if mig_name
                else f"{site}-{role}-{pi:02d}{ii:03d}"
            )
            status = _pick_weighted(rng, GCP_STATUSES)
            created = _ago(rng, 1, 700)
            inst_url = f"{GCE}/projects/{pid}/zones/{zone}/instances/{name}"
            disk_url = f"{GCE}/projects/{pid}/zones/{zone}/disks/{name}"
            disk_id = _gce_id(rng)
            size_gb = rng.choice((10, 20, 50))
            disk: dict[str, Any] = {
                "kind": "compute#disk",
                "id": disk_id,
                "creationTimestamp": _gce_time(created),
                "name": name,
                "sizeGb": str(size_gb),
                "zone": f"{GCE}/projects/{pid}/zones/{zone}",
                "status": "READY",
                "selfLink": disk_url,
                "type": f"{GCE}/projects/{pid}/zones/{zone}/diskTypes/pd-balanced",
                "users": [inst_url],
                "labelFingerprint": "42WmSpB8rSM=",
                "lastAttachTimestamp": _gce_time(created + timedelta(seconds=20)),
                "physicalBlockSizeBytes": "4096",
                "architecture": "X86_64",
                "satisfiesPzi": True,
                "guestOsFeatures": [
                    {"type": "UEFI_COMPATIBLE"},
                    {"type": "VIRTIO_SCSI_MULTIQUEUE"},
                    {"type": "GVNIC"},
                ],
            }
            restored = mig_name is None and rng.random() < restored_ratio
            if restored:
                src_snap = f"restore-{name}-{created:%Y%m%d}"
                disk["sourceSnapshot"] = f"{GCE}/projects/{pid}/global/snapshots/{src_snap}"
                disk["sourceSnapshotId"] = _gce_id(rng)
                disk["licenses"] = [f"{GCE}/projects/debian-cloud/global/licenses/debian-12-bookworm"]
                image = None
            else:
                image = local_image if (mig_name is None and rng.random() < 0.1) else pick_image()
                disk["sourceImage"] = image["selfLink"]
                disk["sourceImageId"] = image["id"]
                disk["licenses"] = list(image["licenses"])
            pdata["disks"].append(disk)

            # snapshots of the boot disk
            if rng.random() < snapshot_ratio:
                for n in range(rng.randint(1, 3)):
                    taken = _ago(rng, 0.2 + n * 7, 3 + n * 12)
                    auto = rng.random() < 0.5
                    snap_name = (
                        f"{name}-{zone}-{taken:%Y%m%d%H%M%S}-{uuid.UUID(int=rng.getrandbits(128)).hex[:8]}"
                        if auto
                        else f"snap-{name}-{taken:%Y%m%d}"
                    )
                    snap: dict[str, Any] = {
                        "kind": "compute#snapshot",
                        "id": _gce_id(rng),
                        "creationTimestamp": _gce_time(taken),
                        "name": snap_name[:63],
                        "status": "READY",
                        "sourceDisk": disk_url,
                        "sourceDiskId": disk_id,
                        "diskSizeGb": str(size_gb),
                        "storageBytes": str(rng.randint(1, size_gb) * 1024**3),
                        "storageBytesStatus": "UP_TO_DATE",
                        "licenses": list(disk["licenses"]),
                        "selfLink": f"{GCE}/projects/{pid}/global/snapshots/{snap_name[:63]}",
                        "labelFingerprint": "42WmSpB8rSM=",
                        "storageLocations": [region.split("-")[0]],
                        "downloadBytes": str(rng.randint(10**6, 10**9)),
                        "creationSizeBytes": str(rng.randint(10**8, 10**10)),
                        "architecture": "X86_64",
                        "autoCreated": auto,
                        "snapshotType": "STANDARD",
                        "satisfiesPzi": True,
                    }
                    if auto:
                        policy = (
                            f"{GCE}/projects/{pid}/regions/{region}/resourcePolicies/daily-boot-snapshots"
                        )
                        snap["sourceSnapshotSchedulePolicy"] = policy
                        snap["sourceSnapshotSchedulePolicyId"] = _gce_id(rng)
                    else:
                        snap["labels"] = {"created-by": "rf-backup"}
                    pdata["snapshots"].append(snap)

            metadata_items: list[dict[str, str]] = []
            if mig_name:
                metadata_items.append(
                    {
                        "key": "instance-template",
                        "value": tpl.replace(f"{GCE}/projects/{pid}", f"projects/{num}") if tpl else "",
                    }
                )
                metadata_items.append(
                    {
                        "key": "created-by",
                        "value": f"projects/{num}/{mkind}/{mscope}/instanceGroupManagers/{mig_name}",
                    }
                )
            metadata_items.append({"key": "enable-oslogin", "value": "TRUE"})
            labels = {"site": site, "environment": env, "owner": rng.choice(GCP_OWNERS), "role": role}
            instance: dict[str, Any] = {
                "kind": "compute#instance",
                "id": _gce_id(rng),
                "creationTimestamp": _gce_time(created),
                "name": name,
                "description": "",
                "tags": {"items": ["ssh", role], "fingerprint": _fingerprint(rng)},
                "machineType": f"{GCE}/projects/{pid}/zones/{zone}/machineTypes/{rng.choice(GCP_MACHINE_TYPES)}",
                "status": status,
                "zone": f"{GCE}/projects/{pid}/zones/{zone}",
                "canIpForward": False,
                "networkInterfaces": [
                    {
                        "kind": "compute#networkInterface",
                        "network": f"{GCE}/projects/{pid}/global/networks/default",
                        "subnetwork": f"{GCE}/projects/{pid}/regions/{region}/subnetworks/default",
                        "networkIP": f"10.{pi}.{ii // 250}.{ii % 250 + 2}",
                        "name": "nic0",
                        "fingerprint": _fingerprint(rng),
                        "stackType": "IPV4_ONLY",
                    }
                ],
                "disks": [
                    {
                        "kind": "compute#attachedDisk",
                        "type": "PERSISTENT",
                        "mode": "READ_WRITE",
                        "source": disk_url,
                        "deviceName": "persistent-disk-0",
                        "index": 0,
                        "boot": True,
                        "autoDelete": True,
                        "licenses": list(disk["licenses"]),
                        "interface": "SCSI",
                        "guestOsFeatures": list(disk["guestOsFeatures"]),
                        "diskSizeGb": str(size_gb),
                        "architecture": "X86_64",
                    }
                ],
                "metadata": {
                    "kind": "compute#metadata",
                    "fingerprint": _fingerprint(rng),
                    "items": metadata_items,
                },
                "serviceAccounts": [
                    {
                        "email": f"{num}-compute@developer.gserviceaccount.com",
                        "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
                    }
                ],
                "selfLink": inst_url,
                "scheduling": {
                    "onHostMaintenance": "MIGRATE",
                    "automaticRestart": True,
                    "preemptible": False,
                    "provisioningModel": "STANDARD",
                },
                "cpuPlatform": "Intel Cascade Lake" if status == "RUNNING" else "Unknown CPU Platform",
                "labels": labels,
                "labelFingerprint": _fingerprint(rng),
                "startRestricted": False,
                "deletionProtection": False,
                "shieldedInstanceConfig": {
                    "enableSecureBoot": False,
                    "enableVtpm": True,
                    "enableIntegrityMonitoring": True,
                },
                "shieldedInstanceIntegrityPolicy": {"updateAutoLearnPolicy": True},
                "fingerprint": _fingerprint(rng),
                "lastStartTimestamp": _gce_time(created + timedelta(seconds=40)),
                "satisfiesPzi": True,
            }
            if status == "TERMINATED":
                instance["lastStopTimestamp"] = _gce_time(_ago(rng, 0.5, 30))
            # a data disk on some plain instances (boot flag false)
            if mig_name is None and rng.random() < 0.25:
                ddisk_name = f"{name}-data"
                ddisk_url = f"{GCE}/projects/{pid}/zones/{zone}/disks/{ddisk_name}"
                pdata["disks"].append(
                    {
                        "kind": "compute#disk",
                        "id": _gce_id(rng),
                        "creationTimestamp": _gce_time(created),
                        "name": ddisk_name,
                        "sizeGb": "200",
                        "zone": f"{GCE}/projects/{pid}/zones/{zone}",
                        "status": "READY",
                        "selfLink": ddisk_url,
                        "type": f"{GCE}/projects/{pid}/zones/{zone}/diskTypes/pd-ssd",
                        "users": [inst_url],
                        "labelFingerprint": "42WmSpB8rSM=",
                        "physicalBlockSizeBytes": "4096",
                        "lastAttachTimestamp": _gce_time(created + timedelta(seconds=25)),
                        "satisfiesPzi": True,
                    }
                )
                instance["disks"].append(
                    {
                        "kind": "compute#attachedDisk",
                        "type": "PERSISTENT",
                        "mode": "READ_WRITE",
                        "source": ddisk_url,
                        "deviceName": "data",
                        "index": 1,
                        "boot": False,
                        "autoDelete": False,
                        "interface": "SCSI",
                        "diskSizeGb": "200",
                    }
                )
            pdata["instances"].append(instance)

    faults: dict[str, Any] = {"fail": {}, "throttle": {}}
    workload = list(project_ids)
    for fi in range(failing_projects):
        fpid = f"rf-locked-{rng.randint(1000, 9999)}-{fi:02d}"
        all_projects[fpid] = empty_project()
        faults["fail"][fpid] = "permission"
        workload.append(fpid)
    for idx, times in (throttled_projects or {}).items():
        faults["throttle"][project_ids[idx]] = times

    return {
        "cloud": "gcp",
        "seed": seed,
        "reference_time": REFERENCE_TIME.isoformat(),
        "zones": list(GCP_ZONES),
        "workload_projects": workload,
        "image_projects": list(GCP_IMAGES),
        "projects": all_projects,
        "faults": faults,
    }
