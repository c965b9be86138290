"""AI summaries: the facts sent, the rules summary, grounding, and every model failure falling back."""

from __future__ import annotations

import json
import math
import time
import typing

import pytest
from openai import OpenAI
from pydantic import ValidationError

from qlrf.ai.prompts import FACTS_BEGIN, SYSTEM_PROMPT
from qlrf.ai.summary import (
    HEADLINE_MAX,
    Action,
    Cite,
    FleetSummary,
    Platform,
    fact_values,
    facts_for,
    grounding_problems,
    rule_based_summary,
    summarise,
)
from qlrf.inventory.contract import PLATFORMS
from tests.fakes.openai_fake import OpenAIFake, facts_from_request

DAY = "2026-11-20"
KEY = "sk-test-0123456789abcdef"


def _platform(name, vms, pct, revoked, drift, comp, dr):
    return {"platform": name, "vms": vms, "pct_current_golden": pct, "on_revoked_image": revoked,
            "drift_score": drift, "compliance_score": comp, "dr_readiness": dr}


SUMMARY_ROWS = [
    _platform("aws", 5200, 50.0, 244, 35.5, 82.4, 36.2),
    _platform("azure", 3000, 50.4, 149, 35.1, 82.2, 36.7),
    _platform("gcp", 2600, 49.1, 124, 35.6, 82.2, 36.1),
    _platform("vsphere", 1400, 64.7, 59, 23.7, 85.8, 41.9),
    _platform("all", 12200, 51.6, 576, 34.1, 82.7, 37.0),
]
# Deliberately not in drift order, and with a column that must never reach the model.
SITE_ROWS = [
    {"site": "fra1", "vms": 2184, "platforms": "aws,azure,gcp,vsphere", "drift_score": 24.6, "pct_current_golden": 64.8,
     "on_revoked_image": 83, "asset_id": "i-0abc123secret"},
    {"site": "syd1", "vms": 1797, "platforms": "aws,azure,gcp", "drift_score": 53.8, "pct_current_golden": 24.8,
     "on_revoked_image": 120, "asset_id": "i-0def456secret"},
    {"site": "sin1", "vms": 1701, "platforms": "aws,azure,gcp", "drift_score": 46.1, "pct_current_golden": 35.1,
     "on_revoked_image": 103},
    {"site": "lon1", "vms": 2240, "platforms": "aws,vsphere", "drift_score": 17.5, "pct_current_golden": 74.6,
     "on_revoked_image": 57},
    {"site": "sfo1", "vms": 1848, "platforms": "aws,azure,gcp", "drift_score": 38.2, "pct_current_golden": 45.7,
     "on_revoked_image": 114},
    {"site": "nyc1", "vms": 2193, "platforms": "aws,azure,gcp,vsphere", "drift_score": 31.6, "pct_current_golden": 54.9,
     "on_revoked_image": 93},
    {"site": "unassigned", "vms": 237, "platforms": "aws,azure,gcp,vsphere", "drift_score": 34.3,
     "pct_current_golden": 50.6, "on_revoked_image": 14},
]


def _trend(site, env, drift, change, forecast, trend, days=3):
    return {"site": site, "environment": env, "days_of_history": days, "vms": 500, "drift_score": drift,
            "pct_current": 40.0, "change_per_week": change, "forecast_next_week": forecast,
            "method": "least squares over 3 daily partitions", "trend": trend}


TREND_ROWS = [
    _trend("syd1", "dev", 57.5, -9.43, 48.06, "improving"),
    _trend("sin1", "dev", 52.15, 6.35, 57.89, "worsening"),
    _trend("syd1", "staging", 56.13, 6.16, 62.73, "worsening"),
    _trend("unassigned", "staging", 38.14, 18.73, 56.99, "worsening"),
    _trend("syd1", "prod", 50.15, 1.33, 51.23, "worsening"),
    _trend("sfo1", "prod", 36.69, 11.08, 46.05, "worsening"),
    _trend("sin1", "prod", 41.84, 4.01, 45.34, "worsening"),
    _trend("nyc1", "prod", 28.9, 6.29, 34.7, "worsening"),
    _trend("lon1", "prod", 16.28, 0.49, 16.86, "steady"),
    _trend("fra1", "dev", 28.11, math.nan, 28.11, "unknown", days=1),
]


