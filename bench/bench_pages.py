"""Control Tower page times over a warehouse holding a 1,000,000-VM day plus 30 days of roll-ups.

Prints, per page: server time under AppTest (first visit with empty caches, then the median of three
repeat visits), and the time a headless Chromium needs from navigation to a settled page (the app
stopped running) plus its screenshot, first load and a repeat load. The day is synthetic
(bench/fleet_gen.py, one platform) scored by the real stages; earlier days are its roll-ups shifted.

    .venv/bin/python bench/bench_pages.py [--vms 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAY = date(2026, 11, 27)
HISTORY_DAYS = 30
PLATFORM = "aws"
ROLLUPS = {"fleet_report": None, "fleet_sites": None, "drift_scores": PLATFORM, "compliance_scores": PLATFORM, "dr_scores": PLATFORM}
SHIFT = {"fleet_report": "pct_current_golden", "fleet_sites": "drift_score", "drift_scores": "drift_score",
         "compliance_scores": "compliance_score", "dr_scores": "dr_readiness"}


def build(base: Path, vms: int) -> Path:
    """The big day through the real scoring stages, then HISTORY_DAYS earlier days of roll-ups."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from bench.fleet_gen import build as generate
    from qlrf.baselines.contracts import load_contracts
    from qlrf.baselines.sbom import image_packages
    from qlrf.inventory.sample import ensure_estate
    from qlrf.scoring import compliance
    from qlrf.scoring.page_tables import run_page_tables
    from qlrf.scoring.report import fleet_tables
    from qlrf.scoring.stages import run_compliance, run_dr, run_drift
    from qlrf.scoring.trends import drift_trends

    started = time.perf_counter()
    wh = generate(base, DAY, vms, PLATFORM)
    as_of = datetime.combine(DAY, dtime(12), tzinfo=UTC)
    run_drift(wh, DAY, PLATFORM, as_of)
    catalogue = compliance.load_catalogue()
    run_compliance(wh, DAY, PLATFORM, as_of, catalogue, compliance.load_waivers(catalogue=catalogue))
    run_dr(wh, DAY, PLATFORM, as_of)
    run_page_tables(wh, DAY, PLATFORM)  # what the drift_breakdown, compliance_controls and dr_breakdown assets run
    summary, sites = fleet_tables(wh, DAY, (PLATFORM,))
    wh.write("fleet_report", summary, DAY)
    wh.write("fleet_sites", sites, DAY)
    golden = ensure_estate(base / "estate", DAY) / "golden"
    wh.write("image_packages", image_packages(golden, load_contracts(golden, public_keys=[], require_signatures=False))[0], DAY)
    for back in range(1, HISTORY_DAYS + 1):
        earlier = DAY - timedelta(days=back)
        for table, platform in ROLLUPS.items():
            data = pq.read_table(wh.file(table, DAY, platform))
            column = SHIFT[table]
            index = data.schema.get_field_index(column)
            moved = pc.min_element_wise(pc.max_element_wise(pc.subtract(data[column], 0.4 * back), 0.0), 100.0)
            wh.write(table, data.set_column(index, column, moved.cast(data.schema.field(column).type)), earlier, platform)
    wh.write("drift_trends", drift_trends(wh, DAY), DAY)
    print(f"built {vms:,} VMs + {HISTORY_DAYS} days of roll-ups in {time.perf_counter() - started:.1f} s (not timed below)")
    return Path(wh.root)


def server_times(warehouse: Path, pages: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    """(first visit with cleared caches, median of 3 repeats) of AppTest run time per page."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=120)
    at.run()  # imports and the entry file once, not charged to any page
    out = {}
    for page in pages:
        st.cache_data.clear()
        runs = []
        for _ in range(4):
            started = time.perf_counter()
            if page == "overview":
                at.switch_page("app_pages/overview.py").run()
            else:
                at.switch_page(f"app_pages/{page}.py").run()
            runs.append(time.perf_counter() - started)
            if at.exception:
                raise RuntimeError(f"{page}: {at.exception[0].value}")
        out[page] = (runs[0], statistics.median(runs[1:]))
    return out


def browser_times(warehouse: Path, pages: tuple[str, ...], shots: Path) -> dict[str, tuple[float, float]]:
    """(first load, repeat load) seconds from navigation to a settled page plus its screenshot."""
    from tests.dashboard.browser.harness import (
        chromium,
        exceptions,
        free_port,
        install_deps,
        open_and_settle,
        screenshot,
        start_streamlit,
        stop,
        wait_healthy,
    )

    install_deps()
    port = free_port()
    from qlrf.envparse import environ

    env = {**environ(), "QLRF_WAREHOUSE": str(warehouse), "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        server = start_streamlit(env, port, Path(tmp) / "streamlit.log")
        driver = None
        try:
            wait_healthy(port, server)
            driver = chromium(Path(tmp) / "profile")
            base = f"http://127.0.0.1:{port}"
            open_and_settle(driver, f"{base}/settings")  # the server's first session pays the imports
            out = {}
            for page in pages:
                url = f"{base}/{'' if page == 'overview' else page}?date={DAY}"
                timings = []
                for _attempt in range(2):
                    started = time.perf_counter()
                    try:
                        open_and_settle(driver, url, timeout=120, quiet=0.5)
                    except TimeoutError:
                        timings.append(float("inf"))  # printed as inf: did not settle within 120 s
                        continue
                    settled = time.perf_counter()
                    screenshot(driver, shots, f"bench-{page}")
                    timings.append(settled - started - 0.5 + (time.perf_counter() - settled))  # minus the quiet wait
                    if exceptions(driver):
                        raise RuntimeError(f"{page}: {exceptions(driver)[0][:200]}")
                out[page] = (timings[0], timings[1])
            return out
        finally:
            if driver is not None:
                driver.quit()
            stop(server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the warehouse here instead of a temporary folder")
    args = parser.parse_args()
    from tests.dashboard.support import PAGES

    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        os.environ["QLRF_HOME"] = str(base / "home")  # AppTest runs the app in this process: configure it here
        # Every page, Settings included (admin only), as a trusted local admin (the browser's server inherits these).
        os.environ.setdefault("QLRF_DASHBOARD_LOCAL_USER", "admin@example.com")
        os.environ.setdefault("QLRF_DASHBOARD_LOCAL_ROLES", "admin@*")
        warehouse = base / "warehouse"
        if not (warehouse / "fleet_report" / f"date={DAY}").exists():
            warehouse = build(base, args.vms)
        os.environ["QLRF_WAREHOUSE"] = str(warehouse)
        server = server_times(warehouse, PAGES)
        for page, (first, warm) in server.items():
            print(f"server {page:<12}{first:6.2f} s first, {warm:6.2f} s warm", flush=True)
        browser = browser_times(warehouse, PAGES, ROOT / "var" / "screenshots")
    print(f"load average while measuring: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print(f"{'page':<12}{'server first':>14}{'server warm':>13}{'browser first':>15}{'browser warm':>14}   (seconds)")
    for page in PAGES:
        print(f"{page:<12}{server[page][0]:>14.2f}{server[page][1]:>13.2f}{browser[page][0]:>15.2f}{browser[page][1]:>14.2f}")
    print("server = AppTest run time (first visit with cleared caches, median of 3 repeats); browser = navigation to a "
          "settled page + screenshot in headless Chromium. Goals: server < 1 s, browser < 2 s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
