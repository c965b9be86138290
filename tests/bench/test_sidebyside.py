"""The side-by-side runner the benchmarks share: interleaving, medians, min-max, ratio, peak RSS."""

from __future__ import annotations

import sys

import pytest

from bench.sidebyside import Sample, Side, Summary, _gnu_time_kib, interleave, ratio, run_once


def _summary(name, seconds):
    return Summary(name, [Sample(s, 100.0 + i, "") for i, s in enumerate(seconds)])


def test_median_min_max_and_ratio_of_medians():
    ours, ref = _summary("ours", [3.0, 1.0, 2.0]), _summary("ref", [4.0, 8.0, 5.0, 100.0])
    assert (ours.median, ours.low, ours.high) == (2.0, 1.0, 3.0)
    assert ref.median == 6.5  # an even count: the mean of the middle two
    assert ratio(ours, ref) == pytest.approx(2.0 / 6.5)
    assert ours.peak_mib == 101.0
    assert "median    2.00 s" in ours.line() and "min-max 1.00-3.00 s" in ours.line()


def test_sides_are_interleaved_round_by_round():
    calls = []

    def runner(side):
        calls.append(side.name)
        return Sample(float(len(calls)), 1.0, "")

    out = interleave([Side("a", ["x"]), Side("b", ["y"])], rounds=3, runner=runner, echo=None)
    assert calls == ["a", "b", "a", "b", "a", "b"]
    assert out["a"].seconds == [1.0, 3.0, 5.0] and out["b"].seconds == [2.0, 4.0, 6.0]
    with pytest.raises(ValueError, match="rounds"):
        interleave([Side("a", ["x"])], rounds=0, runner=runner)


def test_gnu_time_report_is_read_from_its_last_number():
    assert _gnu_time_kib("Command exited with non-zero status 1\n2048\n") == 2048
    assert _gnu_time_kib("") == 0


@pytest.mark.slow
def test_run_once_measures_a_fresh_process_and_refuses_a_wrong_answer():
    big = "x = bytearray(64 * 2**20); x[::4096] = b'1' * len(x[::4096]); print('done')"
    sample = run_once(Side("py", [sys.executable, "-c", big]))
    assert sample.stdout.strip() == "done"
    assert sample.peak_mib >= 64 and sample.seconds > 0

    def must_say_yes(text):
        if "yes" not in text:
            raise RuntimeError("wrong answer")

    with pytest.raises(RuntimeError, match="wrong answer"):
        run_once(Side("no", [sys.executable, "-c", "print('no')"], check=must_say_yes))
    with pytest.raises(RuntimeError, match="exited 3"):
        run_once(Side("fails", [sys.executable, "-c", "raise SystemExit(3)"]))
