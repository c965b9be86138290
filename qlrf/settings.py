"""Runtime settings from the environment, read when called (never at import time).

Every variable is documented in the README's configuration table; defaults give the embedded
default: everything under ./var, SQLite Dagster instance, Parquet on local disk, the sample estate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from qlrf.inventory.contract import PLATFORMS


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def shown(location: str | Path, cwd: Path | None = None) -> str:
    """A path as a person should read it in output: relative when it is below the working directory.

    Reports then say `var/warehouse`, not one machine's absolute checkout path; URIs (s3://...) are kept.
    """
    text = str(location)
    if "://" in text:
        return text
    path, base = Path(text).resolve(), (cwd or Path.cwd()).resolve()
    return str(path.relative_to(base)) if path.is_relative_to(base) else text


@dataclass(frozen=True)
class Settings:
    home: Path
    warehouse: str
    estate_dir: Path
    golden_dir: Path | None
    tag_mapping: Path | None
    sample_seed: int
    sources: dict[str, str]
    postgres_url: str | None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        home = Path(env.get("QLRF_HOME") or project_root() / "var").resolve()
        sources = {}
        for platform in PLATFORMS:
            value = env.get(f"QLRF_SOURCE_{platform.upper()}", "sample")
            if value not in ("sample", "live") and not value.startswith("files:"):
                raise ValueError(f"QLRF_SOURCE_{platform.upper()}={value!r}: expected sample, live or files:<dir>")
            sources[platform] = value
        return cls(
            home=home,
            warehouse=env.get("QLRF_WAREHOUSE") or str(home / "warehouse"),
            estate_dir=Path(env.get("QLRF_ESTATE_DIR") or home / "estate"),
            golden_dir=Path(env["QLRF_GOLDEN_DIR"]) if env.get("QLRF_GOLDEN_DIR") else None,
            tag_mapping=Path(env["QLRF_TAG_MAPPING"]) if env.get("QLRF_TAG_MAPPING") else None,
            sample_seed=int(env.get("QLRF_SAMPLE_SEED", "7")),
            sources=sources,
            postgres_url=env.get("QLRF_POSTGRES_URL") or None,
        )

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.home / "dagster")
