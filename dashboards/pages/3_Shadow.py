"""Shadow: the automation's recommendations against what the ERP and its planners did."""

from __future__ import annotations

import matplotlib.pyplot as plt
import streamlit as st

from promotwin.dashboards import charts, fmt, rollout, ui

st.set_page_config(page_title="Shadow · Promotwin", layout="wide")
st.title("Shadow runs: validating automation before rollout")

with ui.plain_errors():
    path = st.text_input(
        "Shadow run store (SQLite file written by `twin shadow`)",
        ui.setting(ui.ENV_SHADOW_STORE),
        key="shadow_store",
    )
    status = rollout.open_store(path.strip() or None)
    if status.store is None:
        st.info(status.message)
        st.stop()
    store = status.store
    runs = rollout.runs_over_time(store)
    if not len(runs):
        st.info("The store has no shadow runs yet: run `twin shadow --erp … --store FILE`.")
        st.stop()
    h = rollout.health(runs)
    c = st.columns(5)
    c[0].metric("shadow runs", fmt.count(len(runs)))
    c[1].metric("ok", fmt.count(h["ok"]))
    c[2].metric("degraded", fmt.count(int((runs["status"] == "degraded").sum())))
    c[3].metric("partial", fmt.count(h["partial"]))
    c[4].metric("failed", fmt.count(h["failed"]))
    ok = runs[runs["status"] != "failed"]
    latest = ok["agreement_rate"].dropna()
    st.subheader("Agreement with the ERP over time")
    if len(latest):
        st.markdown(
            f"Latest run agrees with the ERP on **{fmt.pct(latest.iloc[-1])}** of SKU x location "
            f"keys (mean over runs {fmt.pct(latest.mean())})."
        )
    fig = charts.agreement_figure(runs)
    st.pyplot(fig)
    plt.close(fig)
    bad = rollout.problem_runs(runs)
    st.subheader("Run health")
    if len(bad):
        st.dataframe(bad, hide_index=True, width="stretch", key="problem_runs")
    else:
        st.success("Every shadow run completed without problems.")
    st.subheader("Differences worth a look")
    ids = list(ok.sort_values("started", ascending=False)["run_id"])
    if ids:
        run_id = st.selectbox("Run", ids, key="run")
        reasons = store.warnings(run_id)
        if len(reasons):
            st.caption("Why this run is not ok (degrading reasons make its recommendations moot):")
            st.dataframe(reasons, hide_index=True, width="stretch", key="reasons")
        against = st.selectbox(
            "Compared with", rollout.comparisons_of(store, run_id), key="against"
        )
        diff = rollout.differences(store, run_id, against or rollout.SAME_DAY)
        if len(diff):
            st.caption("Largest value first (units of difference x unit cost, $).")
            st.dataframe(
                diff[["sku", "location", "status", "policy_qty", "erp_qty", "qty_diff", "value"]],
                hide_index=True,
                width="stretch",
                key="differences",
            )
        else:
            st.success("The policy and the ERP agree on every key of this run.")
    st.subheader("Counterfactual: ERP actual vs policy, same demand")
    cf = rollout.counterfactual_table(store)
    if cf is None:
        st.info(
            "No counterfactual results in this store. `twin shadow counterfactual --start … "
            "--end …` replays a period in the twin and prints them."
        )
    else:
        st.dataframe(cf, hide_index=True, width="stretch", key="counterfactual")
