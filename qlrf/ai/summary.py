"""The daily fleet summary: a few sentences and the top actions, grounded in the day's report.

Flow: ``facts_for`` reduces the report tables to a compact, numbers-only dict (fleet totals, per
platform, the most drifted sites, worsening forecasts; nothing per VM, no secrets). ``summarise`` asks
an OpenAI-compatible model for a structured ``FleetSummary`` when a client is given, and checks the
answer: every number it cites or writes must be one of the facts (rounding allowed, arithmetic not),
and every site it names must be in the facts. Whatever goes wrong with the model (timeout, 429, 5xx,
refusal, invalid JSON, schema mismatch, an ungrounded number) falls back to ``rule_based_summary``,
a deterministic summary written from the same facts, with one problem string saying what happened.
A model failure never raises.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic.json_schema import SkipJsonSchema

from qlrf.ai.grounding import decimals, matches, numbers_written, numeric_leaves
from qlrf.ai.prompts import SYSTEM_PROMPT, user_prompt
from qlrf.envparse import redact_secrets
from qlrf.inventory.contract import PLATFORMS

DEFAULT_MODEL = "gpt-4o-mini"
HEADLINE_MAX = 160
TOP_SITES = 5
TOP_FORECASTS = 5
MIN_TREND_DAYS = 3  # qlrf.scoring.trends fits a line only from three daily partitions on
MAX_ANSWER_TOKENS = 1500
LABEL_MAX = 64

Urgency = Literal["now", "this_week", "later"]
# The registry's platforms as a Literal, so the model's answer schema lists exactly the known platforms.
Platform = Literal[PLATFORMS]  # type: ignore[valid-type]
Source = Literal["model", "rules"]

# The only columns that reach the model; anything else on the rows (now or later) is dropped.
FLEET_FIELDS = ("vms", "pct_current_golden", "on_revoked_image", "drift_score", "compliance_score", "dr_readiness")
SITE_FIELDS = ("vms", "drift_score", "pct_current_golden", "on_revoked_image")
TREND_FIELDS = ("drift_score", "change_per_week", "forecast_next_week", "days_of_history")
# Numbers any summary may use without a fact: the bounds of every 0-100 score.
SCALE_BOUNDS = (0.0, 100.0)


# --- the answer -----------------------------------------------------------------------------------


class Action(BaseModel):
    title: str = Field(description="What to do, imperative, one short line")
    why: str = Field(description="One sentence with the facts that make it worth doing")
    site: str | None = Field(default=None, description="A site named in the facts, or null")
    platform: Platform | None = Field(default=None, description=f"{', '.join(PLATFORMS)} or null")
    urgency: Urgency


class Cite(BaseModel):
    name: str = Field(description="Path of the fact, e.g. fleet.compliance_score")
    value: float


# The class docstring and field descriptions travel to the model inside the JSON schema: keep them for it.
class FleetSummary(BaseModel):
    """The daily summary of the fleet report: a headline, short paragraphs, actions and the numbers cited."""

    headline: str = Field(description=f"One sentence, at most {HEADLINE_MAX} characters")
    paragraphs: list[str] = Field(min_length=1, max_length=3)
    actions: list[Action] = Field(min_length=1, max_length=5)
    cites: list[Cite]
    # Set by this module, never by the model: not in the schema it is sent, overwritten after parsing.
    source: SkipJsonSchema[Source] = "model"

    @field_validator("headline")
    @classmethod
    def _headline_fits(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("headline is empty")
        if len(value) > HEADLINE_MAX:
            raise ValueError(f"headline is {len(value)} characters, at most {HEADLINE_MAX} allowed")
        return value

    @field_validator("paragraphs")
    @classmethod
    def _paragraphs_have_text(cls, value: list[str]) -> list[str]:
        value = [p.strip() for p in value]
        if any(not p for p in value):
            raise ValueError("empty paragraph")
        return value

    def body(self) -> dict:
        """paragraphs, actions and cites as JSON-able data (the `body` column of the summary table)."""
        return self.model_dump(include={"paragraphs", "actions", "cites"})


class ModelFailure(Exception):
    """A model answer that cannot be used; the message says exactly why."""


# --- facts ----------------------------------------------------------------------------------------


def _num(value: Any) -> int | float | None:
    """A JSON-safe number: None for missing, NaN or infinite; floats rounded to 2 places."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    if number.is_integer() and not isinstance(value, float):
        return int(number)  # numpy ints and the like
    return round(number, 2)


