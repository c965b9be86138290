"""Sign in: the only page a visitor sees when sign-in is configured and nobody (usable) is signed in.

Why a page of its own: with ``[auth]`` in secrets.toml the deployment has chosen sign-in, so no
fleet data is drawn for an anonymous visitor, and a signed-in user without any role sees why.
"""

import streamlit as st

from dashboards.components import identity
from qlrf.tenancy.dashboard_identity import SIGNED_IN, grants_text

st.title("Resilience Fabric")
session = identity.current()
if session.mode == SIGNED_IN:
    st.warning(f"Signed in as {session.name}, who holds {grants_text(session.principal)}: ask an admin for a role "
               "(a qlrf_roles claim such as viewer@acme from your identity provider, or `qlrf users grant`).")
elif not session.problem:  # a refused sign-in is shown in the sidebar, with its reason
    st.info("Sign in with your organisation's identity provider to see the fleet (the button is in the sidebar).")
for name in ([] if session.mode == SIGNED_IN or session.problem else identity.providers() or [None]):
    st.button(f"Sign in with {name}" if name else "Sign in", key=f"signin-page-{name or 'default'}", type="primary",
              on_click=st.login, args=(name,) if name else ())
