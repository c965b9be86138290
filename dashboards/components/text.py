"""Text from the estate (tags, image names, plan reasons, model answers) reaches people only as data.

Streamlit renders Markdown: a tag value such as ``[click](https://evil)`` or ``![x](https://tracker)``
would become a live link or a remote image. Every value that did not come from this code goes
through `safe()` before it is placed in Markdown.
"""

from __future__ import annotations

import re

# The characters that start links, images, HTML, emphasis, code, headings, tables, strike-through and
# Streamlit's :color[...] / LaTeX ($) syntax. Line breaks are dropped, so list markers cannot start a line.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#|~$!])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def safe(value: object) -> str:
    """`value` as literal Markdown text: every markup character escaped, control characters and line breaks dropped."""
    text = _CONTROL.sub(" ", str(value)).replace("\n", " ")
    return _SPECIAL.sub(r"\\\1", text)
