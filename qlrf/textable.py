"""Plain-text tables for the CLI: a header row, and columns as wide as their widest cell.

Fixed widths let long values (a 24-character identity, a 71-character plan hash) run into the next
column; sizing each column from its content, with two spaces between columns, means they never do.
Plain text, not box drawing, so the output stays greppable and pastes into tickets unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

GAP = "  "


def cell(value: object) -> str:
    """A value as a cell: empty and None read as "-", so a blank never shifts the eye to the next column."""
    text = "" if value is None else " ".join(str(value).split())
    return text or "-"


def table_lines(headers: Sequence[str], rows: Iterable[Sequence[object]], right: Iterable[int] = ()) -> list[str]:
    """Header plus one line per row; columns listed in `right` (numbers) are right-aligned."""
    body = [[cell(v) for v in row] for row in rows]
    for row in body:
        if len(row) != len(headers):
            raise ValueError(f"a row has {len(row)} cells for {len(headers)} columns: {row[:3]}")
    grid = [list(headers), *body]
    widths = [max(len(r[i]) for r in grid) for i in range(len(headers))]
    right_aligned = set(right)
    return [
        GAP.join(v.rjust(w) if i in right_aligned else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True))).rstrip()
        for r in grid
    ]
