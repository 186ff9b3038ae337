"""Shadow: the automation's recommendations against what the ERP and its planners did."""

from __future__ import annotations

import matplotlib.pyplot as plt
import streamlit as st

from promotwin.dashboards import charts, fmt, rollout, ui
from promotwin.dashboards import monitoring as monitor_view
from promotwin.workflow.config import load_config

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
    st.subheader("Forecast monitoring: error against the ERP's sales, run by run")
    governance = st.text_input(
        "Drift limits from the governance config (name or YAML file)", "default", key="governance"
    ).strip()
    limits = load_config(governance or "default").monitoring
    scored = monitor_view.by_run(store)
    if not len(scored):
        st.info(
            "No run scored yet: each run scores the week to its as-of date against the forecasts "
            "of earlier runs, so the second run on a later day is the first with a score."
        )
    else:
        last = scored.iloc[-1]
        m = st.columns(3)
        m[0].metric(
            "WAPE, SKU × region × week",
            fmt.pct(last["wape sku-region-week"]),
            help="latest run: sum of |forecast − sold| over SKU × region week totals / units sold",
        )
        m[1].metric(
            "WAPE, SKU × location × day",
            fmt.pct(last["wape sku-location-day"]),
            help="latest run: every shelf's daily miss; always at least the region-week figure",
        )
        m[2].metric(
            f"bias, {monitor_view.LEVEL_WORDS[limits.level]}",
            fmt.pct(last[f"bias {limits.level}"], signed=True),
            help="latest run: (forecast − sold) / sold; + is over-forecast",
        )
        fig = monitor_view.drift_figure(scored, limits)
        st.pyplot(fig)
        st.caption(monitor_view.EXPLAIN)
        st.dataframe(
            monitor_view.accuracy_rows(scored, limits),
            hide_index=True,
            width="stretch",
            key="forecast_accuracy",
        )
    st.subheader("Integration health per day")
    st.dataframe(
        monitor_view.health_rows(store), hide_index=True, width="stretch", key="health_by_day"
    )
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
