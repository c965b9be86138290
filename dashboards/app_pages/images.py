"""Images: the golden registry (families, versions per channel, revocations, ancestry), which VMs run
each version, and a search through the images' SBOMs."""

import streamlit as st

from dashboards.components import status
from dashboards.components.tables import table
from dashboards.components.text import safe
from dashboards.data import estate
from qlrf.views.images import ancestry_dot, channels

location, scope = status.page("Images", "the registry is fleet-wide; VM counts follow the filters")

reg = status.load(estate.registry, location, scope.day)
if reg is not None:
    st.subheader("Families and channels")
    table(channels(reg), key="channels", file_name=f"image-channels-{scope.day}")

    revoked = reg[reg["revoked"]]
    st.subheader(f"Revocations ({len(revoked)})")
    if revoked.empty:
        st.caption("No revoked version.")
    else:
        table(revoked[["family", "version", "channel", "released", "revoked_reason", "platforms"]], key="revocations",
              file_name=f"revocations-{scope.day}")

    st.subheader("Ancestry")
    family = st.selectbox("Family", sorted(reg["family"].unique()), key="family")
    st.graphviz_chart(ancestry_dot(reg, family), width="stretch")
    st.caption("Each version points to the one it was built from; revoked versions in red.")
    table(reg[reg["family"] == family].drop(columns=["version_rank"]), key="versions", file_name=f"versions-{family}-{scope.day}")

usage = status.load(estate.image_usage, location, scope)
if usage is not None and not usage.empty:
    st.subheader("Which VMs run each version")
    table(usage, key="usage", file_name=f"image-usage-{scope.day}")
    known = usage[usage["version"] != ""]
    if not known.empty:
        labels = [f"{r.family} {r.version}" for r in known.itertuples()]
        pick = st.selectbox("Version", range(len(labels)), format_func=lambda i: labels[i], key="usage-version")
        row = known.iloc[pick]
        vms = status.load(estate.vms_on, location, scope, row["family"], row["version"])
        if vms is not None:
            frame, total = vms
            table(frame, key="usage-vms", file_name=f"vms-{row['family']}-{row['version']}-{scope.day}", total=total)

st.subheader("SBOM package search")
query = st.text_input("Package name or purl contains", key="sbom", placeholder="openssl")
if query.strip():
    found = status.load(estate.sbom_search, location, scope.day, query.strip())
    if found is not None:
        frame, total, images = found
        st.caption(f"{total:,} matches in {images:,} image versions for {safe(query.strip())}.")
        table(frame, key="sbom-results", file_name=f"sbom-{scope.day}", total=total)
