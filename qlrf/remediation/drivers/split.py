"""One plan, two drivers: scaling groups to the platform's group driver, standalone VMs to its instance driver.

The planner puts a family's drifted groups *and* standalone VMs of one platform into one plan
(one approval, one hash), while each kind has its own mechanics (a scale-set model vs. rebuilding
one VM). :class:`SplitDriver` keeps them apart: each part sees the plan restricted to its targets
(the same plan object when it has only those, so group-only plans behave exactly as before), the
waves run group part first, health is both parts' verdict, and rollback undoes both, reporting
every failure. ``checkpoint``/``restore`` nest each part's state.

The instance drivers share their group driver's plumbing (:class:`OnBase`: clients, credential,
operation waits and the recorder) and one health roll-up (:func:`standalone_health`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qlrf.remediation.calls import CallRecorder
from qlrf.remediation.drivers import DriverError, instances_through
from qlrf.remediation.executor import HealthReport
from qlrf.remediation.plans import PatchPlan


def part(plan: PatchPlan, *, groups: bool) -> PatchPlan | None:
    """`plan` restricted to its groups (``groups=True``) or its standalone instances; None if it has none.

    The restricted copy keeps the original ``content_hash`` (names derived from the plan hash stay
    the plan's) and is not re-validated: it is only ever read by a driver.
    """
    spec = plan.spec
    has_groups, has_instances = bool(spec.targets.groups), bool(spec.targets.instances)
    if (groups and not has_groups) or (not groups and not has_instances):
        return None
    if not (has_groups and has_instances):
        return plan
    targets = spec.targets.model_copy(update={"instances": []} if groups else {"groups": []})
    waves = [w.model_copy(update={"instances": []} if groups else {"groups": []}) for w in spec.waves]
    return plan.model_copy(update={"spec": spec.model_copy(update={"targets": targets, "waves": waves})})


def _touches(plan: PatchPlan, index: int) -> bool:
    return any(w.groups or w.instances for w in plan.spec.waves[: index + 1])


def merge_health(reports: list[tuple[str, HealthReport]]) -> HealthReport:
    if not reports:
        return HealthReport(False, 0, 0, {"error": "nothing to look at"})
    details: dict[str, Any] = {}
    unhealthy: dict[str, str] = {}
    for _, report in reports:
        unhealthy.update(report.details.get("unhealthy") or {})
        details.update({k: v for k, v in report.details.items() if k != "unhealthy"})
    if unhealthy:
        details["unhealthy"] = unhealthy
    return HealthReport(all(r.healthy for _, r in reports), sum(r.total for _, r in reports),
                        sum(r.healthy_count for _, r in reports), details)


class OnBase:
    """An instance driver riding on its platform's group driver (``base``): one recorder for both,
    so a dry run that swaps the recorder swaps it everywhere."""

    base: Any

    @property
    def recorder(self) -> CallRecorder:
        return self.base.recorder

    @recorder.setter
    def recorder(self, value: CallRecorder) -> None:
        self.base.recorder = value


def standalone_health(plan: PatchPlan, index: int, look: Callable[[str], tuple[str, str | None]]) -> HealthReport:
    """The health gate over the standalone VMs of waves 0..index: ``look(asset_id)`` gives (name,
    problem or None); every one must be healthy (standalone machines have no healthy percentage)."""
    total = healthy = 0
    details: dict[str, Any] = {}
    unhealthy: dict[str, str] = {}
    for asset in instances_through(plan, index):
        name, problem = look(asset)
        total += 1
        if problem:
            unhealthy[name] = problem
        else:
            healthy += 1
        details[asset] = {"name": name, "problem": problem}
    if unhealthy:
        details["unhealthy"] = unhealthy
    return HealthReport(total > 0 and healthy == total, total, healthy, details)


def undo_each(plan: PatchPlan, waves_done: list[int], pick: Callable[[str], Any], undo: Callable[[Any], dict],
              label: Callable[[Any], str]) -> dict[str, Any]:
    """Undo every standalone VM the waves touched (``pick(asset)`` gives its state, or None when
    there is nothing to undo), each even if another failed; DriverError naming every failure."""
    details: dict[str, Any] = {}
    errors: list[str] = []
    for asset in instances_through(plan, max(waves_done)) if waves_done else []:
        state = pick(asset)
        if state is None:
            continue
        try:
            details[asset] = undo(state)
        except Exception as exc:  # noqa: BLE001 - restore the others, then report
            errors.append(f"{label(state)}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
    if errors:
        raise DriverError("rollback incomplete: " + "; ".join(errors))
    return details


class SplitDriver:
    """Groups to ``groups``, standalone instances to ``instances`` (see the module docstring)."""

    def __init__(self, groups: Any, instances: Any):
        self.groups = groups
        self.instances = instances

    @property
    def recorder(self) -> CallRecorder:
        return self.groups.recorder

    @recorder.setter
    def recorder(self, value: CallRecorder) -> None:  # a dry run swaps the recorder of both parts
        self.groups.recorder = value
        self.instances.recorder = value

    def _parts(self, plan: PatchPlan) -> list[tuple[str, Any, PatchPlan]]:
        out = []
        for name, driver, is_groups in (("groups", self.groups, True), ("instances", self.instances, False)):
            sub = part(plan, groups=is_groups)
            if sub is not None:
                out.append((name, driver, sub))
        return out

    def prepare(self, plan: PatchPlan) -> dict[str, Any]:
        details: dict[str, Any] = {}
        for _, driver, sub in self._parts(plan):
            details.update(driver.prepare(sub) or {})
        return details

    def run_wave(self, plan: PatchPlan, index: int) -> dict[str, Any]:
        details: dict[str, Any] = {}
        for _, driver, sub in self._parts(plan):
            if sub.spec.waves[index].groups or sub.spec.waves[index].instances:
                details.update(driver.run_wave(sub, index) or {})
        return details

    def health(self, plan: PatchPlan, index: int) -> HealthReport:
        return merge_health([(name, driver.health(sub, index)) for name, driver, sub in self._parts(plan)
                             if _touches(sub, index)])

    def rollback(self, plan: PatchPlan, waves_done: list[int]) -> dict[str, Any]:
        details: dict[str, Any] = {}
        errors: list[str] = []
        for _, driver, sub in self._parts(plan):
            if not waves_done or not _touches(sub, max(waves_done)):
                continue
            try:
                details.update(driver.rollback(sub, waves_done) or {})
            except Exception as exc:  # noqa: BLE001 - roll the other part back too, then report both
                errors.append(" ".join(str(exc).split())[:500])
        if errors:
            raise DriverError("; ".join(errors))
        return details

    def members(self, plan: PatchPlan, index: int) -> tuple[list[str], list[str]]:
        """For canary analysis: both parts' (canary, baseline). A part that cannot tell them apart
        raises, so the analysis is inconclusive rather than judged on half the machines."""
        changed: list[str] = []
        baseline: list[str] = []
        for name, driver, sub in self._parts(plan):
            members = getattr(driver, "members", None)
            if members is None:
                raise DriverError(f"the {name} part ({type(driver).__name__}) cannot tell canary from baseline")
            c, b = members(sub, index)
            changed += c
            baseline += b
        return changed, baseline

    def checkpoint(self) -> dict[str, Any]:
        state: dict[str, Any] = {"instances": self.instances.checkpoint()}
        if hasattr(self.groups, "checkpoint"):
            state["groups"] = self.groups.checkpoint()
        return state

    def restore(self, state: dict[str, Any]) -> None:
        self.instances.restore(state["instances"])
        if "groups" in state and hasattr(self.groups, "restore"):
            self.groups.restore(state["groups"])


__all__ = ["OnBase", "SplitDriver", "merge_health", "part", "standalone_health", "undo_each"]
