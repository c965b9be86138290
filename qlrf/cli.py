"""The `qlrf` command: the product's front door outside the Dagster UI.

`qlrf run` hands over to the code location (pipelines.run) in a child process, so this package
never imports Dagster; everything else here is plain Python over the warehouse.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from qlrf.contract import PLATFORMS, json_default
from qlrf.settings import Settings


def cmd_run(args: argparse.Namespace) -> int:
    argv = [sys.executable, "-m", "pipelines.run", "--date", args.date]
    for p in args.platform or []:
        argv += ["--platform", p]
    return subprocess.call(argv)


def cmd_normalize(args: argparse.Namespace) -> int:
    from qlrf.normalize import no_cyclic_gc, normalise_files
    from qlrf.tags import TagMapping

    settings = Settings.from_env()
    mapping = TagMapping.from_file(args.tag_mapping or settings.tag_mapping)
    result = normalise_files(args.platform, args.files, mapping=mapping, account=args.account, region=args.region)
    out = sys.stdout
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=json_default).encode
    rows = result.snapshots if args.snapshots else result.vms
    with no_cyclic_gc():
        out.write("".join(dumps(r) + "\n" for r in rows))
    out.flush()
    for err in result.errors:
        print(f"error: {err}", file=sys.stderr)
    if result.errors:
        print(f"{len(result.errors)} record(s) rejected, {len(rows)} written", file=sys.stderr)
    return 1 if result.errors else 0


def cmd_discover(args: argparse.Namespace) -> int:
    """Run one live connector outside Dagster; progress on stderr, rows to --out as Parquet."""
    import time

    from qlrf.connectors import discover_from_env
    from qlrf.contract import inventory_table, snapshot_table
    from qlrf.tags import TagMapping

    settings = Settings.from_env()
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    found = discover_from_env(args.platform, TagMapping.from_file(settings.tag_mapping), datetime.now(UTC), progress)
    print(f"{args.platform}: {len(found.vms)} VMs, {len(found.snapshots)} snapshots, "
          f"{len(found.failed_scopes)} failed scope(s), {len(found.errors)} rejected record(s) "
          f"in {time.perf_counter() - started:.1f}s")
    for name, rows in sorted(found.facts.items()):
        print(f"  {name}: {len(rows)}")
    for failure in found.failed_scopes:
        print(f"error: {failure['scope']}: {failure['reason']}", file=sys.stderr)
    if args.out:
        import pyarrow as pa
        import pyarrow.parquet as pq

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(inventory_table(found.vms), out / f"{args.platform}-inventory.parquet")
        pq.write_table(snapshot_table(found.snapshots), out / f"{args.platform}-snapshots.parquet")
        for name, rows in found.facts.items():
            if rows:
                pq.write_table(pa.Table.from_pylist(rows), out / f"{args.platform}-{name}.parquet")
        print(f"written to {out}")
    return 1 if found.failed_scopes or not found.vms else 0


def cmd_sbom_query(args: argparse.Namespace) -> int:
    from qlrf.sbom import PackageQuery, vms_running
    from qlrf.warehouse import Warehouse

    wh = Warehouse(Settings.from_env().warehouse)
    query = PackageQuery.parse(args.package)
    day = args.date or (wh.dates("image_packages") or [None])[-1]
    if day is None or not wh.exists("image_packages", day):
        print(f"error: no image_packages partition{' for ' + day if day else ''} in {wh.root}; run `qlrf run` first", file=sys.stderr)
        return 2
    hits = vms_running(wh, day, query).to_pylist()
    if args.json:
        print(json.dumps(hits, default=str))
    else:
        for row in hits:
            print(f"{row['platform']:<8}{row['asset_id']:<40}{row['site'] or '-':<12}{row['environment']:<9}"
                  f"{row['family']} {row['image_version']} ({query.name} {row['package_version']})")
        print(f"{len(hits)} VM(s) on {day} run an image whose SBOM has {args.package}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from qlrf.report import report_text
    from qlrf.warehouse import PartitionMissing, Warehouse

    try:
        print(report_text(Warehouse(Settings.from_env().warehouse), args.date))
    except PartitionMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_estate(args: argparse.Namespace) -> int:
    from qlrf.sample import DEFAULT_COUNTS, generate_estate

    counts = dict(DEFAULT_COUNTS)
    if args.scale != 1.0:
        counts = {p: max(1, int(n * args.scale)) for p, n in counts.items()}
    manifest = generate_estate(Path(args.out), date.fromisoformat(args.date), seed=args.seed, counts=counts)
    print(json.dumps({"out": args.out, "counts": manifest["counts"]}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    today = datetime.now(UTC).date().isoformat()
    parser = argparse.ArgumentParser(prog="qlrf", description="Resilience Fabric: golden images, drift, compliance and DR readiness.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="materialise every asset for a day (embedded default: the sample estate)")
    run.add_argument("--date", default=today)
    run.add_argument("--platform", action="append", choices=PLATFORMS)
    run.set_defaults(func=cmd_run)

    inventory = sub.add_parser("inventory", help="inventory tools").add_subparsers(dest="inventory_command", required=True)
    norm = inventory.add_parser("normalize", help="platform CLI JSON -> normalised rows as JSON lines")
    norm.add_argument("--platform", required=True, choices=PLATFORMS)
    norm.add_argument("--account", help="override the account (vSphere: the vCenter)")
    norm.add_argument("--region", help="override the region (vSphere: the datacenter)")
    norm.add_argument("--tag-mapping", help="YAML mapping of tag keys to owner/site/environment")
    norm.add_argument("--snapshots", action="store_true", help="print the snapshot rows instead of the VMs")
    norm.add_argument("files", nargs="+")
    norm.set_defaults(func=cmd_normalize)

    disc = sub.add_parser("discover", help="run one platform's live connector (configured from the environment)")
    disc.add_argument("--platform", required=True, choices=PLATFORMS)
    disc.add_argument("--out", help="write inventory, snapshots and discovery facts as Parquet here")
    disc.set_defaults(func=cmd_discover)

    report = sub.add_parser("report", help="print the fleet report from the warehouse")
    report.add_argument("--date", default=today)
    report.set_defaults(func=cmd_report)

    sbom = sub.add_parser("sbom", help="SBOM questions").add_subparsers(dest="sbom_command", required=True)
    sq = sbom.add_parser("query", help="which VMs run an image whose SBOM contains PACKAGE[@RANGE]")
    sq.add_argument("package", help="e.g. openssl, openssl@3.0.7, 'openssl@>=3.0,<3.0.8'")
    sq.add_argument("--date", help="default: the newest day in the warehouse")
    sq.add_argument("--json", action="store_true")
    sq.set_defaults(func=cmd_sbom_query)

    estate = sub.add_parser("estate", help="sample estate tools").add_subparsers(dest="estate_command", required=True)
    gen = estate.add_parser("generate", help="write a sample estate (raw platform exports + golden contracts)")
    gen.add_argument("--out", required=True)
    gen.add_argument("--date", default=today)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--scale", type=float, default=1.0, help="multiply the default VM counts")
    gen.set_defaults(func=cmd_estate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
