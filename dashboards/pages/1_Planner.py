"""Planner: change a promotion's depth, dates, channels and policy; see the consequences."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import matplotlib.pyplot as plt
import streamlit as st

from promotwin.dashboards import charts, fmt, planner, ui
from promotwin.demand.forecaster import FORECASTERS, make_forecaster
from promotwin.policies.registry import POLICIES
from promotwin.twin import outlook

st.set_page_config(page_title="Planner · Promotwin", layout="wide")
st.title("Promotion planner")


def _forget(keys: tuple[str, ...]) -> None:
    """Drop widgets' remembered values, so they start from the newly chosen promotion's own."""
    for key in keys:
        st.session_state.pop(key, None)


with ui.plain_errors():
    names = ui.library()
    side = st.sidebar
    name = side.selectbox(
        "Scenario",
        names,
        index=names.index(ui.DEFAULT_SCENARIO) if ui.DEFAULT_SCENARIO in names else 0,
        key="scenario",
        on_change=_forget,
        args=(("promotion", *planner.PROMOTION_WIDGETS),),
    )
    path = side.text_input(
        "…or a scenario YAML file on this machine",
        key="scenario_file",
        on_change=_forget,
        args=(("promotion", *planner.PROMOTION_WIDGETS),),
    )
    ref = path.strip() or name
    scenario = ui.scenario(ref)
    if not scenario.promotions:
        st.info(f"Scenario {scenario.name} has no promotions to plan. Pick another scenario.")
        st.stop()
    promo_id = side.selectbox(
        "Promotion",
        [p.id for p in scenario.promotions],
        key="promotion",
        on_change=_forget,
        args=(planner.PROMOTION_WIDGETS,),
    )
    promo = outlook.find_promotion(scenario, promo_id)
    current = outlook.PromoSettings.of(promo)
    policy = side.selectbox(
        "Replenishment policy",
        list(POLICIES),
        index=list(POLICIES).index("base-stock"),
        key="policy",
    )
    name = side.selectbox(
        "Forecaster",
        list(FORECASTERS),
        key="forecaster",
        help="oracle knows the true demand: an upper bound, not a forecast anyone has. plan is "
        "the planners' forecast; glm and gbm are fitted model files (`twin fit`).",
    )
    model = side.text_input("Fitted model file (glm, gbm)", key="model").strip() or None
    sensing = side.checkbox(
        "In-season sensing", key="sensing", help="Re-forecast from the promotion's sales."
    )
    forecast = f"{name}+sensing" if sensing else name
    make_forecaster(name, model if name in ("glm", "gbm") else None, sensing)  # checked up front
    model = model if name in ("glm", "gbm") else None
    seed = int(side.number_input("Random seed", 0, 10_000, 0, key="seed"))
    days_before = int(
        side.number_input(
            "Assess readiness this many days before launch", 1, 28, 7, key="days_before"
        )
    )

    depth_pct = st.slider(
        "Discount depth (%)", 0, 70, int(round(promo.depth * 100)), 1, key="depth"
    )
    c1, c2, c3 = st.columns(3)
    start = c1.date_input("Start", promo.start, scenario.start_date, scenario.end_date, key="start")
    end = c2.date_input(
        "End (inclusive)", promo.end, scenario.start_date, scenario.end_date, key="end"
    )
    channels = c3.multiselect(
        "Channels",
        list(planner.CHANNEL_WORDS),
        list(promo.channels),
        format_func=planner.CHANNEL_WORDS.__getitem__,
        key="channels",
    )
    c4, c5, c6 = st.columns(3)
    display = c4.checkbox("In-store display", promo.display, key="display")
    feature = c5.checkbox("Feature ad", promo.feature, key="feature")
    top_wave = max((w.lift for w in promo.ecommerce_waves), default=0.0)
    cap_pct = c6.slider(
        "Ecommerce campaign lift cap (%)",
        0,
        max(100, int(round(top_wave * 100))),
        int(round(top_wave * 100)),
        5,
        key="ecommerce_cap",
        disabled=not promo.ecommerce_waves,
        help="Highest extra ecommerce uplift kept in the campaign waves.",
    )
    settings = outlook.PromoSettings(
        depth_pct / 100,
        start,
        end,
        tuple(channels),
        display,
        feature,
        cap_pct / 100 if promo.ecommerce_waves and cap_pct < round(top_wave * 100) else None,
    )
    bar = st.progress(0.0, text="Simulating the promotion…")

    def simulating(label: str) -> Callable[[int, int], None]:
        began = time.perf_counter()

        def show(day: int, days: int) -> None:
            left = planner.time_left(day, days, time.perf_counter() - began)
            bar.progress(day / days, text=f"Simulating {label}: day {day} of {days}, {left}")

        return show

    base = ui.planned(
        ref,
        promo_id,
        current,
        policy,
        seed,
        days_before,
        0.8,
        forecast,
        model,
        simulating("the current plan"),
    )
    result = ui.planned(
        ref,
        promo_id,
        settings,
        policy,
        seed,
        days_before,
        0.8,
        forecast,
        model,
        simulating("this variant"),
    )
    bar.empty()

    table = planner.side_by_side(base, result)
    lead = {r["key"]: r for r in table.to_dict("records")}
    better = {"promo_lost_sales_units": "inverse", "stockout_days": "inverse"}
    cols = st.columns(5)
    for col, key in zip(
        cols,
        (
            "readiness",
            "promo_fill_rate",
            "promo_lost_sales_units",
            "stockout_days",
            "expected_margin",
        ),
        strict=True,
    ):
        row = lead[key]
        kind = str(row["kind"])
        value = row["variant"]
        shown = {
            "rate": fmt.pct(value),
            "units": fmt.units(value),
            "money": fmt.money(value),
            "count": fmt.count(value),
            "score": f"{value:.0f}/100" if value == value else "–",
        }[kind]
        delta = row["change"]
        delta_text = {
            "rate": fmt.points(delta),
            "units": fmt.units(delta, signed=True),
            "money": fmt.money(delta, signed=True),
            "count": fmt.count(delta, signed=True),
            "score": f"{delta:+.0f}" if delta == delta else "–",
        }[kind]
        # st.metric reads the direction from a leading ASCII "-", not the typographic minus
        delta_text = delta_text.replace("−", "-", 1)
        label, tip = planner.METRIC_LABELS.get(key, (str(row["measure"]), ""))
        col.metric(
            label,
            shown,
            delta_text if abs(delta) > 1e-9 else None,
            delta_color=better.get(key, "normal"),  # type: ignore[arg-type]
            help=tip or None,
        )
    st.caption(
        f"Against the current plan ({current.depth:.0%} off, {current.start} to {current.end}). "
        f"Twin run {result.run_id}: {policy} on the {forecast} forecast, seed {seed}, "
        f"days 0–{result.days - 1} "
        f"(through the post-promotion dip); computed in {result.seconds:.2f} s. "
        f"Readiness {result.readiness_note}."
    )

    tabs = st.tabs(
        ["Side by side", "Uplift & margin", "Stockouts", "Readiness", "Depth sweep", "Export"]
    )
    with tabs[0]:
        shown_rows = []
        for r in table.to_dict("records"):
            f = {
                "rate": fmt.pct,
                "units": fmt.units,
                "money": fmt.money,
                "count": fmt.count,
                "score": lambda v: f"{v:.0f}/100" if v == v else "–",
            }[str(r["kind"])]
            change = {
                "rate": fmt.points,
                "units": lambda v: fmt.units(v, signed=True),
                "money": lambda v: fmt.money(v, signed=True),
                "count": lambda v: fmt.count(v, signed=True),
                "score": lambda v: f"{v:+.0f}" if v == v else "–",
            }[str(r["kind"])]
            shown_rows.append(
                {
                    "measure": r["measure"],
                    f"current plan ({current.depth:.0%})": f(r["current"]),
                    f"this variant ({settings.depth:.0%})": f(r["variant"]),
                    "change": change(r["change"]),
                }
            )
        st.dataframe(shown_rows, hide_index=True, width="stretch", key="side_by_side")
    with tabs[1]:
        o = result.outlook
        dip_days = o.window_days - (settings.end - settings.start).days - 1
        st.markdown(
            f"**Expected over the promotion and its {dip_days}-day dip:** "
            f"{fmt.units(o.extra_units)} extra of the promoted SKUs; incremental margin "
            f"{fmt.money(o.margin)} (90% interval {fmt.money(o.margin_low)} to "
            f"{fmt.money(o.margin_high)}), of which vendor funding {fmt.money(o.vendor_funding)} "
            f"(margin before funding {fmt.money(o.margin_before_funding)})."
        )
        by = st.radio("Group by", ["region", "cluster"], horizontal=True, key="uplift_by")
        up = o.uplift[o.uplift["by"] == by]
        st.dataframe(
            [
                {
                    by: r["group"],
                    "channel": planner.CHANNEL_WORDS.get(r["channel"], r["channel"]),
                    "without promotion (units)": f"{r['baseline_units']:,.0f}",
                    "with promotion (units)": f"{r['expected_units']:,.0f}",
                    "uplift": fmt.pct(r["uplift"], signed=True, digits=0),
                    "90% interval": f"{fmt.pct(r['low'], True, 0)} to "
                    f"{fmt.pct(r['high'], True, 0)}",
                }
                for r in up.to_dict("records")
            ],
            hide_index=True,
            width="stretch",
            key="uplift_table",
        )
        st.markdown("**Other SKUs during the promotion** (cannibalisation and halo)")
        st.dataframe(
            [
                {
                    "category": r["category"],
                    "effect": r["role"],
                    "without (units)": f"{r['without_units']:,.0f}",
                    "with (units)": f"{r['with_units']:,.0f}",
                    "change": f"{fmt.units(r['change_units'], signed=True)} "
                    f"({fmt.pct(r['change_share'], signed=True, digits=0)})",
                }
                for r in o.spill.to_dict("records")
            ],
            hide_index=True,
            width="stretch",
            key="spill_table",
        )
    with tabs[2]:
        by2 = st.radio("Group by", ["region", "cluster"], horizontal=True, key="stockout_by")
        lost = planner.heat_table(result.lost, by2, ["walk_in", "pickup", "ecommerce"])
        out = planner.heat_table(result.stockout_days, by2, ["stockout_days"])
        st.markdown(
            "**Lost sales during the promotion (units)** — darker red is worse; "
            "ecommerce is served by the DCs, so it shows on their rows."
        )
        st.dataframe(
            lost.style.background_gradient(cmap=fmt.SHORTFALL_CMAP, axis=None).format("{:,.0f}"),
            width="stretch",
            key="lost_heat",
        )
        st.markdown(
            "**Out-of-stock days during the promotion** (location × SKU: one SKU out at one "
            "store for 3 days counts 3)"
        )
        st.dataframe(
            out.style.background_gradient(cmap=fmt.SHORTFALL_CMAP, axis=None).format("{:,.0f}"),
            width="stretch",
            key="stockout_heat",
        )
    with tabs[3]:
        rep = result.readiness
        st.markdown(
            f"**Readiness {rep.score:.0f}/100** at the {rep.quantile:.0%} demand quantile: "
            f"{fmt.units(rep.short_units)} of {fmt.units(rep.demand_units)} at risk "
            f"({result.readiness_note})."
        )
        if rep.reasons:
            st.markdown("\n".join(f"- {r.text}" for r in rep.reasons[:12]))
        if rep.mitigations:
            st.markdown("**Mitigations, each re-scored**")
            st.dataframe(
                [
                    {
                        "action": m.action.replace("_", " "),
                        "detail": m.detail,
                        "score after": f"{m.score_after:.0f}/100",
                        "gain": f"{m.gain:+.0f}",
                        "cost": fmt.money(m.cost),
                    }
                    for m in rep.mitigations
                ],
                hide_index=True,
                width="stretch",
                key="mitigations",
            )
    with tabs[4]:
        st.markdown(
            "Headline numbers against discount depth, every other setting as chosen above "
            "(one twin run per depth, same seed)."
        )
        depths = st.multiselect(
            "Depths (%)",
            list(range(0, 71, 5)),
            [round(d * 100) for d in planner.SWEEP_DEPTHS],
            key="sweep_depths",
        )
        sweep_key = (
            "sweep",
            ref,
            promo_id,
            dataclasses.replace(settings, depth=0.0),
            policy,
            seed,
            forecast,
        )
        if st.button("Run depth sweep", key="sweep"):
            bar = st.progress(0.0, text="Simulating depths…")

            began = time.perf_counter()

            def show_progress(i: int, n: int) -> None:
                left = planner.time_left(i, n, time.perf_counter() - began)
                bar.progress(i / n, text=f"depth {i}/{n}, {left}")

            st.session_state[repr(sweep_key)] = planner.sweep(
                scenario,
                promo_id,
                settings,
                [d / 100 for d in sorted(depths)],
                policy,
                seed,
                days_before,
                progress=show_progress,
                run=lambda s, p, st_, pol, sd, db, q: ui.planned(
                    ref, p, st_, pol, sd, db, q, forecast, model
                ),
            )
            bar.empty()
        frame = st.session_state.get(repr(sweep_key))
        if frame is None:
            st.info(
                f"Press **Run depth sweep**: one twin run per depth, about "
                f"{planner.sweep_seconds(result.seconds, len(depths))} with {policy} "
                f"(this run took {result.seconds:.1f} s)."
            )
        else:
            fig = charts.sweep_figure(frame, current.depth, settings.depth)
            st.pyplot(fig)
            plt.close(fig)
            st.dataframe(
                [
                    {
                        "depth": fmt.pct(r["depth"], digits=0),
                        "readiness": f"{r['readiness']:.0f}/100" if "readiness" in r else "–",
                        "promotion fill rate": fmt.pct(r["promo_fill_rate"]),
                        "promotion lost sales": fmt.units(r["promo_lost_sales_units"]),
                        "incremental margin (expected)": fmt.money(r["expected_margin"]),
                        "gross margin (simulated)": fmt.money(r["gross_margin"]),
                    }
                    for r in frame.to_dict("records")
                ],
                hide_index=True,
                width="stretch",
                key="sweep_table",
            )
    with tabs[5]:
        s_variant = outlook.variant(scenario, promo_id, settings)
        vname = planner.variant_name(scenario, promo_id, settings)
        st.download_button(
            "Save this scenario variant (YAML)",
            outlook.variant_yaml(s_variant, vname),
            file_name=f"{vname}.yaml",
            mime="application/x-yaml",
            key="download_yaml",
        )
        st.download_button(
            "Download the results (CSV)",
            planner.results_csv(base, result),
            file_name=f"{vname}-results.csv",
            mime="text/csv",
            key="download_csv",
        )
        st.caption(f"Run the variant with `twin run {vname}.yaml --out DIR --policy {policy}`.")
