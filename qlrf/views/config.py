"""The effective configuration as a person may see it: paths relative, secrets never shown.

Why an allow-list: a variable this module does not know could hold anything (an API key, a
webhook with a token in it), so its value is never printed, only that it is set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from qlrf.envparse import environ
from qlrf.platforms import PLATFORMS
from qlrf.remediation.policy import RemediationPolicy
from qlrf.settings import Settings, shown, source_variable
from qlrf.views.base import unreadable
from qlrf.warehouse import Warehouse

PREFIXES = ("QLRF_", "DAGSTER_", "OPENAI_", "AWS_", "AZURE_", "GOOGLE_", "VSPHERE_")


def effective(settings: Settings, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> pd.DataFrame:
    """(setting, variable, value, source): what the pipeline and the dashboard run with."""
    env = environ(env)

    def src(name: str) -> str:
        return "environment" if (env.get(name) or "").strip() else "default"

    rows = [
        ("home", "QLRF_HOME", shown(settings.home, cwd)),
        ("warehouse", "QLRF_WAREHOUSE", shown(settings.warehouse, cwd)),
        ("estate directory", "QLRF_ESTATE_DIR", shown(settings.estate_dir, cwd)),
        ("golden image directory", "QLRF_GOLDEN_DIR", shown(settings.golden_dir, cwd) if settings.golden_dir else "(sample estate)"),
        ("tag mapping", "QLRF_TAG_MAPPING", shown(settings.tag_mapping, cwd) if settings.tag_mapping else "(built in)"),
        ("sample seed", "QLRF_SAMPLE_SEED", str(settings.sample_seed)),
        ("task and audit database", "QLRF_POSTGRES_URL", settings.postgres_shown or "SQLite under the home directory"),
        ("Dagster home", "DAGSTER_HOME", shown(settings.dagster_home, cwd)),
        ("executor", "QLRF_EXECUTOR", settings.executor),
        ("run launcher", "QLRF_RUN_LAUNCHER", settings.run_launcher),
    ] + [(f"{p} inventory source", source_variable(p), settings.sources.get(p, "sample")) for p in PLATFORMS]
    known = {variable for _, variable, _ in rows}
    frame = [{"setting": s, "variable": v, "value": value, "source": src(v)} for s, v, value in rows]
    frame += [
        {"setting": "(other)", "variable": name, "value": "set (value hidden)", "source": "environment"}
        for name in sorted(env) if name.startswith(PREFIXES) and name not in known and (env.get(name) or "").strip()
    ]
    return pd.DataFrame(frame, columns=["setting", "variable", "value", "source"])


def policy_files(policy_dir: Path, cwd: Path | None = None) -> pd.DataFrame:
    """The policy files in force, with a short content hash so two deployments can be compared."""
    rows = [
        {"file": shown(p, cwd), "kind": "Rego test" if p.name.endswith("_test.rego") else p.suffix.lstrip("."),
         "bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()[:12]}
        for p in sorted(policy_dir.glob("*")) if p.is_file() and p.suffix in (".yaml", ".yml", ".rego")
    ]
    return pd.DataFrame(rows, columns=["file", "kind", "bytes", "sha256"])


def autonomy(policy: RemediationPolicy) -> pd.DataFrame:
    rows = [{"environment": env, "autonomy_mode": p.autonomy_mode, "drift_threshold": p.drift_threshold,
             "compliance_floor": p.compliance_floor, "canary_percent": p.canary_percent, "batches": p.batches}
            for env, p in policy.environments.items()]
    return pd.DataFrame(rows)


def connectors(wh: Warehouse, settings: Settings) -> pd.DataFrame:
    """Per platform: where inventory comes from, the last day discovered, completeness and failed scopes."""
    dates = wh.dates("inventory")
    rows = []
    for p in PLATFORMS:
        last = next((d for d in reversed(dates) if wh.exists("inventory", d, p)), None)
        meta: dict = {}
        problem = ""
        if last:
            if unreadable(wh, [wh.file("inventory", last, p)]):
                problem = "unreadable partition"
            else:
                meta = wh.run_metadata("inventory", last, p)
        rows.append({
            "platform": p, "source": settings.sources.get(p, "sample"), "last_discovery": last or "never",
            "complete": ("" if not last or problem else ("yes" if meta.get("complete", True) else "no")),
            "failed_scopes": problem or ", ".join(str(s) for s in meta.get("failed_scopes") or []),
            "rejected_records": meta.get("rejected_records", ""),
        })
    return pd.DataFrame(rows)
