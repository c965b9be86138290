"""The remediation loop's systems as Dagster resources: the task store + audit log, and the Rego gate.

Every field is optional: unset (None) means "resolve from the environment when a run or a sensor
tick calls the resource", never at import or definition time, so the code location loads with an
empty environment. A deployment can pin fields with ``EnvVar`` in pipelines/definitions.py, e.g.
``RemediationResource(database_url=EnvVar("QLRF_POSTGRES_URL"))`` or
``GateResource(opa_url=EnvVar("QLRF_OPA_URL"), opa_token=EnvVar("QLRF_OPA_TOKEN"))``.

=========================  ===========================================================================
variable                   used for
=========================  ===========================================================================
QLRF_POSTGRES_URL          task store, audit log and alert ledger in Postgres (else SQLite under
                           ``$QLRF_HOME/qlrf.db``; see qlrf/db.py)
QLRF_REMEDIATION_POLICY    the remediation policy file (default ``policy/remediation.yaml``)
QLRF_OPA_URL/_TOKEN        a remote OPA for the gate (default: embedded Rego from ``QLRF_POLICY_DIR``
                           or ``policy/``)
driver variables           AWS_ENDPOINT_URL, AWS_PROFILE, QLRF_REMEDIATION_* ... read by each
                           platform's execution driver (qlrf/remediation/drivers)
=========================  ===========================================================================
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.remediation.gate import Gate
from qlrf.remediation.policy import RemediationPolicy


class RemediationResource(ConfigurableResource):
    """Approval tasks, the audit log, the remediation policy and the platform execution drivers."""

    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the task store / audit log; default QLRF_POSTGRES_URL, else SQLite under QLRF_HOME",
    )
    policy_path: str | None = Field(
        default=None, description="Remediation policy YAML; default QLRF_REMEDIATION_POLICY or policy/remediation.yaml"
    )
    approval_ttl_hours: float = Field(default=24.0, gt=0, description="Pending approvals expire after this many hours")

    def audit(self) -> AuditLog:
        return AuditLog(self.database_url)

    def execution_audit(self) -> Any:
        """The executor's audit sink: the audit log, announcing each finished wave (wave.completed) in the outbox."""
        from qlrf.events.wiring import evented_audit

        return evented_audit(self.database_url, self.audit())

    def store(self) -> TaskStore:
        """A TaskStore whose state changes are audited, and their events written to the outbox, in the same transaction."""
        from qlrf.events.wiring import evented_store

        return evented_store(self.database_url, audit=self.audit(), approval_ttl=timedelta(hours=self.approval_ttl_hours))

    def policy(self) -> RemediationPolicy:
        return RemediationPolicy.load(self.policy_path)

    def driver(self, platform: str, *, dry_run: bool = False) -> Any:
        """The platform's execution driver, configured from the environment (qlrf.remediation.drivers).

        ``dry_run``: its mutating calls are recorded, never sent (qlrf.remediation.calls)."""
        from qlrf.remediation.calls import CallRecorder
        from qlrf.remediation.drivers import driver_for

        return driver_for(platform, recorder=CallRecorder(dry_run=dry_run))


class GateResource(ConfigurableResource):
    """The Rego action gate (qlrf/remediation/gate): embedded by default, a remote OPA when a URL is set."""

    opa_url: str | None = Field(default=None, description="Remote OPA base URL; default QLRF_OPA_URL (unset: embedded)")
    opa_token: str | None = Field(default=None, description="Bearer token for the OPA; default QLRF_OPA_TOKEN")
    policy_dir: str | None = Field(default=None, description="Rego policies for the embedded gate; default QLRF_POLICY_DIR or policy/")

    def get(self) -> Gate:
        if self.opa_url:
            return Gate.remote(self.opa_url, token=self.opa_token or None)
        if self.policy_dir:
            return Gate.embedded(self.policy_dir)
        return Gate.from_env()
