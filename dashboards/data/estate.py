"""Warehouse loaders, one per question a page asks; each a cached call into qlrf.views."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from dashboards.data import warehouse
from qlrf.ai.summary import stored_summary
from qlrf.remediation.policy import RemediationPolicy
from qlrf.scoring.compliance import load_catalogue, load_waivers
from qlrf.settings import Settings
from qlrf.views import compliance, config, dr, drift, health, images, insights, overview, sites
from qlrf.views.base import Scope
from qlrf.views.overview import Headline

TTL, SMALL, LARGE = 300, 64, 16  # seconds; roll-ups are small, per-VM aggregates fewer and larger


@st.cache_data(ttl=60, max_entries=8)
def dates(root: str) -> list[str]:
    """Days with a fleet report, newest first."""
    return sorted(warehouse(root).dates("fleet_report"), reverse=True)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def gaps(root: str, day: str, tables: tuple[str, ...]) -> list[health.Gap]:
    return health.gaps(warehouse(root), day, tables)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def site_names(root: str, day: str, orgs: tuple[str, ...] | None = None) -> list[str]:
    return sites.site_names(warehouse(root), day, orgs)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def headlines(root: str, scope: Scope) -> tuple[int, int | None, list[Headline], str | None]:
    return overview.headlines(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def fleet_history(root: str, day: str, platform: str | None, orgs: tuple[str, ...] | None = None) -> pd.DataFrame:
    return overview.history(warehouse(root), day, platform, orgs=orgs)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def fleet_rows(root: str, scope: Scope) -> pd.DataFrame:
    return overview.fleet_row(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def summary(root: str, day: str, orgs: tuple[str, ...] | None = None) -> dict | None:
    """The day's AI summary (written by the fleet_summary asset; no model is called here). It narrates
    the whole fleet, so a reader restricted to some organisations gets none."""
    if orgs is not None:
        return None
    return stored_summary(warehouse(root), day)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def proactive_insights(root: str, day: str, limit: int = 10, orgs: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The day's ranked insights (written by the ai_insights asset; no model is called here)."""
    return insights.ranked(warehouse(root), day, limit, orgs)


@st.cache_data(ttl=60, max_entries=4)
def thresholds() -> dict[str, float]:
    return RemediationPolicy.load().thresholds()


@st.cache_data(ttl=TTL, max_entries=SMALL)
def drift_heatmap(root: str, scope: Scope) -> pd.DataFrame:
    return drift.heatmap(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=LARGE)
def versions_behind(root: str, scope: Scope) -> pd.DataFrame:
    return drift.versions_behind(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=LARGE)
def revoked_exposure(root: str, scope: Scope) -> pd.DataFrame:
    return drift.revoked_exposure(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def drift_trend(root: str, scope: Scope) -> pd.DataFrame:
    return drift.trend(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def forecasts(root: str, scope: Scope) -> pd.DataFrame:
    return drift.forecasts(warehouse(root), scope, thresholds())


@st.cache_data(ttl=TTL, max_entries=LARGE)
def drift_cell(root: str, scope: Scope, site: str, environment: str) -> tuple[pd.DataFrame, int]:
    return drift.drilldown(warehouse(root), scope, site, environment)


@st.cache_data(ttl=TTL, max_entries=LARGE)
def control_rates(root: str, scope: Scope) -> pd.DataFrame:
    return compliance.control_rates(warehouse(root), scope, load_catalogue())


@st.cache_data(ttl=TTL, max_entries=LARGE)
def failing_vms(root: str, scope: Scope, control: str) -> tuple[pd.DataFrame, int]:
    return compliance.failing_vms(warehouse(root), scope, control)


@st.cache_data(ttl=60, max_entries=SMALL)
def waivers(on: date) -> pd.DataFrame:
    return compliance.waiver_table(load_waivers(catalogue=load_catalogue()), on)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def dr_by_site(root: str, scope: Scope) -> pd.DataFrame:
    return dr.readiness_by_site(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=LARGE)
def rpo_bands(root: str, scope: Scope) -> pd.DataFrame:
    return dr.rpo_age_bands(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=LARGE)
def dr_gaps(root: str, scope: Scope) -> pd.DataFrame:
    return dr.gaps(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=LARGE)
def not_ready(root: str, scope: Scope) -> tuple[pd.DataFrame, int]:
    return dr.not_ready(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def site_scores(root: str, scope: Scope) -> pd.DataFrame:
    return sites.scores(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def site_history(root: str, scope: Scope) -> pd.DataFrame:
    return sites.history(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def registry(root: str, day: str) -> pd.DataFrame:
    return images.registry(warehouse(root), Scope(day))


@st.cache_data(ttl=TTL, max_entries=LARGE)
def image_usage(root: str, scope: Scope) -> pd.DataFrame:
    return images.usage(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=LARGE)
def vms_on(root: str, scope: Scope, family: str, version: str) -> tuple[pd.DataFrame, int]:
    return images.vms_on(warehouse(root), scope, family, version)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def sbom_search(root: str, day: str, text: str) -> tuple[pd.DataFrame, int, int]:
    return images.sbom_search(warehouse(root), Scope(day), text)


@st.cache_data(ttl=60, max_entries=4)
def connectors(root: str) -> pd.DataFrame:
    return config.connectors(warehouse(root), Settings.from_env())


@st.cache_data(ttl=TTL, max_entries=SMALL)
def dr_readiness_drills(root: str, scope: Scope) -> pd.DataFrame:
    return dr.readiness_with_drills(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=LARGE)
def dr_drill_gaps(root: str, scope: Scope) -> pd.DataFrame:
    return dr.drill_gaps(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def dr_readiness_history(root: str, scope: Scope) -> pd.DataFrame:
    return dr.readiness_history(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def dr_drills(root: str, scope: Scope) -> pd.DataFrame:
    return dr.drills(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def dr_regions(root: str, scope: Scope) -> list[str]:
    return dr.regions(warehouse(root), scope)


@st.cache_data(ttl=TTL, max_entries=SMALL)
def dr_simulation(root: str, day: str, kind: str, value: str, environment: str | None,
                  orgs: tuple[str, ...] | None = None) -> tuple[dict, pd.DataFrame]:
    return dr.simulation(warehouse(root), day, kind, value, environment, orgs)