def _label(value: Any) -> str:
    """A site or environment name as the model sees it: printable, one line, no markup, bounded."""
    text = str(value if value is not None else "unknown").replace("://", " ")
    text = "".join(" " if not ch.isprintable() or ch in "<>[]()`" else ch for ch in text)
    return " ".join(text.split())[:LABEL_MAX] or "unknown"


def _numbers(row: Mapping, fields: Iterable[str]) -> dict:
    return {field: _num(row.get(field)) for field in fields}


def _desc(value: Any) -> float:
    number = _num(value)
    return -number if number is not None else math.inf


def facts_for(
    day: date | str,
    summary_rows: Iterable[Mapping],
    site_rows: Iterable[Mapping],
    trend_rows: Iterable[Mapping] = (),
) -> dict:
    """The compact context the model sees, from fleet_report, fleet_sites and drift_trends rows.

    Only whitelisted aggregate columns pass (FLEET_FIELDS, SITE_FIELDS, TREND_FIELDS); nothing per
    VM. Paths into this dict (``fleet.vms``, ``platforms.aws.drift_score``,
    ``most_drifted_sites.syd1.drift_score``, ``worsening_forecasts.syd1/prod.forecast_next_week``)
    are what a summary cites.
    """
    fleet: dict = {}
    platforms: dict = {}
    for row in summary_rows:
        name = row.get("platform")
        if name == "all":
            fleet = _numbers(row, FLEET_FIELDS)
        elif name in PLATFORMS:
            platforms[name] = _numbers(row, FLEET_FIELDS)
    platforms = {p: platforms[p] for p in PLATFORMS if p in platforms}

    sites = sorted(site_rows, key=lambda r: (_desc(r.get("drift_score")), _label(r.get("site"))))
    most_drifted = [
        {
            "site": _label(row.get("site")),
            "platforms": [p for p in str(row.get("platforms") or "").split(",") if p in PLATFORMS],
            **_numbers(row, SITE_FIELDS),
        }
        for row in sites[:TOP_SITES]
    ]

    trends = list(trend_rows)
    worsening = sorted(
        (r for r in trends if r.get("trend") == "worsening"),
        key=lambda r: (_desc(r.get("forecast_next_week")), _desc(r.get("change_per_week")),
                       _label(r.get("site")), _label(r.get("environment"))),
    )
    history = [n for n in (_num(r.get("days_of_history")) for r in trends) if n is not None]
    return {
        "day": day if isinstance(day, str) else day.isoformat(),
        "fleet": fleet,
        "platforms": platforms,
        "sites_total": len(sites),
        "most_drifted_sites": most_drifted,
        "trends": {
            "history_days": max(history) if history else 0,
            "min_history_days": MIN_TREND_DAYS,
            "worsening_total": len(worsening),
        },
        "worsening_forecasts": [
            {"site": _label(r.get("site")), "environment": _label(r.get("environment")), **_numbers(r, TREND_FIELDS)}
            for r in worsening[:TOP_FORECASTS]
        ],
    }


def _item_key(item: Mapping) -> str | None:
    if "site" in item:
        return f"{item['site']}/{item['environment']}" if "environment" in item else str(item["site"])
    return None


def fact_values(facts: Mapping) -> dict[str, float]:
    """Every number in the facts by path: ``fleet.vms``, ``most_drifted_sites.syd1.drift_score``..."""
    return numeric_leaves({k: v for k, v in facts.items() if k != "day"}, _item_key)


def _labels(facts: Mapping) -> set[str]:
    labels = {r["site"] for r in facts.get("most_drifted_sites", [])}
    for r in facts.get("worsening_forecasts", []):
        labels |= {r["site"], r["environment"], f"{r['site']}/{r['environment']}"}
    return labels


# --- grounding ------------------------------------------------------------------------------------

# The dashboard renders the text as Markdown: a link or HTML in it is never a fact (and may be injected
# through a site name).
_MARKUP = re.compile(r"https?://|www\.|\]\(|<\s*/?\s*[a-zA-Z]")


def _known(facts: Mapping) -> list[float]:
    counts = [float(len(facts.get(k) or ())) for k in ("platforms", "most_drifted_sites", "worsening_forecasts")]
    return [*fact_values(facts).values(), *counts, *SCALE_BOUNDS]


def numbers_in(text: str, facts: Mapping) -> list[tuple[str, float, int]]:
    """(as written, value, decimals) for each number in `text`; the report date and names are not numbers."""
    text = text.replace(str(facts.get("day", "")), " ") if facts.get("day") else text
    return numbers_written(text, _labels(facts))  # whole names only: "syd1", "dc 42"


# All-clear claims and the fleet fact that must hold for each: a grounded number is not enough when the
# sentence around it says "nothing to do" while VMs run revoked images.
_CLAIMS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"\b(no|zero|none of the)\s+(vms?|machines|instances|hosts)\b[^.]*\brevoked\b|"
                r"\bno\s+revoked\b|\bnothing\s+(runs|is)\s+on\s+(a\s+)?revoked\b", re.I),
     "on_revoked_image", "says no VM runs a revoked image"),
    (re.compile(r"\bno\s+(further\s+)?(action|remediation|work)s?\s+(is\s+|are\s+)?(needed|required|necessary)\b|"
                r"\bnothing\s+to\s+(do|fix|remediate)\b|\ball\s+clear\b|\bno\s+(issues|problems|risks?)\b", re.I),
     "needs_action", "says no action is needed"),
    (re.compile(r"\b(all|every)\s+(vms?|machines|instances|hosts)\b[^.]*\b(current|up to date|golden|patched)\b|"
                r"\bfully\s+(patched|up to date|current)\b", re.I),
     "not_all_current", "says every VM is on the current image"),
    (re.compile(r"\b(fully|100\s?%)\s+compliant\b|\bno\s+compliance\s+(gaps|issues|findings)\b", re.I),
     "not_fully_compliant", "says the fleet is fully compliant"),
)


def _false_claims(facts: Mapping) -> dict[str, str]:
    """Which all-clear claims the facts make false, with the fact that does."""
    fleet = facts.get("fleet") or {}
    revoked, current, compliance = (fleet.get(k) for k in ("on_revoked_image", "pct_current_golden", "compliance_score"))
    false: dict[str, str] = {}
    if revoked:
        false["on_revoked_image"] = f"fleet.on_revoked_image is {revoked:g}"
    if current is not None and current < 100:
        false["not_all_current"] = f"fleet.pct_current_golden is {current:g}"
    if compliance is not None and compliance < 100:
        false["not_fully_compliant"] = f"fleet.compliance_score is {compliance:g}"
    if revoked or (current is not None and current < 100) or facts.get("trends", {}).get("worsening_total"):
        false["needs_action"] = next(iter(false.values()), "drift is worsening at some sites")
    return false


def contradictions(texts: Iterable[tuple[str, str]], facts: Mapping) -> list[str]:
    """Every all-clear claim in `texts` ((where, text) pairs) that the facts contradict."""
    false = _false_claims(facts)
    return [
        f"{what} in the {where}, but {false[key]}"
        for where, text in texts
        for pattern, key, what in _CLAIMS
        if key in false and pattern.search(text)
    ]


def grounding_problems(summary: FleetSummary, facts: Mapping) -> list[str]:
    """Every way the summary goes beyond the facts; empty when it is fully grounded.

    * a cite whose value is in no fact, or whose name is a fact path with a different value;
    * a number written in the headline, a paragraph or an action that is in no fact;
    * an action naming a site that is not in the facts;
    * a link or HTML in any text (the dashboard renders Markdown);
    * an all-clear claim the facts contradict ("no action needed" while VMs run revoked images).
    """
    paths = fact_values(facts)
    known = _known(facts)
    problems = []
    for cite in summary.cites:
        if not math.isfinite(cite.value):
            problems.append(f"cites {cite.name}={cite.value}, not a number")
            continue
        places = decimals(cite.value)
        if cite.name in paths:
            if not matches(cite.value, places, paths[cite.name]):
                problems.append(f"cites {cite.name}={cite.value:g} but the facts say {paths[cite.name]:g}")
        elif not any(matches(cite.value, places, fact) for fact in known):
            problems.append(f"cites {cite.name}={cite.value:g}, which is not in the facts")
    texts = [("headline", summary.headline)]
    texts += [(f"paragraph {i + 1}", p) for i, p in enumerate(summary.paragraphs)]
    for i, action in enumerate(summary.actions):
        texts += [(f"action {i + 1} title", action.title), (f"action {i + 1} why", action.why)]
    for where, text in texts:
        if _MARKUP.search(text):
            problems.append(f"writes a link or markup in the {where}")
        for written, value, places in numbers_in(text, facts):
            if not any(matches(value, places, fact) for fact in known):
                problems.append(f"writes {written} in the {where}, which is not in the facts")
    problems += contradictions(texts, facts)
    sites = {r["site"] for r in facts.get("most_drifted_sites", [])} | {
        r["site"] for r in facts.get("worsening_forecasts", [])
    }
    for i, action in enumerate(summary.actions):
        if action.site is not None and action.site not in sites:
            problems.append(f"action {i + 1} names site {action.site!r}, which is not in the facts")
    return problems


# --- the model ------------------------------------------------------------------------------------


def summarise_with_model(client: Any, model: str, facts: Mapping) -> FleetSummary:
    """Ask the model; return its summary only if it parses, is not a refusal and is grounded.

    Raises ModelFailure (refusal, empty or ungrounded answer), pydantic ValidationError (invalid JSON,
    schema mismatch) or the openai client's errors (timeout, 429, 5xx, connection).
    """
    completion = client.chat.completions.parse(
        model=model,
        messages=[
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user_prompt(dict(facts))},
        ],
        response_format=FleetSummary,
        max_completion_tokens=MAX_ANSWER_TOKENS,
    )
    if not completion.choices:
        raise ModelFailure("empty answer: no choices in the response")
    message = completion.choices[0].message
    if message.refusal:
        raise ModelFailure(f"the model refused: {_clip(message.refusal)}")
    if message.parsed is None:
        raise ModelFailure("empty answer: no content in the response")
    summary = message.parsed.model_copy(update={"source": "model"})
    problems = grounding_problems(summary, facts)
    if problems:
        raise ModelFailure("hallucinated (ungrounded) answer: " + "; ".join(problems[:5])
                           + (f"; and {len(problems) - 5} more" if len(problems) > 5 else ""))
    return summary


def _clip(text: Any, limit: int = 240) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _api_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and error.get("message"):
            return _clip(error["message"])
    return _clip(getattr(exc, "message", None) or exc)


def describe_failure(exc: BaseException, timeout: Any = None) -> str:
    """One line saying exactly what went wrong with the model call."""
    import openai

    if isinstance(exc, ModelFailure):
        return str(exc)
    if isinstance(exc, openai.APITimeoutError):
        limit = getattr(timeout, "read", timeout)
        return "timeout: no answer within " + (f"{limit:g} s" if isinstance(limit, int | float) else "the client timeout")
    if isinstance(exc, openai.RateLimitError):
        return f"rate limited: HTTP 429 from the model endpoint ({_api_message(exc)})"
    if isinstance(exc, openai.APIStatusError):
        kind = "server error" if exc.status_code >= 500 else "request rejected"
        return f"{kind}: HTTP {exc.status_code} from the model endpoint ({_api_message(exc)})"
    if isinstance(exc, openai.APIConnectionError):
        return f"connection failed: {_clip(exc.__cause__ or exc)}"
    if isinstance(exc, openai.LengthFinishReasonError):
        return f"answer cut off at the token limit ({MAX_ANSWER_TOKENS} tokens, finish_reason=length)"
    if isinstance(exc, openai.ContentFilterFinishReasonError):
        return "answer blocked by the content filter (finish_reason=content_filter)"
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_url=False)
        if any(e["type"] == "json_invalid" for e in errors):
            return f"invalid JSON in the answer: {_clip(errors[0]['msg'])}"
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in errors[:3])
        more = f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
        return f"schema mismatch: {_clip(details)}{more}"
    return f"unexpected error: {type(exc).__name__}: {_clip(exc)}"


def _redact(text: str, secret: str | None) -> str:
    """The key out of a problem text in every spelling an error may quote it: httpx quotes an illegal
    header as bytes (b'Bearer sk-...\\n...'), and `_clip` folds whitespace."""
    return redact_secrets(text, [secret])


def summarise(facts: Mapping, client: Any = None, model: str | None = None) -> tuple[FleetSummary, Source, list[str]]:
    """(summary, source, problems). No client: the rules summary. A model failure: the rules summary and
    one problem naming the model and what went wrong. Never raises for a model failure."""
    rules = rule_based_summary(facts)
    if client is None:
        return rules, "rules", []
    model = model or DEFAULT_MODEL
    try:
        return summarise_with_model(client, model, facts), "model", []
    except Exception as exc:  # any model failure: keep the rules summary, say what happened
        problem = f"model {model}: {describe_failure(exc, getattr(client, 'timeout', None))}; used the rules summary"
        return rules, "rules", [_redact(problem, getattr(client, "api_key", None))]


# --- the rules ------------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".") if not float(value).is_integer() else f"{value:,.1f}"


def _plural(n: float, one: str, many: str) -> str:
    return one if n == 1 else many


_URGENCY_ORDER = {"now": 0, "this_week": 1, "later": 2}


def rule_based_summary(facts: Mapping) -> FleetSummary:
    """A deterministic summary from the facts with plain templates (source="rules"); always grounded."""
    cites: dict[str, float] = {}

    def use(path: str, value: Any) -> str:
        cites[path] = float(value)
        return _fmt(value)

    fleet = facts.get("fleet") or {}
    platforms = {p: v for p, v in (facts.get("platforms") or {}).items() if v}
    sites = facts.get("most_drifted_sites") or []
    worsening = facts.get("worsening_forecasts") or []
    trends = facts.get("trends") or {}
    day = facts.get("day", "today")

    def platform_extreme(field: str, worst: str) -> tuple[str, float] | None:
        values = [(p, v[field]) for p, v in platforms.items() if v.get(field) is not None]
        if not values:
            return None
        pick = max if worst == "max" else min
        return pick(values, key=lambda pv: (pv[1], pv[0]))

    has = {k: fleet.get(k) is not None for k in FLEET_FIELDS}
    # Headline: the most urgent fact first.
    if has["vms"] and has["pct_current_golden"]:
        headline = f"{use('fleet.pct_current_golden', fleet['pct_current_golden'])}% of {use('fleet.vms', fleet['vms'])} VMs run the current golden image"
        if has["on_revoked_image"] and fleet["on_revoked_image"]:
            headline += f"; {use('fleet.on_revoked_image', fleet['on_revoked_image'])} still run revoked images."
        elif has["drift_score"]:
            headline += f"; fleet drift score {use('fleet.drift_score', fleet['drift_score'])}."
        else:
            headline += "."
    else:
        headline = f"No fleet totals in the report for {day}."

    paragraphs = []
    overall = []
    if has["vms"]:
        part = f"Across {use('fleet.vms', fleet['vms'])} VMs"
        if has["pct_current_golden"]:
            part += f", {use('fleet.pct_current_golden', fleet['pct_current_golden'])}% run the current golden image"
        if has["on_revoked_image"]:
            n = fleet["on_revoked_image"]
            part += f" and {use('fleet.on_revoked_image', n)} {_plural(n, 'runs', 'run')} a revoked image"
        overall.append(part + ".")
    scores = []
    if has["drift_score"]:
        scores.append(f"the drift score is {use('fleet.drift_score', fleet['drift_score'])} (higher is worse)")
    if has["compliance_score"]:
        scores.append(f"compliance is {use('fleet.compliance_score', fleet['compliance_score'])}%")
    if has["dr_readiness"]:
        scores.append(f"DR readiness is {use('fleet.dr_readiness', fleet['dr_readiness'])}%")
    if scores:
        text = ", ".join(scores[:-1]) + (" and " if len(scores) > 1 else "") + scores[-1]
        overall.append(f"Fleet-wide, {text}.")
    paragraphs.append(" ".join(overall) or f"The fleet report for {day} has no fleet-wide totals.")

    where = []
    worst_p, best_p = platform_extreme("drift_score", "max"), platform_extreme("drift_score", "min")
    if worst_p and best_p and worst_p[0] != best_p[0]:
        p, _ = worst_p
        text = f"By platform, {p} drifts most (drift {use(f'platforms.{p}.drift_score', worst_p[1])}"
        if platforms[p].get("pct_current_golden") is not None:
            text += f", {use(f'platforms.{p}.pct_current_golden', platforms[p]['pct_current_golden'])}% on the current golden image"
        text += f") and {best_p[0]} least (drift {use(f'platforms.{best_p[0]}.drift_score', best_p[1])})."
        where.append(text)
    ranked = [s for s in sites if s.get("drift_score") is not None][:3]
    if ranked:
        named = []
        for s in ranked:
            name = s["site"]
            named.append(f"{name} (drift {use(f'most_drifted_sites.{name}.drift_score', s['drift_score'])})")
        listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
        noun = "site is" if len(named) == 1 else "sites are"
        where.append(f"The most drifted {noun} {listed}.")
    if where:
        paragraphs.append(" ".join(where))

    total = trends.get("worsening_total", len(worsening))
    if worsening and worsening[0].get("forecast_next_week") is not None:
        w = worsening[0]
        key = f"worsening_forecasts.{w['site']}/{w['environment']}"
        text = (f"{use('trends.worsening_total', total)} site and environment {_plural(total, 'pair is', 'pairs are')} "
                f"getting worse; the worst, {w['site']}/{w['environment']}, is forecast to reach drift "
                f"{use(f'{key}.forecast_next_week', w['forecast_next_week'])} next week")
        if w.get("change_per_week") is not None:
            text += f" (up {use(f'{key}.change_per_week', w['change_per_week'])} per week)"
        paragraphs.append(text + ".")
    elif trends.get("history_days", 0) < trends.get("min_history_days", MIN_TREND_DAYS):
        days = trends.get("history_days", 0)
        paragraphs.append(
            f"No trend yet: forecasts need {use('trends.min_history_days', trends.get('min_history_days', MIN_TREND_DAYS))} "
            f"days of history and there {_plural(days, 'is', 'are')} {use('trends.history_days', days)}."
        )
    else:
        paragraphs.append("No site and environment pair is getting worse.")

    actions: list[Action] = []
    if has["on_revoked_image"] and fleet["on_revoked_image"]:
        n = fleet["on_revoked_image"]
        why = f"{use('fleet.on_revoked_image', n)} {_plural(n, 'VM runs an image that was', 'VMs run images that were')} revoked"
        most = platform_extreme("on_revoked_image", "max")
        if most and most[1]:
            why += f"; {most[0]} has the most ({use(f'platforms.{most[0]}.on_revoked_image', most[1])})"
        actions.append(Action(title="Replace the VMs running revoked images", why=why + ".", urgency="now"))
    top = ranked[0] if ranked else None
    if top and top["drift_score"] > 0:
        s = top["site"]
        why = f"{s} is the most drifted site (drift {use(f'most_drifted_sites.{s}.drift_score', top['drift_score'])}"
        if top.get("pct_current_golden") is not None:
            why += f", {use(f'most_drifted_sites.{s}.pct_current_golden', top['pct_current_golden'])}% on the current golden image"
        if top.get("on_revoked_image"):
            why += f", {use(f'most_drifted_sites.{s}.on_revoked_image', top['on_revoked_image'])} on revoked images"
        actions.append(Action(title=f"Rebuild {s} onto the current golden images", why=why + ").", site=s, urgency="this_week"))
    if worsening and worsening[0].get("forecast_next_week") is not None:
        w = worsening[0]
        key = f"worsening_forecasts.{w['site']}/{w['environment']}"
        why = f"Drift at {w['site']}/{w['environment']} is forecast to reach {use(f'{key}.forecast_next_week', w['forecast_next_week'])} next week"
        if w.get("change_per_week") is not None:
            why += f", up {use(f'{key}.change_per_week', w['change_per_week'])} per week"
        actions.append(Action(title=f"Stop the drift rising at {w['site']} {w['environment']}", why=why + ".",
                              site=w["site"], urgency="this_week"))
    low_dr = platform_extreme("dr_readiness", "min")
    if low_dr and low_dr[1] < 100:
        p, value = low_dr
        actions.append(Action(
            title=f"Raise DR readiness on {p}",
            why=f"Only {use(f'platforms.{p}.dr_readiness', value)}% of {p} VMs are ready for disaster recovery, the lowest of any platform.",
            platform=p, urgency="this_week" if value < 50 else "later",
        ))
    low_c = platform_extreme("compliance_score", "min")
    if low_c and low_c[1] < 100:
        p, value = low_c
        actions.append(Action(
            title=f"Close the compliance gaps on {p}",
            why=f"{p} passes {use(f'platforms.{p}.compliance_score', value)}% of its weighted compliance controls, the lowest of any platform.",
            platform=p, urgency="this_week" if value < 80 else "later",
        ))
    if not actions:
        actions.append(Action(title="No action needed today", why="Nothing in today's report needs attention.", urgency="later"))
    actions = sorted(actions, key=lambda a: _URGENCY_ORDER[a.urgency])[:5]

    if len(headline) > HEADLINE_MAX:  # only with absurd numbers; keep the schema's promise
        headline = headline[: HEADLINE_MAX - 3].rstrip() + "..."
    return FleetSummary(
        headline=headline,
        paragraphs=paragraphs[:3],
        actions=actions,
        cites=[Cite(name=name, value=value) for name, value in cites.items()],
        source="rules",
    )


# --- reading it back -------------------------------------------------------------------------------


def stored_summary(wh: Any, day: date | str) -> dict | None:
    """The fleet_summary row of a day as the dashboard shows it, or None before the asset has run.

    Keys: day, source, model, headline, paragraphs, actions (dicts), cites, problems (list), prompt_version.
    """
    if not wh.exists("fleet_summary", day):
        return None
    row = wh.read("fleet_summary", day).to_pylist()[0]
    body = json.loads(row.pop("body") or "{}")
    row.pop("facts", None)
    return {**row, "problems": list(row.get("problems") or []), "paragraphs": body.get("paragraphs", []),
            "actions": body.get("actions", []), "cites": body.get("cites", [])}
