"""SBOMs of golden images: which VMs run an image whose SBOM contains a given package?

Each golden-image version points at an SPDX 2.3 JSON document (`sbom:` in its contract). We flatten
them into one table of (family, version, package, package_version, purl) per day, so "where does
openssl < 3.0.8 run?" is a join of that table with the day's drift rows (VM -> family + version).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from qlrf.baselines.versions import version_key
from qlrf.inventory.contract import PLATFORMS

PACKAGES_SCHEMA = pa.schema(
    [("family", pa.string()), ("version", pa.string()), ("package", pa.string()), ("package_version", pa.string()),
     ("purl", pa.string()), ("license", pa.string())]
)


def packages_from_spdx(doc: dict, source: str) -> list[dict]:
    if not isinstance(doc, dict) or not str(doc.get("spdxVersion", "")).startswith("SPDX-"):
        raise ValueError(f"{source}: not an SPDX JSON document (no spdxVersion)")
    out = []
    for pkg in doc.get("packages") or []:
        purl = next((r.get("referenceLocator") for r in pkg.get("externalRefs") or [] if r.get("referenceType") == "purl"), None)
        out.append({"package": pkg.get("name"), "package_version": pkg.get("versionInfo"), "purl": purl,
                    "license": pkg.get("licenseConcluded")})
    return out


def read_pinned(path: Path, sha256: str | None) -> bytes:
    """The bytes of an SBOM, refused (ValueError naming the file) unless they hash to the signed pin.

    Hashing the very bytes that are parsed means a file swapped after the contract was verified
    is still caught."""
    content = Path(path).read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    if digest != sha256:
        raise ValueError(f"{path}: does not match its signed sbom_sha256 (sha256 {digest[:12]}..., contract says {str(sha256)[:12]}...)")
    return content


def image_packages(contracts_dir: Path, families) -> tuple[pa.Table, list[str]]:
    """All packages of every version's SBOM; returns (table, problems) so a missing SBOM is reported, not fatal.
    An SBOM that does not match its signed hash is a problem too, and none of its packages are indexed."""
    rows, problems = [], []
    for fam in families:
        for ver in fam.versions:
            if not ver.sbom:
                problems.append(f"{fam.family} {ver.version}: no SBOM in the contract")
                continue
            path = Path(contracts_dir) / ver.sbom
            try:
                pkgs = packages_from_spdx(json.loads(read_pinned(path, ver.sbom_sha256)), str(path))
            except (OSError, ValueError) as exc:
                problems.append(f"{fam.family} {ver.version}: {exc}")
                continue
            rows += [{"family": fam.family, "version": ver.version, **p} for p in pkgs]
    return pa.Table.from_pylist(rows, schema=PACKAGES_SCHEMA), problems


OPERATORS: tuple[str, ...] = ("<", "<=", ">", ">=", "==", "=", "!=")
# A version starts with a letter or digit and holds no operator characters: `~3.0`, `^3.0`, `3.0.*`
# and `~=3.0` are other tools' range syntax, and read as exact versions they silently matched nothing.
_CLAUSE = re.compile(r"^\s*(<=|>=|==|!=|<|>|=)?\s*([0-9A-Za-z][0-9A-Za-z.+_:-]*)\s*$")


@dataclass(frozen=True)
class PackageQuery:
    """`openssl`, `openssl@3.0.7`, `openssl@<3.0.8`, `openssl@>=3.0,<3.0.8`."""

    name: str
    clauses: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> PackageQuery:
        name, _, spec = text.partition("@")
        if not name:
            raise ValueError(f"{text!r}: expected PACKAGE or PACKAGE@RANGE")
        clauses = []
        for part in filter(None, spec.split(",")):
            match = _CLAUSE.match(part)
            if not match:
                raise ValueError(
                    f"{text!r}: cannot read version clause {part!r}; supported operators: {' '.join(OPERATORS)}"
                    " (join clauses with commas, e.g. openssl@>=3.0,<3.0.8)"
                )
            clauses.append((match.group(1) or "==", match.group(2)))
        return cls(name, tuple(clauses))

    def matches(self, package: str, version: str | None) -> bool:
        if package != self.name:
            return False
        if not self.clauses:
            return True
        if version is None:
            return False
        have = version_key(version)
        ops = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
               "==": lambda a, b: a == b, "=": lambda a, b: a == b, "!=": lambda a, b: a != b}
        return all(ops[op](have, version_key(want)) for op, want in self.clauses)


def affected_images(packages: pa.Table, query: PackageQuery) -> list[dict]:
    """(family, version, package_version) of every image version whose SBOM matches."""
    return [
        {"family": r["family"], "version": r["version"], "package_version": r["package_version"]}
        for r in packages.to_pylist()
        if query.matches(r["package"], r["package_version"])
    ]


# --- sample SBOMs for the generated estate -----------------------------------------------------

_BASE = {"openssl": (3, 0, 2), "glibc": (2, 35, 0), "openssh": (8, 9, 1), "curl": (7, 81, 0), "zlib": (1, 2, 11)}


def sample_spdx(family: str, version: str, index: int) -> dict:
    """A small, plausible SPDX 2.3 document: package versions advance with each image version."""
    packages = []
    for name, (major, minor, patch) in _BASE.items():
        pv = f"{major}.{minor}.{patch + index}"
        packages.append({
            "SPDXID": f"SPDXRef-Package-{name}", "name": name, "versionInfo": pv, "licenseConcluded": "NOASSERTION",
            "downloadLocation": "NOASSERTION",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": f"pkg:generic/{name}@{pv}"}],
        })
    return {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{family}-{version}", "documentNamespace": f"https://golden.example/spdx/{family}/{version}",
        "creationInfo": {"created": "2026-01-01T00:00:00Z", "creators": ["Tool: qlrf-sample"]},
        "packages": packages,
    }


def write_sample_sboms(contracts_dir: Path, versions_by_family: dict[str, list[str]]) -> None:
    for family, versions in versions_by_family.items():
        for index, version in enumerate(versions):
            path = Path(contracts_dir) / "sbom" / f"{family}-{version}.spdx.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(sample_spdx(family, version, index), indent=1))


def exposure_summary(hits: list[dict]) -> dict:
    """How wide a package's exposure is, from vms_running rows: the first thing a reader needs before
    ten thousand rows. ``by_image``: ((family, version), VMs) most VMs first."""
    from collections import Counter

    by_image = Counter((r["family"], r["image_version"]) for r in hits)
    return {
        "vms": len(hits),
        "images": len(by_image),
        "sites": len({r["site"] for r in hits if r["site"]}),
        "platforms": len({r["platform"] for r in hits}),
        "by_image": sorted(by_image.items(), key=lambda item: (-item[1], item[0])),
    }


def vms_running(wh, day, query: PackageQuery, platforms=PLATFORMS, orgs: Collection[str] | None = None) -> pa.Table:
    """VMs (from the day's vm_drift) whose golden image's SBOM matches `query`; with `orgs`, only those
    organisations' VMs (None = every VM, system use). The image SBOMs themselves are shared catalogue."""
    from qlrf import sql
    from qlrf.tenancy import model as tenancy
    from qlrf.tenancy import scoping

    images = affected_images(wh.read("image_packages", day), query)
    if not images:
        return pa.table({"asset_id": pa.array([], pa.string())})
    con = sql.connect()
    con.register("hits", pa.Table.from_pylist(images))
    con.register("vm_drift_files", wh.read_platforms("vm_drift", day, [p for p in platforms if wh.exists("vm_drift", day, p)]))
    if orgs is None:
        tenancy.relation(con, "vm_drift", con.table("vm_drift_files"))
    else:
        scoping.restrict(con, "vm_drift_files", "vm_drift", "vm_drift", orgs)
    return sql.table(con, """
        SELECT d.asset_id, d.platform, d.account, d.site, d.environment, d.family, d.image_version,
               h.package_version, d.status, d.org, d.project
        FROM vm_drift d JOIN hits h ON h.family = d.family AND h.version = d.image_version
        ORDER BY d.platform, d.site, d.asset_id""")
