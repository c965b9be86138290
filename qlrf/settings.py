"""Runtime settings from the environment, read when called (never at import time).

Every variable is documented in the README's configuration table; defaults give the embedded
default: everything under ./var, SQLite Dagster instance, Parquet on local disk, the sample estate,
the in-process executor and Dagster's default run launcher.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from qlrf.envparse import choice, environ, positive_int, redact_url, text
from qlrf.platforms import PLATFORMS

# How a run executes its steps (pipelines/definitions.py). in_process is the default because a
# subprocess per step costs ~12 s for five small assets here against ~3 s in process (platform notes);
# celery, k8s and docker need their dagster-* package installed.
EXECUTORS = ("in_process", "multiprocess", "celery", "k8s", "docker")
# Where a launched run goes (pipelines/instance.py writes it into dagster.yaml): default = a local
# subprocess; k8s and docker need dagster-k8s / dagster-docker installed on the instance.
RUN_LAUNCHERS = ("default", "k8s", "docker")
# How `qlrf run` runs each partition (pipelines/modes.py): launch = through the code location, as the
# Dagster UI does (its runs show in the UI's timeline); in_process = in the `qlrf run` process itself,
# several times faster but without the code-location origin the UI's timeline needs.
RUN_MODES = ("launch", "in_process")


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


def source_variable(platform: str) -> str:
    return f"QLRF_SOURCE_{platform.upper()}"


def parse_source(env: Mapping[str, str], platform: str) -> str:
    """sample | live | files:<dir> for one platform; unset means sample."""
    name = source_variable(platform)
    value = env.get(name, "sample")
    if value not in ("sample", "live") and not value.startswith("files:"):
        raise ValueError(f"{name}={value!r}: expected sample, live or files:<dir>")
    return value


def executor_setting(env: Mapping[str, str] | None = None) -> str:
    """QLRF_EXECUTOR on its own: the definitions read only this, so a bad unrelated variable fails
    the run that uses it, not the loading of the code location."""
    return choice(environ(env), "QLRF_EXECUTOR", EXECUTORS, "in_process")


def run_launcher_setting(env: Mapping[str, str] | None = None) -> str:
    return choice(environ(env), "QLRF_RUN_LAUNCHER", RUN_LAUNCHERS, "default")


def run_mode_setting(env: Mapping[str, str] | None = None) -> str:
    """QLRF_RUN_MODE on its own: only `qlrf run` reads it, so a bad value stops that command, not the
    code location."""
    return choice(environ(env), "QLRF_RUN_MODE", RUN_MODES, "launch")


def postgres_url_setting(env: Mapping[str, str]) -> str | None:
    """QLRF_POSTGRES_URL, checked here so that a malformed one fails naming the variable: SQLAlchemy's
    and urllib's own errors print the whole URL, password included."""
    value = text(env, "QLRF_POSTGRES_URL")
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError(f"QLRF_POSTGRES_URL: not a valid URL (shown as {redact_url(value)!r})") from None
    if not parts.scheme.startswith("postgres"):
        raise ValueError("QLRF_POSTGRES_URL: expected postgresql://user:password@host[:port]/database")
    return value


def warehouse_setting(env: Mapping[str, str], home: Path) -> str:
    """QLRF_WAREHOUSE; an s3:// one is checked here with its QLRF_S3_* settings, so a typo fails the
    command that reads the settings, naming the variable, not a run halfway through."""
    value = text(env, "QLRF_WAREHOUSE") or str(home / "warehouse")
    if value.lower().startswith("s3://"):
        from qlrf.warehouse_s3 import S3Options, parse_s3_uri  # pyarrow: only when the warehouse is on S3

        parse_s3_uri(value)
        S3Options.from_env(env)
    return value


def _optional_path(env: Mapping[str, str], name: str) -> Path | None:
    value = text(env, name)
    return Path(value) if value else None


@dataclass(frozen=True)
class Settings:
    home: Path
    warehouse: str
    estate_dir: Path
    golden_dir: Path | None
    tag_mapping: Path | None
    sample_seed: int
    sources: dict[str, str]
    postgres_url: str | None = field(repr=False)  # holds the password: see postgres_shown
    dagster_home: Path
    executor: str = "in_process"
    run_launcher: str = "default"
    run_launcher_config: Path | None = None  # YAML: the launcher's own settings (pipelines/instance.py)

    @property
    def postgres_shown(self) -> str | None:
        """The Postgres URL as any message may show it: scheme, host and port (no user, password, database)."""
        return redact_url(self.postgres_url) if self.postgres_url else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, platforms: tuple[str, ...] = PLATFORMS) -> Settings:
        """``platforms``: whose QLRF_SOURCE_<PLATFORM> to read (the registry's, unless a test extends it)."""
        env = environ(env)
        home = Path(text(env, "QLRF_HOME") or project_root() / "var").resolve()
        return cls(
            home=home,
            warehouse=warehouse_setting(env, home),
            estate_dir=Path(text(env, "QLRF_ESTATE_DIR") or home / "estate"),
            golden_dir=_optional_path(env, "QLRF_GOLDEN_DIR"),
            tag_mapping=_optional_path(env, "QLRF_TAG_MAPPING"),
            sample_seed=positive_int(text(env, "QLRF_SAMPLE_SEED", "7"), "QLRF_SAMPLE_SEED", minimum=0),
            sources={platform: parse_source(env, platform) for platform in platforms},
            postgres_url=postgres_url_setting(env),
            dagster_home=Path(text(env, "DAGSTER_HOME") or home / "dagster"),
            executor=executor_setting(env),
            run_launcher=run_launcher_setting(env),
            run_launcher_config=_optional_path(env, "QLRF_RUN_LAUNCHER_CONFIG"),
        )
