"""Benchmark: drift + compliance for 1,000,000 VMs, side by side with a plain DuckDB reference.

Goal (issue 18): ours <= 1.5x the reference, <= 2.0 s wall for the whole process, <= 1 GiB peak.

Builds a synthetic one-million-VM partition (columnar, not timed), then runs, interleaved A B A B A B,
each as a fresh process (interpreter start-up and imports included, as a user waits for them):

- ours: `qlrf score --date D --platform aws --stage drift,compliance`, the same stage code the assets
  run (Parquet in, DuckDB, per-VM Parquet out with its gate, scores out);
- reference: a few lines of DuckDB that do the same shape of work: the per-VM drift table (same 21
  columns) and the per-VM compliance table (same 11 columns, the seven catalogue controls and the
  active waiver written out by hand) written to Parquet with `COPY`, then the site roll-ups read back.

Then `qlrf score ... --stage dr` alone, for completeness (DR readiness runs next in the asset graph).

    .venv/bin/python bench/bench_fleet_scoring.py [--vms 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sidebyside import PYTHON, Side, goal, interleave, load_line, ratio  # noqa: E402

DAY = date(2026, 11, 27)

# The reference: plain DuckDB, written here so the ratio measures our overhead, not a different workload.
REFERENCE = r"""
import json, sys, duckdb
root, day, out = sys.argv[1], sys.argv[2], sys.argv[3]
as_of = f"{day} 23:59:59+00"
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
inv = f"{root}/inventory/date={day}/platform=aws/part.parquet"
reg = f"{root}/golden_images/date={day}/part.parquet"
snaps = f"{root}/vm_snapshots/date={day}/platform=aws/part.parquet"
con.execute(f'''COPY (
WITH registry AS (SELECT * FROM read_parquet('{reg}')),
images AS (SELECT platform, image_ref, any_value(family) AS family, any_value(version) AS version,
                  any_value(version_rank) AS version_rank, any_value(channel) AS channel, any_value(released_at) AS released_at,
                  bool_or(revoked) AS revoked, any_value(revoked_reason) AS revoked_reason FROM registry GROUP BY ALL),
versions AS (SELECT DISTINCT family, version, version_rank, released_at, channel_level, revoked FROM registry),
ladder AS (SELECT l.level, v.family, v.version_rank,
                  first(v.version ORDER BY v.version_rank DESC) OVER w AS current_version,
                  first(v.released_at ORDER BY v.version_rank DESC) OVER w AS current_released_at,
                  row_number() OVER (w ORDER BY v.version_rank DESC) - 1 AS versions_behind
           FROM versions v JOIN (VALUES (0), (1), (2)) l(level) ON v.channel_level >= l.level
           WHERE NOT v.revoked WINDOW w AS (PARTITION BY v.family, l.level)),
j AS (SELECT i.asset_id, i.platform, i.account, i.region, coalesce(i.site, 'unassigned') AS site,
             coalesce(i.environment, 'unknown') AS environment, i.owner, i."group", i.state, i.image_ref,
             g.family, g.version AS image_version, g.channel AS image_channel, g.released_at AS image_released_at,
             g.revoked, g.revoked_reason, g.version_rank,
             CASE i.environment WHEN 'dev' THEN 0 WHEN 'staging' THEN 1 ELSE 2 END AS level
      FROM read_parquet('{inv}') i LEFT JOIN images g USING (platform, image_ref))
SELECT j.asset_id, j.platform, j.account, j.region, j.site, j.environment, j.owner, j."group", j.state, j.image_ref,
       j.family, j.image_version, j.image_channel, j.image_released_at, j.revoked_reason, l.current_version,
       CASE WHEN j.revoked THEN NULL ELSE l.versions_behind END::INTEGER AS versions_behind,
       greatest(0, date_diff('day', j.image_released_at, l.current_released_at))::INTEGER AS days_behind,
       ((epoch(TIMESTAMPTZ '{as_of}') - epoch(j.image_released_at)) // 86400)::INTEGER AS image_age_days,
       CASE WHEN j.image_ref IS NULL THEN 'unmanaged' WHEN j.family IS NULL THEN 'unknown' WHEN j.revoked THEN 'revoked'
            WHEN l.versions_behind = 0 THEN 'current' ELSE 'behind' END AS status,
       CASE WHEN j.image_ref IS NULL THEN 'medium' WHEN j.family IS NULL THEN 'high' WHEN j.revoked THEN 'critical'
            WHEN l.versions_behind = 0 THEN 'none' WHEN l.versions_behind >= 2 THEN 'medium' ELSE 'low' END AS severity
FROM j LEFT JOIN ladder l USING (family, level, version_rank)
) TO '{out}/vm_drift.parquet' (FORMAT parquet, COMPRESSION zstd)''')
con.execute(f'''COPY (
WITH s AS (SELECT asset_id, max(created_at) AS last FROM read_parquet('{snaps}') GROUP BY asset_id),
f AS (SELECT d.*, i.public_ip, (epoch(TIMESTAMPTZ '{as_of}') - epoch(s.last)) / 3600.0 AS age,
             CASE d.environment WHEN 'prod' THEN 24 WHEN 'staging' THEN 72 WHEN 'dev' THEN 168 ELSE 24 END AS rpo
      FROM read_parquet('{out}/vm_drift.parquet') d JOIN read_parquet('{inv}') i USING (asset_id)
      LEFT JOIN s USING (asset_id)),
c AS (SELECT asset_id, platform, account, site, environment, owner,
             environment = 'prod' AS a0, (status IN ('current', 'behind') AND image_channel = 'prod') IS TRUE AS p0,
             status <> 'revoked' AS p1, image_age_days IS NOT NULL AS a2, (image_age_days <= 90) IS TRUE AS p2,
             status NOT IN ('unknown', 'unmanaged') AS p3,
             (owner IS NOT NULL AND environment <> 'unknown' AND site <> 'unassigned') IS TRUE AS p4,
             environment = 'prod' AND state <> 'terminated' AS a5, (age <= rpo) IS TRUE AS p5,
             NOT coalesce(public_ip, false) AS p6,
             (site = 'lon1' AND environment = 'prod' AND owner = 'payments') IS TRUE AS w6 FROM f)
SELECT asset_id, platform, account, site, environment, owner,
       list_filter([CASE WHEN a0 AND NOT p0 THEN 'RF-IMG-001' END, CASE WHEN NOT p1 THEN 'RF-IMG-002' END,
                    CASE WHEN a2 AND NOT p2 THEN 'RF-IMG-003' END, CASE WHEN NOT p3 THEN 'RF-IMG-004' END,
                    CASE WHEN NOT p4 THEN 'RF-TAG-001' END, CASE WHEN a5 AND NOT p5 THEN 'RF-DR-001' END,
                    CASE WHEN a0 AND NOT p6 AND NOT w6 THEN 'RF-NET-001' END], lambda x: x IS NOT NULL) AS failed_controls,
       list_filter([CASE WHEN a0 AND NOT p6 AND w6 THEN 'RF-NET-001' END], lambda x: x IS NOT NULL) AS waived_controls,
       (a0::INT * 2 + 3 + a2::INT + a5::INT)::INTEGER AS controls_applicable,
       (a0::INT * 3 + 5 + a2::INT * 2 + 2 + 1 + a5::INT * 5 + a0::INT * 3)::INTEGER AS weight_applicable,
       ((a0 AND p0)::INT * 3 + p1::INT * 5 + (a2 AND p2)::INT * 2 + p3::INT * 2 + p4::INT + (a5 AND p5)::INT * 5
        + (a0 AND (p6 OR w6))::INT * 3)::INTEGER AS weight_passed
FROM c) TO '{out}/vm_compliance.parquet' (FORMAT parquet, COMPRESSION zstd)''')
drift = con.sql(f'''SELECT platform, site, environment, count(*) AS vms, count(*) FILTER (WHERE status = 'current') AS on_current,
    avg(CASE severity WHEN 'none' THEN 0 WHEN 'low' THEN 25 WHEN 'medium' THEN 50 WHEN 'high' THEN 75 ELSE 100 END) AS drift
    FROM read_parquet('{out}/vm_drift.parquet') GROUP BY ALL''').fetchall()