@pytest.fixture()
def facts():
    return facts_for(DAY, SUMMARY_ROWS, SITE_ROWS, TREND_ROWS)


@pytest.fixture()
def fake():
    with OpenAIFake("good", delay=5) as server:
        yield server


def _client(fake: OpenAIFake, timeout: float = 5, key: str = KEY) -> OpenAI:
    return OpenAI(base_url=fake.url, api_key=key, max_retries=0, timeout=timeout)


# --- facts ----------------------------------------------------------------------------------------


def test_facts_are_compact_aggregates_only(facts):
    assert list(facts) == ["day", "fleet", "platforms", "sites_total", "most_drifted_sites", "trends",
                           "worsening_forecasts"]
    assert facts["day"] == DAY
    assert facts["fleet"] == {k: v for k, v in SUMMARY_ROWS[-1].items() if k != "platform"}
    assert list(facts["platforms"]) == ["aws", "azure", "gcp", "vsphere"]
    # the five most drifted, whatever the input order
    assert [s["site"] for s in facts["most_drifted_sites"]] == ["syd1", "sin1", "sfo1", "unassigned", "nyc1"]
    assert facts["most_drifted_sites"][0] == {"site": "syd1", "platforms": ["aws", "azure", "gcp"], "vms": 1797,
                                              "drift_score": 53.8, "pct_current_golden": 24.8, "on_revoked_image": 120}
    assert facts["sites_total"] == 7
    # worsening only, worst forecast first, at most five, with the full count beside them
    assert [(w["site"], w["environment"]) for w in facts["worsening_forecasts"]] == [
        ("syd1", "staging"), ("sin1", "dev"), ("unassigned", "staging"), ("syd1", "prod"), ("sfo1", "prod")]
    assert facts["trends"] == {"history_days": 3, "min_history_days": 3, "worsening_total": 7}
    text = json.dumps(facts, allow_nan=False)  # NaN from the trends table never leaks into JSON
    assert "asset_id" not in text and "secret" not in text and "i-0" not in text
    assert len(text) < 3000


def test_facts_survive_missing_values_and_odd_labels():
    sites = [{"site": "edge\n42\x00[x](http://e.vil)", "vms": 3, "platforms": "aws,other", "drift_score": None,
              "pct_current_golden": math.nan, "on_revoked_image": 0}]
    trends = [_trend("x" * 200, "prod", 1.0, math.inf, 2.0, "worsening")]
    facts = facts_for(DAY, [], sites, trends)
    assert facts["fleet"] == {} and facts["platforms"] == {}
    assert grounding_problems(rule_based_summary(facts), facts) == []
    assert facts["most_drifted_sites"] == [{"site": "edge 42 x http e.vil", "platforms": ["aws"], "vms": 3, "drift_score": None,
                                            "pct_current_golden": None, "on_revoked_image": 0}]
    assert len(facts["worsening_forecasts"][0]["site"]) == 64
    assert facts["worsening_forecasts"][0]["change_per_week"] is None
    json.dumps(facts, allow_nan=False)


def test_fact_paths_name_each_number(facts):
    values = fact_values(facts)
    assert values["fleet.compliance_score"] == 82.7
    assert values["platforms.vsphere.dr_readiness"] == 41.9
    assert values["most_drifted_sites.syd1.drift_score"] == 53.8
    assert values["worsening_forecasts.syd1/staging.forecast_next_week"] == 62.73
    assert values["trends.worsening_total"] == 7
    assert not any(k.startswith("day") for k in values)


def test_platform_choices_match_the_contract():
    assert typing.get_args(Platform) == PLATFORMS


# --- rules ----------------------------------------------------------------------------------------


