"""The tool registry as data, and the per-conversation ToolBox that runs tools for a model.

A Tool is a record (name, description for the model, pydantic parameter model, MCP-style hints,
implementation), so adding a tool is adding data, and the schema a model sees is the very model
that validates its arguments. The ToolBox is the only way a model's call reaches an implementation:
it validates, refuses a repeated identical call (a looping model), caps the result (rows and bytes,
saying so), turns every failure into a structured error result, and writes every call, refused or
not, to the audit log, so a reviewer can replay what the model looked at.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from qlrf.ai.tools.context import ToolContext, ToolInputError
from qlrf.remediation.audit import AuditLog
from qlrf.warehouse import PartitionMissing

AUDIT_KIND = "ai_tool_call"
MAX_ROWS = 50
MAX_BYTES = 16_000


@dataclass(frozen=True)
class Tool:
    """One tool: what the model is told, what it may send, and what runs."""

    name: str
    description: str
    parameters: type[BaseModel]
    run: Callable[[ToolContext, Any], dict]
    read_only: bool = True
    destructive: bool = False
    idempotent: bool = True

    def definition(self) -> dict:
        """The MCP-shaped description a client hands the model (inputSchema plus hint annotations)."""
        return {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.parameters.model_json_schema(),
            "annotations": {"readOnlyHint": self.read_only, "destructiveHint": self.destructive,
                            "idempotentHint": self.idempotent},
        }


def _jsonable(value: Any) -> Any:
    """Timestamps and dates as ISO text, so a result is plain JSON the model and the audit can hold."""
    return json.loads(json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, date | datetime) else str(v)))


def _cap(result: dict, max_rows: int, max_bytes: int) -> dict:
    """Cut `rows` to `max_rows`, then drop rows until the whole result, note included, fits `max_bytes`.

    The note (`truncated`) says how many rows there were and which limit cut them, so the model
    knows its view is partial and can narrow the query instead of concluding from a fragment."""
    rows = result.get("rows")
    if not isinstance(rows, list) or (len(rows) <= max_rows and len(json.dumps(result)) <= max_bytes):
        return result
    kept = rows[:max_rows]
    while True:
        reason = "row limit" if len(kept) == min(len(rows), max_rows) else "byte limit"
        capped = {**result, "rows": kept,
                  "truncated": {"rows_total": len(rows), "rows_returned": len(kept), "reason": reason,
                                "max_rows": max_rows, "max_bytes": max_bytes}}
        if not kept or len(json.dumps(capped)) <= max_bytes:
            return capped
        kept = kept[: len(kept) * 3 // 4]


def _error(tool: str, reason: str) -> dict:
    return {"tool": tool, "status": "error", "error": reason}


def _validation_reason(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}" for e in exc.errors()]
    return "arguments do not match the schema: " + "; ".join(parts)


@dataclass
class ToolBox:
    """The tools one conversation may use, with its memory of calls already made."""

    tools: Iterable[Tool]
    context: ToolContext
    audit: AuditLog
    conversation: str
    actor: str = "ai"
    max_rows: int = MAX_ROWS
    max_bytes: int = MAX_BYTES
    _by_name: dict[str, Tool] = field(init=False, repr=False)
    _seen: set[str] = field(init=False, default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {t.name: t for t in self.tools}

    def definitions(self) -> list[dict]:
        return [t.definition() for t in self._by_name.values()]

    def call(self, name: str, arguments: dict | str | None = None) -> dict:
        """Run one model call; always a dict with `status` ok/error/refused, never an exception."""
        result = self._result(name, arguments)
        self._record(name, arguments, result)
        return result

    def _result(self, name: str, arguments: dict | str | None) -> dict:
        tool = self._by_name.get(name)
        if tool is None:
            return _error(name, f"unknown tool {name!r}; tools: {', '.join(sorted(self._by_name))}")
        try:
            raw = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
            params = tool.parameters.model_validate_json(raw)
        except ValidationError as exc:
            return _error(name, _validation_reason(exc))
        except (TypeError, ValueError) as exc:
            return _error(name, f"arguments are not JSON: {exc}")
        key = f"{name}:{params.model_dump_json()}"
        if key in self._seen:
            return {"tool": name, "status": "refused",
                    "error": "the same call with the same arguments was already made in this conversation: "
                             "use its result, or change the arguments"}
        self._seen.add(key)
        try:
            body = _jsonable(tool.run(self.context, params))
        except (PartitionMissing, ToolInputError, LookupError) as exc:
            return _error(name, str(exc))
        except Exception as exc:  # a tool failure is the model's information, not the caller's crash
            return _error(name, f"{type(exc).__name__}: {exc}")
        return _cap({"tool": name, "status": "ok", **body}, self.max_rows, self.max_bytes)

    def _record(self, name: str, arguments: dict | str | None, result: dict) -> None:
        data = {
            "tool": name,
            "arguments": _jsonable(arguments) if not isinstance(arguments, str) else arguments,
            "status": result["status"],
            "error": result.get("error"),
            "rows": len(result["rows"]) if isinstance(result.get("rows"), list) else None,
            "truncated": result.get("truncated"),
            "facts": result.get("facts"),
        }
        self.audit.append(AUDIT_KIND, self.actor, f"conversation:{self.conversation}", data)