comp = con.sql(f'''SELECT platform, site, environment, count(*) AS vms, sum(len(failed_controls)) AS failures,
    100.0 * sum(weight_passed) / sum(weight_applicable) AS score
    FROM read_parquet('{out}/vm_compliance.parquet') GROUP BY ALL''').fetchall()
n = con.sql(f"SELECT count(*) FROM read_parquet('{out}/vm_drift.parquet')").fetchall()[0][0]
print(json.dumps({"vm_drift": n, "drift_sites": len(drift), "compliance_sites": len(comp)}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vms", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    from bench.fleet_gen import build

    with tempfile.TemporaryDirectory(prefix="qlrf-bench-scoring-") as tmp:
        started = time.perf_counter()
        wh = build(Path(tmp), DAY, args.vms)
        print(f"built a {args.vms:,}-VM partition in {time.perf_counter() - started:.1f} s (not timed below)")
        env = {k: v for k, v in os.environ.items() if not k.startswith("QLRF_")}
        env.update(QLRF_WAREHOUSE=wh.root, QLRF_HOME=str(Path(tmp) / "home"))
        ref_out = Path(tmp) / "reference"
        ref_out.mkdir()

        def rows_check(text: str) -> None:
            found = json.loads(text.strip().splitlines()[-1])
            if found["vm_drift"] != args.vms:
                raise RuntimeError(f"reference wrote {found['vm_drift']} vm_drift rows, expected {args.vms}")

        def ours_check(text: str) -> None:
            if f"vm_drift {args.vms:,} rows" not in text:
                raise RuntimeError(f"qlrf score did not write {args.vms:,} vm_drift rows:\n{text}")

        score = [PYTHON, "-m", "qlrf.cli", "score", "--date", DAY.isoformat(), "--platform", "aws"]
        ours = Side("ours (qlrf score)", [*score, "--stage", "drift,compliance"], env=env, check=ours_check)
        reference = Side("reference (DuckDB COPY)", [PYTHON, "-c", REFERENCE, wh.root, DAY.isoformat(), str(ref_out)],
                         env=env, check=rows_check)
        print(f"drift + compliance for {args.vms:,} VMs, fresh processes, interleaved ({load_line()})")
        result = interleave([ours, reference], rounds=args.rounds)
        a, b = result[ours.name], result[reference.name]
        print(a.line())
        print(b.line())
        r = ratio(a, b)
        print(f"ratio ours/reference {r:.2f}x (medians); stage times of the median run: "
              f"{sorted(a.samples, key=lambda s: s.seconds)[len(a.samples) // 2].stdout.strip().splitlines()[-1]}")
        print(goal("goal ratio <= 1.5x", r <= 1.5) + "; " + goal("wall <= 2.0 s", a.median <= 2.0) + "; "
              + goal("peak <= 1 GiB", a.peak_mib <= 1024))
        dr = interleave([Side("dr alone (qlrf score)", [*score, "--stage", "dr"], env=env)], rounds=1, echo=None)
        print(dr["dr alone (qlrf score)"].line() + "  (for completeness)")
        print(f"after: {load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