def test_rules_summary_is_deterministic_grounded_and_complete(facts):
    summary = rule_based_summary(facts)
    assert summary == rule_based_summary(facts)
    assert summary.source == "rules"
    assert grounding_problems(summary, facts) == []
    assert len(summary.headline) <= HEADLINE_MAX and "576" in summary.headline
    assert 1 <= len(summary.paragraphs) <= 3 and 1 <= len(summary.actions) <= 5
    assert [a.urgency for a in summary.actions] == sorted(
        (a.urgency for a in summary.actions), key=["now", "this_week", "later"].index)
    first, *rest = summary.actions
    assert first.urgency == "now" and "revoked" in first.title
    assert any(a.site == "syd1" for a in rest)  # most drifted site, and worst forecast (syd1/staging)
    assert "62.73" in summary.paragraphs[-1] and "syd1/staging" in summary.paragraphs[-1]
    cited = {c.name: c.value for c in summary.cites}
    assert cited["fleet.on_revoked_image"] == 576 and cited["most_drifted_sites.syd1.drift_score"] == 53.8


def test_rules_summary_of_a_healthy_fleet_invents_no_problem():
    healthy = [_platform(p, 100, 100.0, 0, 0.0, 100.0, 100.0) for p in (*PLATFORMS, "all")]
    sites = [{"site": "lon1", "vms": 400, "platforms": "aws", "drift_score": 0.0, "pct_current_golden": 100.0,
              "on_revoked_image": 0}]
    facts = facts_for(DAY, healthy, sites, [_trend("lon1", "prod", 0.0, 0.0, 0.0, "steady")])
    summary = rule_based_summary(facts)
    assert [a.title for a in summary.actions] == ["No action needed today"]
    assert "revoked" not in summary.headline
    assert "No site and environment pair is getting worse." in summary.paragraphs
    assert grounding_problems(summary, facts) == []


def test_rules_summary_without_history_or_totals():
    facts = facts_for(DAY, SUMMARY_ROWS, SITE_ROWS, [_trend("syd1", "prod", 50.0, math.nan, 50.0, "unknown", days=1)])
    summary = rule_based_summary(facts)
    assert summary.paragraphs[-1] == "No trend yet: forecasts need 3 days of history and there is 1."
    assert grounding_problems(summary, facts) == []
    empty = facts_for(DAY, [], [], [])
    bare = rule_based_summary(empty)
    assert bare.headline == f"No fleet totals in the report for {DAY}."
    assert grounding_problems(bare, empty) == []


def test_a_site_named_like_a_number_hides_no_other_number():
    sites = [{"site": "1", "vms": 10, "platforms": "aws", "drift_score": 12.5, "pct_current_golden": 80.0,
              "on_revoked_image": 1}]
    facts = facts_for(DAY, SUMMARY_ROWS, sites, [])
    problems = grounding_problems(_summary("Site 1 has 12,999 VMs.", cites=[]), facts)
    assert problems[0] == "writes 12,999 in the headline, which is not in the facts"
    assert all("12,999" in p for p in problems)  # the site name was taken out whole, not as digits


def test_site_names_with_digits_are_not_numbers():
    sites = [{"site": "dc 42", "vms": 10, "platforms": "vsphere", "drift_score": 12.5, "pct_current_golden": 80.0,
              "on_revoked_image": 1}]
    facts = facts_for(DAY, SUMMARY_ROWS, sites, [_trend("dc 42", "prod 7", 12.5, 3.3, 15.8, "worsening")])
    summary = rule_based_summary(facts)
    assert "dc 42" in " ".join(summary.paragraphs)
    assert grounding_problems(summary, facts) == []


# --- grounding ------------------------------------------------------------------------------------


def _summary(text: str = "Compliance is 82.7%.", cites=(("fleet.compliance_score", 82.7),), site=None):
    return FleetSummary(headline=text, paragraphs=[text], cites=[Cite(name=n, value=v) for n, v in cites],
                        actions=[Action(title="Act", why=text, site=site, urgency="later")])


def test_grounding_accepts_facts_as_written_or_rounded(facts):
    ok = _summary(f"On {DAY}, 12,200 VMs; syd1 drift 54 (53.8 exactly), syd1/staging to 62.7; 0 to 100 scale.",
                  cites=[("fleet.vms", 12200), ("most_drifted_sites.syd1.drift_score", 53.8), ("drift of syd1", 53.8)],
                  site="syd1")
    assert grounding_problems(ok, facts) == []


