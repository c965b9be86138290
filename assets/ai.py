"""AI summaries: the day's fleet report explained in a few sentences plus the top actions.

Reads fleet_report, fleet_sites and drift_trends of the same day, sends only their aggregate numbers
to the model (qlrf.ai.summary.facts_for), and writes one row the dashboard shows. Without a model
(QLRF_LLM_BASE_URL unset), or when the model fails or answers with a number that is not in the facts,
the row holds the deterministic rules summary and says why: the asset itself does not fail for that.
"""

import json

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.checks import check, partition_on_checks
from assets.common import partition_day
from assets.partitions import daily
from qlrf.ai.prompts import PROMPT_VERSION
from qlrf.ai.summary import FleetSummary, facts_for, grounding_problems, summarise
from resources.llm import LlmResource
from resources.warehouse import WarehouseResource

SUMMARY_SCHEMA = pa.schema([
    ("day", pa.date32()),
    ("source", pa.string()),  # model | rules
    ("model", pa.string()),  # the model asked (also when it failed); null when none is configured
    ("headline", pa.string()),
    ("body", pa.string()),  # JSON: {"paragraphs": [...], "actions": [...], "cites": [...]}
    ("problems", pa.list_(pa.string())),  # why the model's answer was not used; empty when it was
    ("facts", pa.string()),  # JSON: exactly what the model was sent, so grounding can be re-checked
    ("prompt_version", pa.string()),
])


def _markdown(summary: FleetSummary, source: str) -> MetadataValue:
    lines = [f"**{summary.headline}**", "", *[p + "\n" for p in summary.paragraphs], "Actions:"]
    lines += [f"- [{a.urgency}] {a.title}: {a.why}" for a in summary.actions]
    lines += ["", f"_source: {source}_"]
    return MetadataValue.md("\n".join(lines))


@asset(
    partitions_def=daily,
    deps=["fleet_report", "fleet_sites", "drift_trends"],  # same day (identity mapping)
    group_name="report",
    kinds={"parquet", "openai"},
    description="The day's fleet report in a few sentences plus the top actions (model-written and checked "
    "against the report's numbers, or rule-based when no model is configured or it fails).",
    check_specs=[
        check("summary_grounded", asset="fleet_summary",
                       description="Every number the summary cites or writes is one of the facts it was given."),
        check("model_answered", asset="fleet_summary",
                       description="The configured model wrote the summary (warns when it fell back to the rules)."),
    ],
    automation_condition=AutomationCondition.on_cron("0 6 * * *"),
)
@partition_on_checks
def fleet_summary(context: AssetExecutionContext, warehouse: WarehouseResource, llm: LlmResource):
    day = partition_day(context)
    wh = warehouse.get()
    trends = wh.read("drift_trends", day).to_pylist() if wh.exists("drift_trends", day) else []
    facts = facts_for(day, wh.read("fleet_report", day).to_pylist(), wh.read("fleet_sites", day).to_pylist(), trends)

    settings = llm.settings()
    context.log.info(f"fleet_summary {day}: {settings.describe()}")  # never the key
    client = llm.client(settings)
    summary, source, problems = summarise(facts, client, settings.model if client else None)
    model = settings.model if settings.enabled else None
    for problem in problems:
        context.log.warning(problem)

    row = {
        "day": day, "source": source, "model": model, "headline": summary.headline,
        "body": json.dumps(summary.body(), separators=(",", ":")), "problems": problems,
        "facts": json.dumps(facts, separators=(",", ":")), "prompt_version": PROMPT_VERSION,
    }
    table = pa.Table.from_pylist([row], schema=SUMMARY_SCHEMA)
    path = wh.write("fleet_summary", table, day, metadata={"source": source, "model": model})
    yield MaterializeResult(
        metadata={
            "dagster/row_count": 1, "path": path, "source": source, "model": model or "-",
            "problems": "; ".join(problems) or "-", "summary": _markdown(summary, source),
        }
    )

    ungrounded = grounding_problems(summary, facts)
    yield AssetCheckResult(
        asset_key="fleet_summary", check_name="summary_grounded", passed=not ungrounded,
        metadata={"cites": len(summary.cites), "ungrounded": "; ".join(ungrounded) or "-"},
    )
    if not settings.enabled:
        answered, note = True, "no model configured (QLRF_LLM_BASE_URL unset): rules summary by design"
    else:
        answered, note = source == "model", "; ".join(problems) or f"{model} answered"
    yield AssetCheckResult(
        asset_key="fleet_summary", check_name="model_answered", passed=answered, severity=AssetCheckSeverity.WARN,
        metadata={"source": source, "model": model or "-", "note": note},
    )
