"""Post-event: what happened in a promotion of a twin run or of an experiment's arm, against
the plan and the baseline on the same demand."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import cast

import streamlit as st

from promotwin.dashboards import fmt, ui
from promotwin.dashboards import post_event as view
from promotwin.experiments.post_event import Level, PostEvent, analyse
from promotwin.experiments.post_event_report import (
    ACCURACY_NOTE,
    forecast_figure,
    lost_figure,
    uplift_figure,
)

st.set_page_config(page_title="Post-event · Promotwin", layout="wide")
st.title("Post-event: how did the promotion go?")


@st.cache_resource(show_spinner=False, max_entries=4)
def _analysed(
    folder: str, promotion: str, baseline: str, level: str, arm: str | None, replication: int
) -> PostEvent:
    # re-runs the baseline (and an experiment's arm) on the same demand: once per choice
    work = Path(tempfile.mkdtemp(prefix="promotwin-post-event-"))
    return analyse(folder, promotion, baseline, cast(Level, level), 0, arm, replication, work)


with ui.plain_errors():
    folder = st.text_input(
        "Twin run folder or experiment folder (`twin run … --out`, `twin compare … --out`)",
        ui.setting(view.ENV_RUN),
        key="run_folder",
    ).strip()
    if not folder:
        st.info("Give a run folder: `twin run appliance_promo_surprise --out runs/surprise`.")
        st.stop()
    found = view.arms(folder)
    promos = found.promotions if found is not None else view.promotions(folder)
    if not promos:
        st.info("This scenario has no promotions to look back at.")
        st.stop()
    arm, replication = None, 0
    if found is not None:
        e = st.columns(3)
        arm = e[0].selectbox(
            "Arm", [a for a in found.arms if a != found.baseline] or found.arms, key="arm"
        )
        replication = e[1].selectbox("Replication", range(found.replications), key="replication")
        baseline = e[2].selectbox(
            "Baseline arm (same seed)",
            found.arms,
            index=found.arms.index(found.baseline),
            key="baseline_arm",
        )
    c = st.columns(3)
    promotion = c[0].selectbox("Promotion", promos, key="promotion")
    if found is None:
        baseline = c[1].selectbox(
            "Baseline policy (same demand)",
            ["order-point", "base-stock", "static-forecast"],
            key="baseline",
        )
    level = c[2].selectbox("Group stores by", ["cluster", "region"], key="level")
    with st.spinner(f"Analysing {promotion} and re-running {baseline} on the same demand…"):
        pe = _analysed(folder, promotion, baseline, level, arm, int(replication))
    s, b = pe.service, pe.baseline_service
    st.caption(f"{pe.window[0]} to {pe.window[1]}; money in {pe.run.currency}. {pe.source}.")
    m = st.columns(4)
    m[0].metric(
        "promotion fill rate",
        fmt.pct(s["fill_rate"]),
        fmt.points(s["fill_rate"] - b["fill_rate"]) + f" vs {baseline}",
        help="share of the promoted SKUs' demand served in the window",
    )
    m[1].metric(
        "promotion lost sales",
        fmt.units(s["lost_units"]),
        fmt.units(s["lost_units"] - b["lost_units"], signed=True) + f" vs {baseline}",
        delta_color="inverse",
        help="units of the promoted SKUs' demand not served, same demand as the baseline",
    )
    m[2].metric(
        "margin with vendor funding",
        fmt.money(s["margin_with_funding"], currency=pe.run.currency),
        help="revenue − cost of goods + vendor funding, promoted SKUs in the window",
    )
    m[3].metric(
        "vendor funding",
        fmt.money(s["vendor_funding"], currency=pe.run.currency),
        help="what the supplier pays per promoted unit sold",
    )
    st.subheader(f"Uplift: planned vs realised by {level} and channel")
    st.dataframe(view.uplift_rows(pe, level), hide_index=True, width="stretch", key="uplift")
    st.pyplot(uplift_figure(pe, level))
    st.caption(
        "Uplift = demand (sold + lost) in the window / expected demand without the promotion; "
        "95% interval from negative-binomial noise."
    )
    st.subheader(f"Service and margin against {baseline}")
    st.dataframe(view.service_rows(pe), hide_index=True, width="stretch", key="service")
    st.pyplot(lost_figure(pe))
    st.subheader("Forecast error of the promoted SKUs by day")
    st.pyplot(forecast_figure(pe))
    st.subheader("Forecast accuracy: the whole run and the promotion")
    st.dataframe(view.accuracy_table(pe), hide_index=True, width="stretch", key="accuracy")
    st.caption(ACCURACY_NOTE)
    st.subheader("Cannibalisation, halo and the post-promotion dip")
    st.dataframe(view.spill_rows(pe), hide_index=True, width="stretch", key="spill")
    st.markdown(
        "For the full report with readiness before launch: "
        f"`twin post-event {folder} --promotion {promotion} --out DIR`."
    )
