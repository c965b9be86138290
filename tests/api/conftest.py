from __future__ import annotations

import pytest

from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from tests.api.support import T0, client_for
from tests.remediation.support import Clock


@pytest.fixture()
def clock():
    return Clock(T0)


@pytest.fixture()
def store(tmp_path, clock):
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    return TaskStore(url, audit=AuditLog(url), clock=clock)


@pytest.fixture()
def client(store, tmp_path):
    return client_for(store, tmp_path)
