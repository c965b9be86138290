"""The Gate: every action the remediation loop (or an AI task) takes is decided by Rego.

Policies live in ``policy/*.rego`` (Rego v1), their tests in ``policy/*_test.rego``. The gate
evaluates ``data.qlrf.gate.decision`` either embedded, with regopy (rego-cpp) compiled once into a
bundle, or remotely, against an OPA server's REST data API
(``POST {url}/v1/data/qlrf/gate/decision`` with ``{"input": ...}`` -> ``{"result": ...}``).
Anything but a well-formed decision is a deny: an undefined decision, a malformed one, an HTTP
error, an unreachable server, an evaluation error, an input that is not JSON.

Input: one action request (a JSON object)
-----------------------------------------
==========================  ===========================================================  ==========
field                       meaning                                                      required
==========================  ===========================================================  ==========
action                      ``plan`` (read-only: propose a patch plan), ``execute_wave``  always
                            (change the machines of one wave), ``rollback`` (restore the
                            previous image / launch-template version after a failed
                            health gate)
environment                 ``dev`` | ``staging`` | ``prod``                              always
autonomy_mode               the environment's mode: ``plan_only`` | ``canary_only`` |     always
                            ``full_auto``
risk_level                  ``low`` | ``medium`` | ``high`` | ``critical``                always
plan_hash                   ``sha256:<64 hex>`` (checked: prefix and 71 characters): the  execute_wave,
                            patch plan's content hash; the approval is bound to it         rollback
targets                     number >= 1: machines this action touches                     execute_wave,
                                                                                          rollback
wave                        number >= 0: the wave's index in the plan (0 = canary)        execute_wave
canary                      true only if exactly ``true``: this is the canary wave (0)    no
drift_delta                 number in [0, 100]: % of the environment's fleet this wave    execute_wave
                            changes
maintenance_window_open     true only if exactly ``true`` (missing = closed)              no
requested_by                who or what asks (a sensor, a user); cannot approve itself     no
approval                    ``{"plan_hash": ..., "approver": ...}`` once a human approved  no
                            (must match ``plan_hash``)
fleet_size, site, platform, free context for the audit log; ignored by the policies       no
plan_id, reason ...
==========================  ===========================================================  ==========

Decision (``data.qlrf.gate.decision``)
--------------------------------------
``{"allow": bool, "requires_approval": bool, "deny": [reasons], "approval_reasons": [reasons],
"approved": bool}``. ``allow`` means *may run now*: the request is well formed, no reason denies
it, and it is either free of approval or carries a valid approval of its plan hash. A request that
needs approval but has none gets ``allow=false, requires_approval=true, deny=[]``: park it as
pending approval, then ask again with ``approval`` set.

Rules (one package each): production is never ``full_auto`` and production waves need an open
maintenance window (production_safety); ``plan_only`` never executes, ``canary_only`` runs only the
canary wave without approval (autonomy); high and critical risk always need approval (risk_level);
a wave above the environment's drift-delta limit, or a canary above the canary limit, is denied
(drift_delta; defaults dev 50 / staging 25 / prod 10 %, canary 10 / 5 / 2 %, overridable with
``data.qlrf.config``); approvals must match the plan hash and not come from the requester (gate).
The request schema itself (common.rego) denies unknown actions, environments, modes and risk levels,
and a decision is only ever ``allow`` for a request that passes it.

An AI task is asked with ``"action": "ai_task"`` and its own fields (the TaskSpec's type, scope size,
risk, autonomy, content hash; built by :mod:`qlrf.ai.validation`) at ``policy/ai_task.rego``'s own
decision (a Gate built with ``decision_path="qlrf/gate/ai_task/decision"``), whose decision has the
same shape; remediation decisions never pass through it. The table above is for the other actions.

The package: ``decision`` (Decision, Outcome), ``request`` (the one request builder), ``modules``
(reading Rego), ``embedded`` (regopy), ``remote`` (OPA REST), ``testing`` (``qlrf policy test``).
One decision costs ~0.2-0.3 ms embedded on this 2-core machine; ``workers=N`` keeps N interpreters,
used concurrently by ``decide()`` from several threads and by ``decide_many()`` (rego-cpp runs
outside the GIL).
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from qlrf.envparse import environ
from qlrf.remediation.gate.decision import Decision, GateFailure, Outcome, decision_from_result
from qlrf.remediation.gate.embedded import EmbeddedEngine
from qlrf.remediation.gate.modules import DECISION_PATH, ENV_POLICY_DIR, default_policy_dir, load_modules
from qlrf.remediation.gate.remote import ENV_OPA_TOKEN, ENV_OPA_URL, RemoteEngine, json_input
from qlrf.remediation.gate.testing import PolicyTestReport, run_policy_tests


class Gate:
    """Decide action requests with the Rego policies, embedded (regopy bundle) or remote (OPA)."""

    def __init__(
        self,
        mode: str = "embedded",
        *,
        policy_dir: Path | str | None = None,
        data: Mapping | None = None,
        url: str | None = None,
        timeout: float = 2.0,
        token: str | None = None,
        ca_file: str | None = None,
        workers: int = 1,
        decision_path: str = DECISION_PATH,
    ):
        if mode not in ("embedded", "remote"):
            raise ValueError(f"mode must be embedded or remote, got {mode!r}")
        self.mode = mode
        self.policy_dir = Path(policy_dir) if policy_dir else default_policy_dir()
        self.data = dict(data) if data else None
        self._engines: queue.SimpleQueue = queue.SimpleQueue()
        self.workers = max(1, int(workers))
        if mode == "remote":
            if not url:
                raise ValueError("remote mode needs the OPA url")
            self.url = url
            self._remote = RemoteEngine(url, timeout=timeout, token=token, ca_file=ca_file, path=decision_path)
            for _ in range(self.workers):
                self._engines.put(self._remote)
        else:
            self.url = None
            modules = load_modules(self.policy_dir)
            for _ in range(self.workers):  # one interpreter per worker: rego-cpp runs outside the GIL
                self._engines.put(EmbeddedEngine(modules, self.data, entrypoint=decision_path))

    @classmethod
    def embedded(
        cls, policy_dir: Path | str | None = None, data: Mapping | None = None, workers: int = 1,
        decision_path: str = DECISION_PATH,
    ) -> Gate:
        return cls("embedded", policy_dir=policy_dir, data=data, workers=workers, decision_path=decision_path)

    @classmethod
    def remote(cls, url: str, **kwargs: Any) -> Gate:
        return cls("remote", url=url, **kwargs)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, decision_path: str = DECISION_PATH) -> Gate:
        """Remote when ``QLRF_OPA_URL`` is set (with ``QLRF_OPA_TOKEN`` as bearer token), else embedded.

        `decision_path` picks the policy's decision: the remediation gate's, or another package's
        (AI tasks ask ``qlrf/gate/ai_task/decision``) without routing every remediation decision through it."""
        env = environ(env)
        url = env.get(ENV_OPA_URL)
        if url:
            return cls.remote(url, token=env.get(ENV_OPA_TOKEN) or None, decision_path=decision_path)
        return cls.embedded(env.get(ENV_POLICY_DIR) or None, decision_path=decision_path)

    @property
    def source(self) -> str:
        return self.mode

    def decide(self, request: Any) -> Decision:
        engine = self._engines.get()
        try:
            return self._decide(engine, request)
        finally:
            self._engines.put(engine)

    def _decide(self, engine: Any, request: Any) -> Decision:
        try:
            doc = json_input(request) if self.mode == "remote" else request  # embedded: checked while built
        except (TypeError, ValueError) as exc:
            return Decision.deny(f"input is not a JSON document: {exc}", request, self.mode, Outcome.BAD_INPUT)
        try:
            result = engine.evaluate(doc)
        except GateFailure as exc:
            return Decision.deny(str(exc), request, self.mode, exc.outcome)
        except (ValueError, TypeError, RecursionError) as exc:  # the embedded input builder's checks
            return Decision.deny(f"input is not a JSON document: {exc}", request, self.mode, Outcome.BAD_INPUT)
        return decision_from_result(result, request, self.mode)

    def decide_many(self, requests: Iterable[Any]) -> list[Decision]:
        """Decide a batch, spread over the gate's workers (embedded: one interpreter each)."""
        items = list(requests)
        if self.workers == 1 or len(items) < 2 * self.workers:
            return [self.decide(r) for r in items]
        chunks = [items[i :: self.workers] for i in range(self.workers)]

        def run(chunk: list[Any]) -> list[Decision]:
            engine = self._engines.get()
            try:
                return [self._decide(engine, r) for r in chunk]
            finally:
                self._engines.put(engine)

        with ThreadPoolExecutor(self.workers) as pool:
            results = list(pool.map(run, chunks))
        out: list[Decision] = [None] * len(items)  # type: ignore[list-item]
        for offset, chunk in enumerate(results):
            out[offset :: self.workers] = chunk
        return out

    def run_tests(self) -> PolicyTestReport:
        """Run every ``test_`` rule of ``policy/*_test.rego`` (embedded, whatever the gate's mode)."""
        return run_policy_tests(self.policy_dir, self.data)

    def close(self) -> None:
        if self.mode == "remote":
            with contextlib.suppress(Exception):
                self._remote.close()


__all__ = ["Gate"]
