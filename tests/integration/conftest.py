"""A fresh PostgreSQL database per test on the machine's server (127.0.0.1:5432, trust auth)."""

from __future__ import annotations

import uuid

import psycopg2
import pytest

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture()
def pg_url():
    name = f"qlrf_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg2.connect(ADMIN)
    except psycopg2.OperationalError as exc:  # pragma: no cover - the machine runs PostgreSQL 15
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        from qlrf.db import dispose_engines

        dispose_engines()
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
