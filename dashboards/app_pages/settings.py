"""Settings: the effective configuration (read-only, secrets never shown), policy files, autonomy per
environment, and each connector's status with its last discovery and failed scopes."""

import pandas as pd
import streamlit as st

from dashboards.components import identity
from dashboards.components.tables import table
from dashboards.components.text import safe
from dashboards.data import estate, root
from qlrf.remediation.gate.modules import default_policy_dir
from qlrf.remediation.policy import RemediationPolicy
from qlrf.remediation.reviewer import ENV_LOCAL_USER
from qlrf.settings import Settings
from qlrf.tenancy.dashboard_identity import label, sign_in_settings
from qlrf.views import config

st.title("Settings")
st.caption("Read-only: change these through environment variables and the policy files, then restart `make serve`.")
try:
    settings = Settings.from_env()
except ValueError as exc:  # a malformed variable: the message names it, never its value
    st.error(safe(str(exc)))
    st.stop()

st.subheader("Effective configuration")
table(config.effective(settings), key="config", file_name="configuration")
st.caption(f"Variables this page does not know are listed as set, never shown. {ENV_LOCAL_USER} names the trusted "
           "local approver (see Approvals).")

st.subheader("Identity and sign-in")
who = identity.current()
st.caption(safe(label(who)))
table(pd.DataFrame(sign_in_settings(identity.auth_section())), key="sign-in", file_name="sign-in")
st.caption("From .streamlit/secrets.toml [auth] (see .streamlit/secrets.toml.example); secrets are never shown.")

st.subheader("Autonomy per environment")
try:
    table(config.autonomy(RemediationPolicy.load()), key="autonomy", file_name="autonomy")
except ValueError as exc:
    st.error(safe(str(exc).splitlines()[0]))

st.subheader("Connectors")
table(estate.connectors(root()), key="connectors", file_name="connectors")
st.caption("last_discovery = newest inventory partition; complete = every scope answered; failed_scopes = accounts, "
           "regions or projects that did not.")

st.subheader("Policy files")
table(config.policy_files(default_policy_dir()), key="policies", file_name="policy-files")