@pytest.mark.parametrize(("summary", "expected"), [
    (_summary(cites=[("fleet.compliance_score", 91.2)]), "cites fleet.compliance_score=91.2 but the facts say 82.7"),
    (_summary(cites=[("fleet.vms", 82.7)]), "cites fleet.vms=82.7 but the facts say 12200"),
    (_summary(cites=[("overall", 97.3)]), "cites overall=97.3, which is not in the facts"),
    (_summary("Compliance is 91.2%."), "writes 91.2 in the headline, which is not in the facts"),
    (_summary("About 12,000 VMs."), "writes 12,000 in the headline"),
    (_summary(site="atlantis"), "action 1 names site 'atlantis', which is not in the facts"),
    (_summary("See [the runbook](https://evil.example)."), "writes a link or markup in the headline"),
    (_summary("<img src=x onerror=alert()>"), "writes a link or markup in the paragraph 1"),
])
def test_grounding_rejects_numbers_and_sites_not_in_the_facts(facts, summary, expected):
    problems = grounding_problems(summary, facts)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(("text", "expected"), [
    ("No action needed today.", "says no action is needed in the headline, but fleet.on_revoked_image is 576"),
    ("The fleet is in good shape: nothing to fix.", "says no action is needed"),
    ("No VMs run revoked images.", "says no VM runs a revoked image in the headline, but fleet.on_revoked_image is 576"),
    ("All VMs are on the current golden image.", "says every VM is on the current image"),
    ("The estate is fully compliant.", "says the fleet is fully compliant in the headline, but fleet.compliance_score is 82.7"),
])
def test_grounding_rejects_all_clear_claims_the_facts_contradict(facts, text, expected):
    """Every number can be right and the answer still wrong: an all-clear while VMs run revoked images."""
    problems = grounding_problems(_summary(text, cites=()), facts)
    assert any(expected in p for p in problems), problems


def test_an_all_clear_is_accepted_when_the_facts_agree():
    healthy = [_platform(p, 100, 100.0, 0, 0.0, 100.0, 100.0) for p in (*PLATFORMS, "all")]
    facts = facts_for(DAY, healthy, [], [])
    summary = _summary("No action needed: all VMs are on the current golden image and fully compliant.", cites=())
    assert grounding_problems(summary, facts) == []


def test_schema_limits():
    with pytest.raises(ValidationError, match="at most 160"):
        _summary("x" * 161)
    with pytest.raises(ValidationError):
        FleetSummary(headline="h", paragraphs=[], actions=[], cites=[])
    with pytest.raises(ValidationError):
        Action(title="t", why="w", urgency="asap")


# --- the model ------------------------------------------------------------------------------------


def test_no_client_means_rules(facts):
    summary, source, problems = summarise(facts)
    assert (source, problems) == ("rules", []) and summary == rule_based_summary(facts)


def test_good_answer_passes_grounding_and_only_the_facts_are_sent(fake, facts):
    summary, source, problems = summarise(facts, _client(fake), "fake-model")
    assert (source, problems) == ("model", [])
    assert summary.source == "model" and summary.headline.startswith("Compliance is 82.7% across 12,200 VMs")
    assert grounding_problems(summary, facts) == []
    assert [a.site for a in summary.actions] == [None, "syd1", None]
    (request,) = fake.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.body
    assert body["model"] == "fake-model"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][0]["content"] == SYSTEM_PROMPT
    assert FACTS_BEGIN in body["messages"][1]["content"]
    assert facts_from_request(body) == facts
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert set(fmt["json_schema"]["schema"]["properties"]) == {"headline", "paragraphs", "actions", "cites"}
    assert "asset_id" not in request.text and "i-0" not in request.text and KEY not in request.text


