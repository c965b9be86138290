"""AI summaries of the daily fleet report: facts in, a grounded few-sentence summary out.

Plain Python (no Dagster). ``summary`` builds the facts, asks an OpenAI-compatible model for a
structured answer, rejects any answer that cites a number not in the facts, and falls back to a
deterministic rule-based summary whenever the model is absent or fails. ``prompts`` holds the text.
"""

from qlrf.ai.summary import (
    Action,
    Cite,
    FleetSummary,
    facts_for,
    grounding_problems,
    rule_based_summary,
    summarise,
    summarise_with_model,
)

__all__ = [
    "Action",
    "Cite",
    "FleetSummary",
    "facts_for",
    "grounding_problems",
    "rule_based_summary",
    "summarise",
    "summarise_with_model",
]
