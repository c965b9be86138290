"""Audit: the hash-chained log of every task decision, searchable, with the chain's verification status."""

import streamlit as st

from dashboards.components.tables import table
from dashboards.components.text import safe
from dashboards.data import tasks

st.title("Audit trail")
url = tasks.database_url()
check = tasks.audit_verification(url)
if check["ok"]:
    st.success(f"Chain verified: {check['checked']:,} records, head #{check['head_seq']} ({check['head_hash'][:16]}...).")
else:
    st.error(f"Chain verification FAILED ({len(check['problems'])} problems): "
             + safe("; ".join(check["problems"][:5])) + ". Run `qlrf audit verify` for the full report.")
st.caption("Checked at most a minute ago; every approval, rejection, modification, expiry and execution step is a record "
           "whose hash covers the previous one, so an edited or deleted record breaks the chain.")

left, middle = st.columns([1, 2])
kind = left.selectbox("Kind", ["all", *tasks.audit_kinds()], key="audit-kind")
text = middle.text_input("Search actor, subject or detail", key="audit-search", placeholder="task id, person, plan...")
records = tasks.audit_search(url, None if kind == "all" else kind, text)
if records.empty:
    st.info("No audit record matches." if (text or kind != "all") else
            "The audit log is empty: records appear when plans are proposed, approved, rejected or run.")
else:
    table(records, key="audit", file_name="audit")
