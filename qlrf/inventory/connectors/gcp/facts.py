"""REST-shaped dicts from compute_v1 messages, aggregated-list scanning (unreachable zones), and the
image and MIG fact rows, as pure functions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from qlrf.inventory.connectors.common import (
    image_fact_row,
    scaling_group_row,
)
from qlrf.inventory.normalize import gcp as normalize_gcp
from qlrf.inventory.normalize.common import last_segment, parse_time

_UNREACHABLE = {"UNREACHABLE"}


def rest_dict(message: Any, kind: str | None = None) -> dict:
    """A compute_v1 proto message as the REST JSON dict (camelCase names, 64-bit ints as strings)."""
    data = type(message).to_dict(message, preserving_proto_field_name=False, use_integers_for_enums=False)
    if kind:
        data.setdefault("kind", kind)
    return data


def _path_tail(link: str) -> str:
    """'zones/z/instanceGroupManagers/m' from a MIG URL or a created-by value (project id or number)."""
    path = normalize_gcp.resource_path(link)
    parts = path.split("/")
    return "/".join(parts[2:]) if len(parts) > 2 and parts[0] == "projects" else path


def scan_aggregated(
    pages: Any, field_name: str, kind: str, project: str
) -> tuple[list[dict], dict[str, str], int]:
    """(items as REST dicts, {scope: reason} of zones/regions GCE could not reach, page count) of an
    aggregated list. Scopes with nothing on a page carry a NO_RESULTS_ON_PAGE warning: not a failure."""
    items: list[dict] = []
    unreachable: dict[str, str] = {}
    count = 0
    for page in pages:
        count += 1
        for scope, scoped in page.items.items():
            items.extend(rest_dict(m, kind) for m in getattr(scoped, field_name))
            if "warning" in scoped and scoped.warning.code in _UNREACHABLE:
                unreachable[scope] = f"{scoped.warning.code}: {scoped.warning.message}"
        for scope in page.unreachables:
            unreachable.setdefault(scope.removeprefix(f"projects/{project}/"), "UNREACHABLE")
    return items, unreachable, count


def image_fact(
    image: dict | None,
    image_id: str,
    discovered_at: datetime,
    *,
    found: bool | None = True,
    error: str | None = None,
) -> dict:
    """One image as a fact row; keys shared with the AWS / Azure connectors' image facts plus GCP's own."""
    image = image or {}
    project = normalize_gcp.resource_path(image_id).split("/")[1] if image_id.count("/") >= 2 else None
    deprecated = image.get("deprecated") or {}
    return image_fact_row(
        image_id=image.get("selfLink") or image_id,
        image_type="gce_image",
        account=project,
        region=None,
        found=found,
        name=image.get("name") or last_segment(image_id),
        description=image.get("description"),
        owner_id=project,
        created_at=parse_time(image.get("creationTimestamp"), "creationTimestamp"),
        deprecated_at=parse_time(
            deprecated.get("deprecated") or deprecated.get("obsolete") or deprecated.get("deleted"),
            "deprecated",
        ),
        state=image.get("status"),
        tags={str(k): str(v) for k, v in (image.get("labels") or {}).items()},
        discovered_at=discovered_at,
        family=image.get("family"),
        deprecation_state=deprecated.get("state"),  # DEPRECATED | OBSOLETE | DELETED | None (active)
        replacement=deprecated.get("replacement"),
        error=error,
    )


def scaling_group_rows(
    project: str, migs: list[dict], instances: list[dict], discovered_at: datetime
) -> list[dict]:
    """One row per MIG: target size, template, members (instance ids via `created-by`, which names the
    project by number, so the match is on the path after projects/<x>/), members on another template."""
    by_mig: dict[str, list[dict]] = {}
    for inst in instances:
        for item in (inst.get("metadata") or {}).get("items") or []:
            if item.get("key") == "created-by" and item.get("value"):
                by_mig.setdefault(_path_tail(str(item["value"])), []).append(inst)
    rows = []
    for mig in migs:
        members = by_mig.get(_path_tail(str(mig.get("selfLink", ""))), [])
        template = mig.get("instanceTemplate")
        zone = last_segment(mig.get("zone"))
        on_other = 0
        for inst in members:
            meta = {i.get("key"): i.get("value") for i in (inst.get("metadata") or {}).get("items") or []}
            if (
                template
                and meta.get("instance-template")
                and last_segment(meta["instance-template"]) != last_segment(template)
            ):
                on_other += 1
        rows.append(
            scaling_group_row(
                account=project,
                region=last_segment(mig.get("region"))
                or (normalize_gcp.region_from_zone(zone) if zone else None),
                zone=zone,
                group_name=mig.get("name"),
                group_id=mig.get("selfLink"),
                desired_capacity=int(mig["targetSize"]) if mig.get("targetSize") is not None else None,
                instance_template=template,
                version_templates=[v.get("instanceTemplate") for v in mig.get("versions") or []],
                members=(str(i["id"]) for i in members if i.get("id")),
                members_on_other_template=on_other if template else None,
                member_count=len(members),  # an instance without an id is still a member
                discovered_at=discovered_at,
            )
        )
    return rows
