"""The alert tests' loopback receivers (tests/fakes/receivers.py), one per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.receivers import SmtpReceiver, WebhookReceiver


@pytest.fixture()
def http_receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture()
def smtp_receiver() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver
