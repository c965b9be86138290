"""Screening (issue 10 item 6a): is the intent usable, and does any text try to instruct the system?

Two kinds of check, both deterministic and model-free:

* **Intent checks** (:func:`check_intent`): empty, longer than ``INTENT_MAX_CHARS``, binary or
  control characters, non-English. Each is a refusal naming the check; nothing is proposed. A
  non-English intent is refused ("only English is supported"), not answered read-only: the router's
  corpus and the tools' vocabulary are English, so a guess would be a wrong answer with confidence.
* **Injection screening** (:func:`screen_text`, :func:`screen_values`): instruction-like text in the
  intent and in every string a tool returned (VM names, tags, SBOM fields, alert texts). The
  patterns are data (:data:`INJECTION_PATTERNS`), each with a reason a reviewer can read. Hits are
  flags, never edits: the data stays data. What a flag *does* is the orchestrator's rule: an
  injected intent creates no task, injected tool results may not widen the scope.

Near misses matter as much as hits: ordinary VM names and tags (``web-prod-01``,
``approval-svc``, ``system-monitor``) must pass, so every pattern needs a phrase, not a word.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from qlrf.ai.taskspec import INTENT_MAX_CHARS

SCREEN_STEP = "screen"
TOOL_SCREEN_STEP = "screen_tools"
MAX_HITS = 20  # enough to show a reviewer the attempt; a flood of hits is one finding, not a thousand


@dataclass(frozen=True)
class InjectionPattern:
    """One kind of instruction-like text: its name, the regular expression, and why it is suspicious."""

    name: str
    regex: re.Pattern[str]
    why: str


def _p(name: str, pattern: str, why: str) -> InjectionPattern:
    return InjectionPattern(name, re.compile(pattern, re.IGNORECASE), why)


_WS = r"[\s_\-.:]+"  # words in names and tags are joined by spaces, dashes, dots, underscores

INJECTION_PATTERNS: tuple[InjectionPattern, ...] = (
    _p("ignore_instructions",
       rf"\b(ignore|disregard|forget|override|bypass){_WS}(all{_WS}|any{_WS}|the{_WS}|your{_WS}|previous{_WS}|prior{_WS}|above{_WS}|earlier{_WS})*"
       r"(instructions?|prompts?|rules|guidelines|directives|polic(y|ies)|guardrails|safety)\b",
       "asks to ignore instructions, rules or policy"),
    _p("role_switch", rf"\byou{_WS}are{_WS}now\b|\bact{_WS}as{_WS}(an?{_WS})?(admin|root|system|developer|unrestricted)\b"
       rf"|\bpretend{_WS}(to{_WS}be|you{_WS}are)\b|\bnew{_WS}instructions?\b|\bnew{_WS}(rules?|directives?|policy)\s*[:=]"
       rf"|\b(user|i|caller|requester){_WS}(has|have|holds?){_WS}(admin|root|full|elevated){_WS}(rights|privileges|access)\b",
       "tries to give the assistant a new role or new instructions"),
    _p("role_marker", r"(^|[\s\"'{(\[])(system|assistant|developer)\s*:\s*\S|<\|?(im[_ ]start|im[_ ]end|system|endoftext)\|?>"
       r"|\[/?(INST|SYS)\]|<</?SYS>>|###\s*(system|instruction)",
       "carries a chat role marker (system:, <|im_start|>, [INST]...)"),
    _p("approve_this", rf"\b(auto{_WS}?)?approve{_WS}(this|it|the{_WS}task|immediately|now|automatically|all)\b"
       rf"|\b(skip|bypass|waive){_WS}(the{_WS})?(human{_WS})?(approval|review)\b|\bself{_WS}approve"
       rf"|\b(approval|review|sign{_WS}off){_WS}(is{_WS})?not{_WS}(needed|required|necessary)\b|\bno{_WS}approval{_WS}(needed|required)\b",
       "asks for the task to be approved or the approval skipped"),
    _p("set_autonomy", rf"\b(set|change|switch|raise|use){_WS}(the{_WS})?autonomy|\bfull{_WS}auto(nomy)?{_WS}(mode|in|on|for)\b"
       rf"|\bautonomy[_\s]*mode[\"']?\s*[:=]|\bapproval[_\s]*required[\"']?\s*[:=]\s*[\"']?(false|0|no)\b",
       "tries to set the autonomy mode or approval"),
    _p("set_risk", rf"\b(model{_WS})?risk{_WS}(level{_WS})?(is|should{_WS}be|must{_WS}be|=|:){_WS}?(low|none|minimal)\b"
       rf"|\b(do{_WS}not|don'?t|never){_WS}(let{_WS})?(the{_WS})?(rules?|policy|gate){_WS}(raise|change|override)",
       "tries to set its own risk level or keep the rules from raising it"),
    _p("disregard_policy", rf"\b(disable|turn{_WS}off|ignore|skip|bypass){_WS}(the{_WS})?(gate|opa|rego|policy|guardrails?|validation)\b",
       "asks to disable the policy gate or validation"),
    _p("tool_request", rf"\b(call|invoke|run|execute|use){_WS}(the{_WS})?(tool|function){_WS}\w+|\bfunction[_ ]call\b|\"tool[_ ]calls\"\s*:"
       r"|\btool\s*:\s*\w+( \w+)*\s*\(",  # underscores are spaces here: approve_task( -> approve task(
       "asks for a tool to be called"),
    _p("widen_scope", rf"\b(also|additionally|instead){_WS}(include|patch|target|remediate|rebuild|add){_WS}(all|every|the{_WS}whole|prod)\b"
       rf"|\b(expand|widen|extend){_WS}(the{_WS})?scope\b|\b(widen|expand|extend|broaden){_WS}(that|it|this|them){_WS}to\b"
       rf"|\b(limits?|rules?|restrictions?|polic(y|ies)){_WS}no{_WS}longer{_WS}apply\b"
       r"|\b(environment|site|platform|scope)\s*[:=]\s*[\"']?\*",
       "asks for a wider scope than the question named"),
    _p("exfiltrate", rf"\b(reveal|print|show|repeat|leak){_WS}(your{_WS}|the{_WS})?(system{_WS}prompt|api{_WS}key|secret|credentials|password)",
       "asks for the prompt or secrets"),
)

# Characters that hide or reorder text: zero-width, bidi controls, tag characters, BOM.
_HIDDEN = frozenset(
    [0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0x180E, 0x061C]
    + list(range(0x202A, 0x202F)) + list(range(0x2066, 0x206A))
)
_BASE64_TOKEN = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")
_BASE64URL_TOKEN = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9_-]{24,}={0,2}(?![A-Za-z0-9+/=_-])")


@dataclass(frozen=True)
class Hit:
    """One suspicious passage: which check, where (``intent`` or a tool result's field path), an excerpt."""

    check: str
    where: str
    excerpt: str
    why: str

    def line(self) -> str:
        return f"{self.where}: {self.check} ({self.why}): {self.excerpt!r}"

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "where": self.where, "excerpt": self.excerpt, "why": self.why}


