"""Fault catalogue, injection: text from tags and models reaches people only as data (escaped Markdown,
all-clear claims checked against the facts)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboards.components.text import safe
from qlrf.db import database_url
from tests.sensors.support import PENDING, make_plan, store_at

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")

pytestmark = pytest.mark.fault

@pytest.mark.parametrize("hostile", [
    "[click](https://evil.example)",
    "![x](https://tracker.example/p.png)",
    "<script>alert(1)</script>",
    "**bold** _it_ `code` ~~gone~~ $x^2$ | table |",
    ":red[alarm]",
])
def test_markup_is_escaped(hostile):
    text = safe(hostile)
    # No markup opener is left without its escaping backslash.
    assert not re.search(r"(?<!\\)(\]\(|<s|\*\*|`c|~~|\$x|\[alarm)", text)


def test_line_breaks_and_control_characters_cannot_start_new_blocks():
    assert safe("site\n# heading\n- item\x07") == r"site \# heading - item "


def test_plain_text_is_unchanged():
    assert safe("syd1 prod: 12.5% on revoked images") == "syd1 prod: 12.5% on revoked images"


def test_tag_text_is_shown_as_text_never_as_a_link_or_image(isolated_env, monkeypatch, tmp_path):
    """A site tag is attacker-controlled: it must not become a live link or a remote image on the page."""
    monkeypatch.setenv("QLRF_WAREHOUSE", str(tmp_path / "no-warehouse"))
    hostile = "lon1 [approve me](https://evil.example) ![t](https://tracker.example/p.png) <img src=x>"
    store_at(database_url()).propose(
        make_plan("rp-hostile", instances=2, site=hostile), "sensor:drift_findings_sensor", PENDING
    )
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.switch_page("app_pages/approvals.py").run()
    assert not at.exception
    page = " ".join(m.value for m in at.markdown)
    assert "approve me" in page and "evil.example" in page  # the text is shown...
    # ...but no link, image or HTML survives: every opener is backslash-escaped.
    assert not re.search(r"(?<!\\)\]\(|(?<!\\)<img|(?<!\\)!\[", page)
    assert r"\[approve me\]\(https://evil.example\)" in page
