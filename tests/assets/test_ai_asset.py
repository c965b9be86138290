"""fleet_summary over a real materialised day: without a model, with the fake model, and a failing model."""

from __future__ import annotations

import json

import pytest
from dagster import AssetCheckSeverity, DagsterInstance, materialize

from assets.ai import SUMMARY_SCHEMA, fleet_summary
from qlrf.ai.summary import facts_for, grounding_problems, rule_based_summary, stored_summary
from qlrf.inventory.contract import PLATFORMS
from qlrf.warehouse import Warehouse
from resources.llm import LlmResource
from resources.warehouse import WarehouseResource
from tests.fakes.openai_fake import OpenAIFake, facts_from_request
from tests.helpers import materialize_day

DAY = "2026-11-24"
KEY = "sk-asset-test-9f8e7d6c5b4a"


@pytest.fixture(scope="module")
def built_day(tmp_path_factory):
    """fleet_report, fleet_sites and drift_trends of one day, built by the real graph."""
    base = tmp_path_factory.mktemp("ai_day")
    results = materialize_day(base / "warehouse", base / "estate", DAY)
    assert all(r.success for r in results)
    return Warehouse(str(base / "warehouse"))


@pytest.fixture()
def no_llm_env(monkeypatch):
    for var in ("QLRF_LLM_BASE_URL", "QLRF_LLM_API_KEY", "OPENAI_API_KEY", "QLRF_LLM_MODEL", "QLRF_LLM_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def _run(wh: Warehouse, llm: LlmResource):
    instance = DagsterInstance.ephemeral()
    result = materialize([fleet_summary], partition_key=DAY, raise_on_error=False, instance=instance,
                         resources={"warehouse": WarehouseResource(root=wh.root), "llm": llm})
    result.logs = "\n".join(str(entry) for entry in instance.all_logs(result.run_id))
    assert result.success
    (row,) = wh.read("fleet_summary", DAY).to_pylist()
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    (materialization,) = result.asset_materializations_for_node("fleet_summary")
    return result, row, checks, materialization.metadata


def _facts(wh: Warehouse) -> dict:
    return facts_for(DAY, wh.read("fleet_report", DAY).to_pylist(), wh.read("fleet_sites", DAY).to_pylist(),
                     wh.read("drift_trends", DAY).to_pylist())


def _all_text(result) -> str:
    """Everything the run recorded: log lines, metadata, check results."""
    return result.logs + "\n".join(str(event) for event in result.all_events)


def test_without_a_model_the_rules_write_the_summary(built_day, no_llm_env):
    wh = built_day
    result, row, checks, meta = _run(wh, LlmResource())
    facts = _facts(wh)
    expected = rule_based_summary(facts)
    assert wh.read("fleet_summary", DAY).schema.remove_metadata().equals(SUMMARY_SCHEMA)
    assert (row["source"], row["model"], row["problems"]) == ("rules", None, [])
    assert row["headline"] == expected.headline and str(row["day"]) == DAY
    assert json.loads(row["body"]) == json.loads(json.dumps(expected.body()))
    assert json.loads(row["facts"]) == facts
    assert checks["summary_grounded"].passed
    assert checks["model_answered"].passed
    assert "no model configured" in checks["model_answered"].metadata["note"].value
    assert meta["source"].value == "rules" and meta["model"].value == "-" and meta["problems"].value == "-"
    assert expected.headline in meta["summary"].value
    shown = stored_summary(wh, DAY)  # what the dashboard reads
    assert (shown["source"], shown["headline"], shown["problems"]) == ("rules", expected.headline, [])
    assert shown["paragraphs"] == expected.paragraphs and shown["actions"][0]["urgency"] == "now"
    assert stored_summary(wh, "2026-01-01") is None


def test_with_the_model_only_aggregates_are_sent(built_day, no_llm_env):
    wh = built_day
    with OpenAIFake("good") as fake:
        llm = LlmResource(base_url=fake.url, api_key=KEY, model="fake-model", timeout=5, max_retries=0)
        result, row, checks, meta = _run(wh, llm)
    assert (row["source"], row["model"], row["problems"]) == ("model", "fake-model", [])
    body = json.loads(row["body"])
    assert row["headline"].startswith("Compliance is ") and 1 <= len(body["paragraphs"]) <= 3
    assert {"title", "why", "site", "platform", "urgency"} == set(body["actions"][0])
    assert checks["summary_grounded"].passed and checks["model_answered"].passed
    assert meta["source"].value == "model" and meta["model"].value == "fake-model"

    (request,) = fake.requests
    sent = facts_from_request(request.body)
    assert sent == _facts(wh) == json.loads(row["facts"])
    assert sent["fleet"]["vms"] == 12_200 and len(sent["most_drifted_sites"]) == 5
    # nothing per VM leaves the warehouse: no asset id, no VM name of any platform is in the request
    for platform in PLATFORMS:
        inventory = wh.read("inventory", DAY, platform, columns=["asset_id"])
        assert not [a for a in inventory["asset_id"].to_pylist()[:200] if a in request.text]
    assert KEY not in request.text and request.headers["authorization"] == f"Bearer {KEY}"
    assert KEY not in _all_text(result)


def test_a_failing_model_warns_and_keeps_the_rules_summary(built_day, no_llm_env):
    wh = built_day
    with OpenAIFake("rate_limit") as fake:
        # Configured the production way: environment variables read when the run starts.
        no_llm_env.setenv("QLRF_LLM_BASE_URL", fake.url)
        no_llm_env.setenv("QLRF_LLM_API_KEY", KEY)
        no_llm_env.setenv("QLRF_LLM_MODEL", "fake-model")
        no_llm_env.setenv("QLRF_LLM_TIMEOUT", "5")
        result, row, checks, meta = _run(wh, LlmResource(max_retries=0))
    assert len(fake.requests) == 1
    assert (row["source"], row["model"]) == ("rules", "fake-model")
    assert row["headline"] == rule_based_summary(_facts(wh)).headline
    (problem,) = row["problems"]
    assert "rate limited: HTTP 429" in problem and problem.startswith("model fake-model: ")
    assert checks["summary_grounded"].passed
    answered = checks["model_answered"]
    assert not answered.passed and answered.severity == AssetCheckSeverity.WARN
    assert "HTTP 429" in answered.metadata["note"].value and "HTTP 429" in meta["problems"].value
    assert KEY not in _all_text(result)


def test_a_hallucinating_model_is_not_published(built_day, no_llm_env):
    wh = built_day
    with OpenAIFake("hallucinate") as fake:
        llm = LlmResource(base_url=fake.url, api_key=KEY, model="fake-model", timeout=5, max_retries=0)
        _, row, checks, _ = _run(wh, llm)
    assert row["source"] == "rules" and "hallucinated (ungrounded) answer" in row["problems"][0]
    assert grounding_problems(rule_based_summary(_facts(wh)), _facts(wh)) == []
    assert checks["summary_grounded"].passed and not checks["model_answered"].passed
