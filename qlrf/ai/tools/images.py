"""Golden-image tools: a family's versions in the registry in force, and which images and VMs an SBOM query hits."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from qlrf import sql
from qlrf.ai.tools.context import ToolContext, ToolInputError, day_of, day_view
from qlrf.baselines.sbom import PackageQuery, affected_images
from qlrf.scoring.stages import BASELINE_MAX_AGE_DAYS
from qlrf.warehouse import PartitionMissing

_MODEL = ConfigDict(extra="forbid", strict=True)


class ImageQuery(BaseModel):
    model_config = _MODEL
    family: str = Field(description="golden image family, e.g. ubuntu-22")
    day: date | None = Field(None, description="the registry in force on this day; default: the newest")


class SbomQuery(BaseModel):
    model_config = _MODEL
    package: str = Field(description="PACKAGE or PACKAGE@RANGE, e.g. openssl@<3.0.8 or openssl@>=3.0,<3.0.8")
    day: date | None = Field(None, description="partition day; default: the newest materialised")
    limit: int = Field(50, ge=1, le=500, description="VM rows to return; vms_affected counts all of them")


_VERSIONS = """
SELECT version, any_value(channel) AS channel, any_value(released_at) AS released_at,
       bool_or(revoked) AS revoked, any_value(revoked_reason) AS revoked_reason, any_value(parent) AS parent,
       list(DISTINCT platform ORDER BY platform) AS platforms, any_value(version_rank) AS version_rank
FROM registry WHERE family = $family GROUP BY version ORDER BY version_rank
"""

_LEVELS = {"dev": 0, "staging": 1, "prod": 2}


def get_golden_image(ctx: ToolContext, q: ImageQuery) -> dict:
    asked = day_of(ctx, "golden_images", q.day)
    in_force = ctx.warehouse.latest_on_or_before("golden_images", asked, BASELINE_MAX_AGE_DAYS)
    if in_force is None:
        raise PartitionMissing(f"golden_images: no partition in the {BASELINE_MAX_AGE_DAYS} days up to {asked}")
    with sql.session() as con:
        sql.relation(con, "registry", ctx.warehouse.source("golden_images", in_force))
        versions = sql.table(con, _VERSIONS, {"family": q.family}).to_pylist()
    if not versions:
        raise LookupError(f"no golden image family {q.family!r} in the golden_images partition {in_force}")
    live = [v for v in versions if not v["revoked"]]
    channels = {
        ch: next((v["version"] for v in reversed(live) if _LEVELS.get(v["channel"], -1) >= level), None)
        for ch, level in _LEVELS.items()
    }
    return {"rows": versions, "channels": channels,
            "revocations": [{"version": v["version"], "reason": v["revoked_reason"]} for v in versions if v["revoked"]],
            "facts": {"table": "golden_images", "day": asked, "partition": in_force}}


# Counted and cut in SQL, like query_assets: a common package can sit on most of a million VMs, and
# turning every match into Python rows (then JSON) only for the ToolBox to keep 50 took over a minute.
_JOIN = "FROM t d JOIN hits h ON h.family = d.family AND h.version = d.image_version"
_VMS = f"""
SELECT d.asset_id, d.platform, d.account, d.site, d.environment, d.family, d.image_version, h.package_version, d.status
{_JOIN} ORDER BY d.asset_id, d.platform LIMIT $limit
"""
_COUNT = f"SELECT count(*) {_JOIN}"  # apart from the rows: a window count would materialise every match


def sbom_query(ctx: ToolContext, q: SbomQuery) -> dict:
    try:
        query = PackageQuery.parse(q.package)
    except ValueError as exc:
        raise ToolInputError(str(exc)) from exc
    day = day_of(ctx, "image_packages", q.day)
    images = affected_images(ctx.warehouse.read("image_packages", day), query)
    facts = {"tables": ["image_packages", "vm_drift"], "day": day}
    if not images:
        return {"images": [], "rows": [], "vms_affected": 0, "facts": facts}
    with sql.session() as con:
        day_view(con, ctx, "vm_drift", date.fromisoformat(day))
        sql.relation(con, "hits", pa.Table.from_pylist(images))
        vms = sql.table(con, _VMS, {"limit": q.limit}).to_pylist()
        affected = sql.one(con, _COUNT)[0]
    return {"images": images, "rows": vms, "vms_affected": affected, "facts": facts}
