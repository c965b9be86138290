"""Run the fault catalogue (tests/faults) and print how many attempts held, per class and in total.

Each test under tests/faults is one attempt to break the system as a hostile or careless user, or a
failing environment, would; its file names the class (``test_baselines.py`` -> ``baselines``). An
attempt *held* when its test passed; a failure, an error or a skip did not hold. The exit status is
non-zero unless every attempt held, so CI can track the figure and fail on a regression.

    python scripts/fault_catalogue.py [extra pytest args, e.g. -n 2 or -k replay]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAULTS = "tests/faults"
NOT_HELD = ("failure", "error", "skipped")


@dataclass(frozen=True)
class Attempt:
    fault_class: str
    name: str
    held: bool


def attempts(junit_xml: str) -> list[Attempt]:
    """Every test case of a pytest junit report, with its class (from its module) and outcome."""
    out = []
    for case in ET.fromstring(junit_xml).iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        fault_class = module.removeprefix("test_") or "unclassified"
        held = not any(case.find(tag) is not None for tag in NOT_HELD)
        out.append(Attempt(fault_class, case.get("name", ""), held))
    return out


def summary(found: list[Attempt]) -> list[str]:
    """``<class>: N attempts, N held`` per class, then the total; each attempt that did not hold is named."""
    total, held = Counter(a.fault_class for a in found), Counter(a.fault_class for a in found if a.held)
    width = max((len(c) for c in total), default=5)
    lines = [f"{c:<{width}}  {total[c]} attempts, {held[c]} held" for c in sorted(total)]
    lines += [f"  did not hold: {a.fault_class}: {a.name}" for a in found if not a.held]
    lines.append(f"{'total':<{width}}  {len(found)} attempts, {sum(held.values())} held")
    return lines


def run(pytest_args: list[str], path: str = FAULTS) -> tuple[int, list[Attempt]]:
    """Run pytest over `path` (the catalogue) with a junit report in a temporary folder; (exit code, attempts)."""
    with tempfile.TemporaryDirectory(prefix="qlrf-faults-") as scratch:
        report = Path(scratch) / "faults.xml"
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", path, "-p", "no:cacheprovider", "-q", f"--junitxml={report}", *pytest_args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        if not report.exists():
            return proc.returncode or 1, []
        return proc.returncode, attempts(report.read_text())


def main(argv: list[str], path: str = FAULTS) -> int:
    code, found = run(argv, path)
    for line in summary(found):
        print(line)
    if not found:
        print(f"no attempts ran (pytest exit {code})", file=sys.stderr)
        return 1
    return 0 if code == 0 and all(a.held for a in found) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
