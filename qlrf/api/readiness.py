"""What "ready" means for the API: it can read and write tasks, answer from a day, and gate actions.

Each check returns a :class:`Check` instead of raising, so ``/readyz`` names every part that is not
ready at once. Error texts pass through :func:`redact_credentials`: a database driver's message
must not carry a password to a load balancer's log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import text as sql_text

from qlrf.db import read_tx
from qlrf.envparse import environ, redact_credentials
from qlrf.remediation.approvals import TaskStore
from qlrf.warehouse import Warehouse

# The table the pipeline writes last for a day: a day with it is a day the API can answer from.
DAY_TABLE = "fleet_report"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _failure(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return redact_credentials(f"{type(exc).__name__}: {first}"[:300])


def task_database(open_store: Callable[[], TaskStore]) -> Check:
    try:
        store = open_store()
        with read_tx(store.engine) as conn:
            conn.execute(sql_text("SELECT 1"))
    except Exception as exc:  # any failure means not ready; the message says which
        return Check("task_database", False, f"unreachable: {_failure(exc)}")
    return Check("task_database", True, f"reachable ({store.engine.dialect.name})")


def warehouse_day(root: str) -> Check:
    try:
        wh = Warehouse(root)
        days = [d for d in wh.dates(DAY_TABLE) if wh.exists(DAY_TABLE, d)]
    except Exception as exc:
        return Check("warehouse", False, f"unreadable: {_failure(exc)}")
    if not days:
        return Check("warehouse", False, f"no materialised day ({DAY_TABLE} has no partition): run `make run` first")
    return Check("warehouse", True, f"newest materialised day {days[-1]}")


def gate_policy(env: Mapping[str, str] | None = None) -> Check:
    from qlrf.remediation.gate import Gate  # regopy loads on first use, not when the API module is imported

    try:
        gate = Gate.from_env(env)
    except Exception as exc:
        return Check("gate_policy", False, f"does not load: {_failure(exc)}")
    try:
        return Check("gate_policy", True, f"loaded ({gate.source})")
    finally:
        gate.close()


class GatePolicyCheck:
    """:func:`gate_policy`, re-run only when the policy could have changed (its variables, or a
    ``.rego`` file's name, size or time): loading the modules costs ~0.3 s, and probes come every
    few seconds."""

    def __init__(self, env: Mapping[str, str] | None = None):
        self.env = env
        self._key: tuple | None = None
        self._last: Check | None = None

    def _key_now(self) -> tuple:
        from qlrf.remediation.gate.modules import ENV_POLICY_DIR, default_policy_dir, policy_files
        from qlrf.remediation.gate.remote import ENV_OPA_URL

        env = environ(self.env)
        folder = Path(env.get(ENV_POLICY_DIR) or default_policy_dir())
        try:
            files = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in policy_files(folder))
        except OSError:
            files = ()
        return (env.get(ENV_OPA_URL), str(folder), files)

    def __call__(self) -> Check:
        key = self._key_now()
        if key != self._key or self._last is None:
            self._last, self._key = gate_policy(self.env), key
        return self._last


def readiness(open_store: Callable[[], TaskStore], warehouse_root: str, gate: Callable[[], Check]) -> list[Check]:
    return [task_database(open_store), warehouse_day(warehouse_root), gate()]


__all__ = ["DAY_TABLE", "Check", "GatePolicyCheck", "gate_policy", "readiness", "task_database", "warehouse_day"]
