"""A model client over the loopback fake, and a real ToolBox per agent over the small warehouse of
tests/ai/test_tools.py (one AWS + one GCP day scored by the real stages)."""

from __future__ import annotations

import logging

import pytest

from qlrf.ai.agents import shipped_agents
from qlrf.ai.answers import AskContext
from qlrf.ai.clients import ModelClient, ModelProposer, client_from_env
from qlrf.ai.tools import READ_ONLY_TOOLS, ToolBox, ToolContext
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from tests.ai.test_tools import AS_OF, warehouse  # noqa: F401 - the module-scoped warehouse fixture, reused
from tests.fakes.openai_fake import AgentScript, OpenAIFake
from tests.remediation.support import PENDING, make_plan

KEY = "sk-planted-0123456789abcdefSECRET"


class Sleeper:
    """Records the pauses a client asks for instead of sleeping."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)


@pytest.fixture()
def sleeper() -> Sleeper:
    return Sleeper()


@pytest.fixture()
def fake():
    with OpenAIFake("agent", api_key=KEY, script=AgentScript()) as server:
        yield server


def make_client(fake: OpenAIFake, sleeper: Sleeper, **env: str) -> ModelClient:
    variables = {"QLRF_LLM_BASE_URL": fake.url, "QLRF_LLM_API_KEY": KEY, "QLRF_LLM_MODEL": "gpt-4o-mini",
                 "QLRF_LLM_TIMEOUT": "5", **env}
    client = client_from_env(variables, sleep=sleeper, jitter=lambda: 1.0)
    assert client is not None
    return client


@pytest.fixture()
def client(fake, sleeper) -> ModelClient:
    return make_client(fake, sleeper)


@pytest.fixture()
def audit(tmp_path) -> AuditLog:
    return AuditLog(f"sqlite:///{tmp_path / 'audit.db'}")


@pytest.fixture()
def ask(warehouse, audit, tmp_path):  # noqa: F811 - the imported fixture
    """ask(intent) -> AskContext whose toolbox_for(agent) is a real ToolBox limited to that agent's tools."""
    tasks = TaskStore(f"sqlite:///{tmp_path / 'audit.db'}", audit=audit, clock=lambda: AS_OF)
    tasks.propose(make_plan(), "sensor:drift_breach", PENDING)
    context = ToolContext(warehouse, audit, tasks)

    def build(intent: str, org: str | None = None, conversation: str = "conv-1") -> AskContext:
        boxes: dict[str, ToolBox] = {}

        def toolbox_for(agent: str) -> ToolBox:
            allowed = shipped_agents()[agent].tools
            return boxes.setdefault(agent, ToolBox([t for t in READ_ONLY_TOOLS if t.name in allowed], context, audit,
                                                   conversation=conversation))

        return AskContext(intent=intent, requested_by="alice@example.com", org=org, toolbox_for=toolbox_for,
                          conversation=conversation)

    return build


@pytest.fixture()
def proposer(client) -> ModelProposer:
    return ModelProposer(client)


@pytest.fixture()
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog
