"""Leadership: policy comparisons from `twin compare` output folders."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from promotwin.dashboards import leadership, ui

st.set_page_config(page_title="Leadership · Promotwin", layout="wide")
st.title("Policy comparisons")

with ui.plain_errors():
    root = st.text_input(
        "Experiment results folder (`twin compare --out`), or a folder of them",
        ui.setting(ui.ENV_EXPERIMENTS),
        key="experiments",
    )
    if not root.strip():
        st.info(
            "Give the folder `twin compare SPEC --out DIR` wrote (or start the dashboard with "
            "`twin dashboard --experiments DIR`)."
        )
        st.stop()
    found = leadership.find_experiments(Path(root.strip()))
    if not found:
        st.warning(
            f"No experiment results under {root}: run `twin compare SPEC --out {root}/NAME` first."
        )
        st.stop()
    folder = st.selectbox("Experiment", found, format_func=lambda p: p.name, key="experiment")
    exp = leadership.load_experiment(folder)
    baseline = st.selectbox(
        "Baseline policy",
        exp.policies,
        index=exp.policies.index(exp.baseline) if exp.baseline in exp.policies else 0,
        key="baseline",
    )
    if exp.note:
        st.warning(exp.note)
    sentences = leadership.summary(exp, baseline)
    if sentences:
        st.subheader("In plain words")
        st.markdown("\n".join(f"- {s}" for s in sentences))
    st.subheader(f"KPIs by policy, {exp.confidence:.0%} confidence intervals")
    table = leadership.kpi_table(exp, baseline)
    st.dataframe(table, hide_index=True, width="stretch", key="kpi_table")
    st.caption(
        "Change against the baseline: relative change for amounts, percentage points for rates; "
        "paired over replications with common random numbers. `clear` means the interval "
        "excludes no change."
    )
    st.subheader("Total cost and its parts (mean per run)")
    st.dataframe(leadership.cost_table(exp), hide_index=True, width="stretch", key="cost_table")
    st.caption(
        "Total cost = lost-sale + ordering + holding + transport + expedite cost. Holding is "
        "charged on the stock each location holds at the end of the day, after the day's "
        "dispatch; the cost of goods is in gross margin, not here."
    )
    st.subheader("Charts")
    for title, png in leadership.charts(exp, baseline):
        st.image(png, caption=title)
