"""scripts/fault_catalogue.py: counts attempts and held ones per class from a real pytest junit report."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("fault_catalogue", ROOT / "scripts" / "fault_catalogue.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def catalogue(tmp_path) -> Path:
    """A tiny catalogue: two classes, one attempt that does not hold, one skipped."""
    (tmp_path / "test_locks.py").write_text("def test_picking():\n    assert True\n\ndef test_bumping():\n    assert False\n")
    (tmp_path / "test_doors.py").write_text(
        "import pytest\n\ndef test_kicking():\n    pass\n\n@pytest.mark.skip\ndef test_prying():\n    pass\n"
    )
    return tmp_path


def test_attempts_and_summary_from_a_pytest_run(catalogue):
    fc = _script()
    code, found = fc.run(["--rootdir", str(catalogue)], path=str(catalogue))
    assert code == 1
    assert sorted((a.fault_class, a.name, a.held) for a in found) == [
        ("doors", "test_kicking", True), ("doors", "test_prying", False),
        ("locks", "test_bumping", False), ("locks", "test_picking", True),
    ]
    assert fc.summary(found) == [
        "doors  2 attempts, 1 held",
        "locks  2 attempts, 1 held",
        "  did not hold: doors: test_prying",
        "  did not hold: locks: test_bumping",
        "total  4 attempts, 2 held",
    ]


def test_a_catalogue_that_holds_exits_zero(catalogue, capsys):
    (catalogue / "test_locks.py").write_text("def test_picking():\n    assert True\n")
    (catalogue / "test_doors.py").unlink()
    fc = _script()
    assert fc.main(["--rootdir", str(catalogue)], path=str(catalogue)) == 0
    assert capsys.readouterr().out.splitlines() == ["locks  1 attempts, 1 held", "total  1 attempts, 1 held"]


def test_nothing_ran_is_not_a_pass(tmp_path, capsys):
    fc = _script()
    assert fc.main([], path=str(tmp_path / "missing")) == 1
    assert "no attempts ran" in capsys.readouterr().err


@pytest.mark.slow
def test_the_script_runs_the_baseline_catalogue():
    proc = subprocess.run([sys.executable, "scripts/fault_catalogue.py", "-k", "removing_a_contract_signature"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["baselines  1 attempts, 1 held", "total      1 attempts, 1 held"]
