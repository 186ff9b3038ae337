"""Promotwin dashboards: ``twin dashboard`` or ``streamlit run dashboards/app.py``.

The pages live in ``pages/``; each is thin and calls plain modules of this package.
"""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Promotwin", layout="wide")
st.title("Promotwin")
st.markdown("A digital twin for retail promotion planning and inventory coordination. Pick a page:")
st.page_link("pages/1_Planner.py", label="Planner: promotion depth scenarios", icon="🛒")
st.page_link("pages/2_Leadership.py", label="Leadership: policy comparisons", icon="📊")
st.page_link("pages/3_Shadow.py", label="Shadow: validating automation before rollout", icon="🔍")
st.page_link(
    "pages/4_Exceptions_and_audit.py", label="Exceptions & audit: approvals, audit trail", icon="✅"
)
st.page_link("pages/5_Post-event.py", label="Post-event: how did the promotion go?", icon="🔁")
st.caption(
    "Colours mean the same on every page: red is a shortfall or a loss, green a gain, "
    "blue the current plan or the baseline. Money in the scenario's currency ($ for USD), "
    "quantities in units."
)