def _excerpt(text: str, start: int, end: int, pad: int = 20) -> str:
    piece = text[max(0, start - pad): end + pad]
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in piece)[:120]


def hidden_characters(text: str) -> list[str]:
    """Code points that hide or reorder text (zero-width, bidi, tag characters), as U+XXXX."""
    return [f"U+{ord(ch):04X}" for ch in text if ord(ch) in _HIDDEN or 0xE0000 <= ord(ch) <= 0xE007F]


def _decoded_text(token: str) -> str | None:
    """The token decoded as base64 (standard or URL-safe) when that gives mostly printable text."""
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        printable = sum(ch.isprintable() or ch in "\n\t" for ch in text)
        letters = sum(ch.isalpha() for ch in text)
        if text and printable / len(text) > 0.95 and letters / len(text) > 0.5 and " " in text:
            return text
    return None


def screen_text(text: str, where: str, *, depth: int = 0) -> list[Hit]:
    """Every suspicious passage of one string (patterns, hidden characters, encoded instructions)."""
    hits: list[Hit] = []
    hidden = hidden_characters(text)
    if hidden:
        hits.append(Hit("hidden_characters", where, ", ".join(sorted(set(hidden)))[:120],
                        "invisible or direction-changing characters can hide instructions from a reviewer"))
    visible = "".join(ch for ch in text if ord(ch) not in _HIDDEN)
    spaced = visible.replace("_", " ")  # snake_case names hide phrases from word boundaries
    for pattern in INJECTION_PATTERNS:
        match = pattern.regex.search(spaced)
        if match:
            hits.append(Hit(pattern.name, where, _excerpt(visible, match.start(), match.end()), pattern.why))
    if depth == 0:
        for regex in (_BASE64_TOKEN, _BASE64URL_TOKEN):
            for match in regex.finditer(visible):
                decoded = _decoded_text(match.group())
                if decoded is not None:
                    inner = screen_text(decoded, where, depth=1)
                    why = "a base64 blob that decodes to text" + (
                        f" with {', '.join(sorted({h.check for h in inner}))}" if inner else "")
                    hits.append(Hit("encoded_text", where, _excerpt(visible, match.start(), match.end(), 0), why))
                    break
    return hits


