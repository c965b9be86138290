"""The golden image registry as people browse it: families, channels, revocations, ancestry, usage, SBOM.

Usage (which VMs run a version) is summed from the drift_breakdown page table; the list of VMs for one version
is a limited drill-down.
"""

from __future__ import annotations

import pandas as pd

from qlrf.views.base import DRILL_LIMIT, Scope, counted, scan


def registry(wh, scope: Scope) -> pd.DataFrame:
    """One row per family x version: channel, release date, parent, revocation (platform copies folded)."""
    return scan(wh, "golden_images", scope, """
        SELECT family, any_value(os) AS os, version, any_value(version_rank) AS version_rank, any_value(channel) AS channel,
               CAST(min(released_at) AS DATE) AS released, any_value(parent) AS parent, bool_or(revoked) AS revoked,
               any_value(revoked_reason) AS revoked_reason, string_agg(DISTINCT platform, ', ' ORDER BY platform) AS platforms
        FROM t GROUP BY family, version ORDER BY family, version_rank DESC""", daily=True)


def channels(reg: pd.DataFrame) -> pd.DataFrame:
    """Family x channel: how many versions each channel holds and the newest one not revoked."""
    live = reg[~reg["revoked"]]
    newest = live.sort_values("version_rank").groupby(["family", "channel"])["version"].last()
    count = reg.groupby(["family", "channel"])["version"].count()
    return pd.DataFrame({"versions": count, "newest": newest}).reset_index()


def ancestry_dot(reg: pd.DataFrame, family: str) -> str:
    """A Graphviz digraph of one family's versions (parent -> child); revoked versions drawn red.

    Labels are quoted with every backslash and quote escaped: registry text is data, not DOT."""
    def q(value: object) -> str:
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    rows = reg[reg["family"] == family]
    lines = ["digraph ancestry {", "rankdir=LR;", 'node [shape=box, style=rounded, fontname="sans-serif"];']
    for _, r in rows.iterrows():
        colour = ', color=red, fontcolor=red' if r["revoked"] else ""
        label = q(r["version"])[:-1] + "\\n" + q(r["channel"])[1:]
        lines.append(f"{q(r['version'])} [label={label}{colour}];")
        if r["parent"]:
            lines.append(f"{q(r['parent'])} -> {q(r['version'])};")
    lines.append("}")
    return "\n".join(lines)


def usage(wh, scope: Scope) -> pd.DataFrame:
    """VMs per family x version in scope."""
    where, params = scope.where()
    return scan(wh, "drift_breakdown", scope, f"""
        SELECT coalesce(family, '(unknown image)') AS family, coalesce(image_version, '') AS version, status,
               sum(vms)::BIGINT AS vms FROM t WHERE {where} GROUP BY ALL ORDER BY family, version""", params)


def vms_on(wh, scope: Scope, family: str, version: str, limit: int = DRILL_LIMIT) -> tuple[pd.DataFrame, int]:
    where, params = scope.where()
    where += " AND family = $family AND image_version = $version"
    frame = scan(wh, "vm_drift", scope, f"""
        SELECT asset_id, platform, site, environment, owner, image_ref, status, versions_behind, {counted(where)} AS total
        FROM t WHERE {where} ORDER BY site, environment, asset_id LIMIT $limit""",
        {**params, "family": family, "version": version, "limit": limit})
    total = int(frame["total"].iloc[0]) if len(frame) else 0
    return frame.drop(columns="total"), total


def sbom_search(wh, scope: Scope, text: str, limit: int = DRILL_LIMIT) -> tuple[pd.DataFrame, int, int]:
    """Packages whose name or purl contains `text` (case-insensitive): rows (at most `limit`), matches, images."""
    frame = scan(wh, "image_packages", scope, """
        SELECT family, version, package, package_version, license, purl,
               count(*) OVER () AS total, count(DISTINCT family || '/' || version) OVER () AS images
        FROM t WHERE contains(lower(package), lower($q)) OR contains(lower(coalesce(purl, '')), lower($q))
        ORDER BY package, family, version LIMIT $limit""", {"q": text, "limit": limit}, daily=True)
    if frame.empty:
        return frame.drop(columns=["total", "images"]), 0, 0
    return frame.drop(columns=["total", "images"]), int(frame["total"].iloc[0]), int(frame["images"].iloc[0])