@pytest.mark.parametrize(("mode", "expected"), [
    ("hallucinate", "hallucinated (ungrounded) answer: cites fleet.compliance_score=90.47 but the facts say 82.7"),
    ("invalid_json", "invalid JSON in the answer"),
    ("schema_mismatch", "schema mismatch: actions: Field required"),
    ("refusal", "the model refused: I'm sorry"),
    ("rate_limit", "rate limited: HTTP 429"),
    ("server_error", "server error: HTTP 500"),
    ("slow", "timeout: no answer within 0.5 s"),
])
def test_each_model_failure_falls_back_to_rules_and_says_why(fake, facts, mode, expected):
    fake.mode = mode
    started = time.monotonic()
    summary, source, problems = summarise(facts, _client(fake, timeout=0.5), "fake-model")
    assert time.monotonic() - started < 3
    assert source == "rules" and summary == rule_based_summary(facts)
    (problem,) = problems
    assert problem.startswith("model fake-model: ") and expected in problem, problem
    assert problem.endswith("used the rules summary") and KEY not in problem
    assert len(fake.requests) == 1  # one attempt, as configured (max_retries=0)


def test_unreachable_endpoint_falls_back(facts):
    with OpenAIFake() as server:
        url = server.url
    client = OpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=2)
    summary, source, problems = summarise(facts, client, "fake-model")
    assert source == "rules" and "connection failed" in problems[0]


def test_a_rejected_key_is_named_but_never_shown(facts):
    with OpenAIFake(api_key="the-right-key") as server:
        _, source, problems = summarise(facts, _client(server, key=KEY), "fake-model")
    assert source == "rules"
    assert "request rejected: HTTP 401" in problems[0] and KEY not in problems[0]


# --- the resource ---------------------------------------------------------------------------------


@pytest.fixture()
def llm_env(monkeypatch):
    for var in ("QLRF_LLM_BASE_URL", "QLRF_LLM_API_KEY", "OPENAI_API_KEY", "QLRF_LLM_MODEL", "QLRF_LLM_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_resource_without_endpoint_means_no_model(llm_env):
    from resources.llm import LlmResource

    llm_env.setenv("OPENAI_API_KEY", KEY)  # a key alone does not switch the model on
    resource = LlmResource()
    assert resource.client() is None
    assert resource.settings().describe() == "no model (QLRF_LLM_BASE_URL unset): rules summary"


def test_resource_reads_the_environment_when_called(llm_env):
    from resources.llm import LlmResource

    resource = LlmResource()  # built before the variables exist: read at call time
    llm_env.setenv("QLRF_LLM_BASE_URL", "https://llm.example:8443/v1?x=1")  # user:pw@ is refused now
    llm_env.setenv("OPENAI_API_KEY", KEY)
    llm_env.setenv("QLRF_LLM_TIMEOUT", "12.5")
    settings = resource.settings()
    assert (settings.model, settings.timeout, settings.api_key) == ("gpt-4o-mini", 12.5, KEY)
    client = resource.client()
    assert isinstance(client, OpenAI) and client.api_key == KEY and client.timeout == 12.5
    assert str(client.base_url).startswith("https://llm.example:8443/v1")
    assert settings.describe() == "gpt-4o-mini at https://llm.example:8443/v1 (timeout 12.5 s, key set)"
    for text in (repr(settings), settings.describe(), repr(LlmResource(api_key=KEY))):
        assert KEY not in text
    llm_env.setenv("QLRF_LLM_API_KEY", "sk-preferred")
    llm_env.setenv("QLRF_LLM_MODEL", "llama3.1")
    assert (resource.settings().api_key, resource.settings().model) == ("sk-preferred", "llama3.1")
    pinned = LlmResource(base_url="http://127.0.0.1:9/v1", model="m", timeout=3, api_key="k")
    assert (pinned.settings().base_url, pinned.settings().model, pinned.settings().timeout) == ("http://127.0.0.1:9/v1", "m", 3)


def test_resource_names_a_bad_timeout(llm_env):
    from resources.llm import LlmResource

    llm_env.setenv("QLRF_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    llm_env.setenv("QLRF_LLM_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="QLRF_LLM_TIMEOUT='soon'"):
        LlmResource().client()