def screen_values(value: Any, where: str = "result") -> list[Hit]:
    """Screen every string inside a tool result (dicts, lists, scalars), keys included, with field paths."""
    hits: list[Hit] = []
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack and len(hits) < MAX_HITS:
        path, item = stack.pop()
        if isinstance(item, str):
            hits.extend(screen_text(item, path))
        elif isinstance(item, Mapping):
            for key, sub in item.items():
                if isinstance(key, str) and key:
                    hits.extend(screen_text(key, f"{path}.<key>"))
                stack.append((f"{path}.{key}", sub))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", sub) for i, sub in enumerate(item))
    return hits[:MAX_HITS]


# --- the intent's own checks ----------------------------------------------------------------------

# Function words of languages operators might write in, none of them English words. Two or more of
# these, and no English function word, reads as non-English.
_FOREIGN_WORDS = frozenset(
    ["der", "die", "das", "und", "nicht", "ist", "mit", "welche", "alle", "le", "les", "des", "est", "une", "sont", "dans", "quels", "quelles", "el", "los", "las", "una", "por", "para", "cuáles", "qué", "está", "gli", "della", "sono", "quali", "tutti", "het", "een", "zijn", "welke", "och", "är", "som", "på", "ikke", "og", "er"]
)
_ENGLISH_WORDS = frozenset(
    ["the", "a", "an", "and", "or", "of", "in", "on", "at", "for", "to", "from", "by", "with", "which", "what", "who", "where", "when", "how", "why", "is", "are", "was", "were", "do", "does", "did", "can", "could", "should", "would", "will", "show", "list", "give", "tell", "me", "my", "our", "all", "any", "every", "still", "run", "running", "patch", "fix", "open", "rebuild", "drill", "failover", "report"]
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def _non_latin_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    foreign = sum(1 for ch in letters if not unicodedata.name(ch, "").startswith("LATIN"))
    return foreign / len(letters)


def language_problem(intent: str) -> str | None:
    """Why the intent does not read as English (None when it does)."""
    if _non_latin_share(intent) > 0.3:
        return "is not in English (mostly non-Latin letters): only English is supported"
    words = [w.lower() for w in _WORD.findall(intent)]
    foreign = [w for w in words if w in _FOREIGN_WORDS]
    english = [w for w in words if w in _ENGLISH_WORDS]
    if len(foreign) >= 2 and len(foreign) > len(english):
        return f"does not read as English ({', '.join(sorted(set(foreign))[:4])}...): only English is supported"
    return None


def check_intent(intent: Any, max_chars: int = INTENT_MAX_CHARS) -> str | None:
    """Why the intent cannot be screened further (one line naming the check), or None when it can."""
    if not isinstance(intent, str):
        return f"intent: must be text, got {type(intent).__name__}"
    if not intent.strip():
        return "intent: is empty: ask a question or describe the task"
    if len(intent) > max_chars:
        return (f"intent: {len(intent)} characters is over the limit of {max_chars}: "
                "shorten it (an operator's question, not a document); nothing was read past the limit")
    if "\x00" in intent or "\ufffd" in intent:
        return "intent: contains binary data (NUL or undecodable bytes)"
    controls = sorted({f"U+{ord(ch):04X}" for ch in intent
                       if unicodedata.category(ch) == "Cc" and ch not in "\n\t\r"})
    if controls:
        return f"intent: contains control characters ({', '.join(controls[:5])})"
    problem = language_problem(intent)
    return f"intent: {problem}" if problem else None


def summarise(hits: Iterable[Hit], limit: int = 3) -> str:
    """A one-line account of the hits for a Step's detail."""
    hits = list(hits)
    shown = "; ".join(h.line() for h in hits[:limit])
    more = f" (+{len(hits) - limit} more)" if len(hits) > limit else ""
    return f"{len(hits)} injection-like passage(s): {shown}{more}"


__all__ = [
    "INJECTION_PATTERNS",
    "SCREEN_STEP",
    "TOOL_SCREEN_STEP",
    "Hit",
    "InjectionPattern",
    "check_intent",
    "hidden_characters",
    "language_problem",
    "screen_text",
    "screen_values",
    "summarise",
]
