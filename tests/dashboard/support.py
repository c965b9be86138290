"""Shared helpers for the dashboard's AppTest tests."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
PAGES = ("overview", "drift", "compliance", "dr", "sites", "images", "copilot", "approvals", "audit", "settings")


def app(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query or {})
    return at


def open_page(name: str, query: dict[str, str] | None = None) -> AppTest:
    """The app run once, then switched to `name` (every page runs under the entry file's filters)."""
    at = app(query).run()
    assert not at.exception, [e.value for e in at.exception]
    if name != "overview":
        at.switch_page(f"app_pages/{name}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    """Everything the page says in markdown, captions, alerts and headings, as one string (unescaped)."""
    parts = [e.value for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success")
             for e in getattr(at, kind)]
    return " ".join(str(p) for p in parts).replace("\\", "")


def tables(at: AppTest, column: str) -> list:
    """The page's dataframes that have `column`, in page order (AppTest does not expose dataframe keys)."""
    return [d.value for d in at.dataframe if hasattr(d.value, "columns") and column in d.value.columns]
