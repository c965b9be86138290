"""Version math for golden images: order versions the way image pipelines number them."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+)|([A-Za-z]+)")


def version_key(version: str) -> tuple:
    """Sort key: numeric parts numerically, so 1.10.0 > 1.9.3; a pre-release sorts before its release."""
    core, _, pre = str(version).lstrip("vV").partition("-")
    parts = [(0, int(n), "") if n else (1, 0, s.lower()) for n, s in _PART.findall(core)]
    while parts and parts[-1] == (0, 0, ""):  # 3.0 == 3.0.0
        parts.pop()
    return (tuple(parts), (1, "") if not pre else (0, pre))


def sort_versions(versions: list[str]) -> list[str]:
    return sorted(versions, key=version_key)
