"""What GCP discovery is told: projects, credentials source, endpoint, page size and retry timing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from google.api_core import retry as gretry

from qlrf.envparse import endpoint_url, environ, positive_int, split_list

SCOPES = ("https://www.googleapis.com/auth/compute.readonly",)
MAX_PAGE_SIZE = 500  # GCE's maxResults limit


@dataclass
class GcpConfig:
    """What to discover and how. Credentials: an explicit object, else a key/config file, else
    google.auth.default() (GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC, workload identity, metadata server)."""

    projects: list[str] = field(default_factory=list)
    credentials_file: str | None = None
    credentials: Any = field(default=None, repr=False)  # a google.auth Credentials object (tests, callers)
    api_endpoint: str | None = None  # e.g. http://127.0.0.1:P for a fake; None: compute.googleapis.com
    max_workers: int = 8
    page_size: int = MAX_PAGE_SIZE
    timeout: float = 60.0  # per HTTP request
    retry_initial: float = 1.0
    retry_maximum: float = 32.0
    retry_multiplier: float = 2.0
    retry_timeout: float = 300.0  # per call, retries included
    retry: gretry.Retry | None = field(default=None, repr=False)  # overrides the retry_* fields
    resolve_foreign_images: bool = True  # images.get for images the disks use from other projects


def config_from_env(env: Mapping[str, str] | None = None) -> GcpConfig:
    """QLRF_GCP_PROJECTS (comma list), GOOGLE_APPLICATION_CREDENTIALS (standard), QLRF_GCP_ENDPOINT,
    QLRF_GCP_MAX_WORKERS, QLRF_GCP_PAGE_SIZE. Read when called, never at import."""
    env = environ(env)
    config = GcpConfig(
        projects=split_list(env.get("QLRF_GCP_PROJECTS")),
        credentials_file=env.get("GOOGLE_APPLICATION_CREDENTIALS") or None,
        api_endpoint=endpoint_url(env, "QLRF_GCP_ENDPOINT", "GOOGLE_APPLICATION_CREDENTIALS"),
    )
    if env.get("QLRF_GCP_MAX_WORKERS"):
        config.max_workers = positive_int(env["QLRF_GCP_MAX_WORKERS"], "QLRF_GCP_MAX_WORKERS")
    if env.get("QLRF_GCP_PAGE_SIZE"):
        config.page_size = min(MAX_PAGE_SIZE, positive_int(env["QLRF_GCP_PAGE_SIZE"], "QLRF_GCP_PAGE_SIZE"))
    return config


# Discovery fan-out (qlrf/inventory/scopes.py): a project is the unit a step discovers.
SCOPE_KIND = "project"
DEDUPED_FACTS = ("images",)  # an image is listed once however many projects use it


def scope_keys(config: GcpConfig) -> list[str]:
    """The projects in the order discovery merges them."""
    return sorted(dict.fromkeys(p.strip() for p in config.projects if p.strip()))


def narrow(config: GcpConfig, keys: list[str]) -> GcpConfig:
    return replace(config, projects=list(keys))
