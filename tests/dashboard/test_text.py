"""Estate text placed in Markdown is escaped (dashboards/components/text.py)."""

from __future__ import annotations

import re

import pytest

from dashboards.components.text import safe


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
