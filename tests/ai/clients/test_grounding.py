"""Grounding of an agent's answer against the tool results of its conversation (no model needed)."""

from __future__ import annotations

from qlrf.ai.clients.proposer import ParsedAnswer, grounding_problems

RESULTS = [
    ("query_assets", {"tool": "query_assets", "status": "ok", "matching": 1234, "rows": [
        {"asset_id": "i-0042", "site": "syd1", "image_family": "ubuntu-22", "image_version": "1.2",
         "days_behind": 12.345, "discovered_at": "2026-11-20T12:00:00+00:00"},
        {"asset_id": "i-0043", "site": "syd1", "image_family": "ubuntu-22", "image_version": "1.0",
         "days_behind": 40, "discovered_at": "2026-11-20T12:00:00+00:00"}]}),
    ("get_drift_status", {"tool": "get_drift_status", "status": "ok", "rows": [{"vms": 7, "drift_score": 33.3}]}),
]


def _check(answer: str, citations: list[dict] | None = None, intent: str = "what drifts in syd1?") -> list[str]:
    final = ParsedAnswer(answer=answer, citations=citations or [], proposal={})
    return grounding_problems(final, RESULTS, intent)


def test_numbers_from_tool_results_rounded_or_with_separators_are_grounded():
    assert _check("1,234 VMs match; i-0042 is 12.3 days behind on ubuntu-22 1.2 since 2026-11-20; drift 33.3 over 7 VMs.") == []


def test_row_counts_and_names_the_operator_used_are_not_claims():
    assert _check("2 rows came back for rhel-9 in syd1.", intent="is rhel-9 drifting in syd1?") == []


def test_arithmetic_and_invented_numbers_are_not_grounded():
    assert _check("In all 52.345 days behind and 4242 VMs.") == [
        "writes 52.345, which no tool result of this conversation holds",
        "writes 4242, which no tool result of this conversation holds"]


def test_citations_must_match_the_value_at_their_path_in_a_tool_that_ran():
    ok = [{"tool": "query_assets", "name": "matching", "value": 1234},
          {"tool": "get_drift_status", "name": "rows.0.drift_score", "value": 33.3},
          {"tool": "query_assets", "name": "rows.0.site", "value": "syd1"}]
    assert _check("See the citations.", ok) == []
    bad = [{"tool": "query_assets", "name": "matching", "value": 1235},
           {"tool": "sbom_query", "name": "rows.0.vms", "value": 7},
           {"tool": "query_assets", "name": "rows.0.site", "value": "lon1"}]
    assert _check("See the citations.", bad) == [
        "cites query_assets.matching=1235 but the result says 1234",
        "cites sbom_query.rows.0.vms, but 'sbom_query' returned no result in this conversation",
        "cites query_assets.rows.0.site='lon1', which query_assets did not return"]
