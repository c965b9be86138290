from __future__ import annotations

import pytest

from tests.api.support import T0, client_for
from tests.remediation.support import Clock, sqlite_task_store


@pytest.fixture()
def clock():
    return Clock(T0)


@pytest.fixture()
def store(tmp_path, clock):
    return sqlite_task_store(tmp_path, clock)


@pytest.fixture()
def client(store, tmp_path):
    return client_for(store, tmp_path)
