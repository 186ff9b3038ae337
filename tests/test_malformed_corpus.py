"""The malformed-input corpus: every bad input exits 2, names what is wrong, writes nothing.

Each case is a row of the tables below: files to create, the ``twin`` command, and the words
the message must contain (the field path or the option). Exit 1 ("internal error") fails the
case: it is reserved for real bugs. The whole corpus runs in-process, in under 30 seconds.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import typer.main
import typer.testing
import yaml
from typer.testing import CliRunner

from promotwin.cli.main import app

DATA = Path(__file__).parent / "data"
GOOD: dict[str, Any] = yaml.safe_load((DATA / "good_scenario.yaml").read_text())
GOOD["start_date"] = "2026-03-02"
for promo in GOOD["promotions"]:
    promo["start"], promo["end"] = str(promo["start"]), str(promo["end"])
runner = CliRunner()
Files = dict[str, str | bytes]


@dataclass(frozen=True)
class Case:
    name: str
    files: Files
    args: list[str]
    expect: list[str]
    dirs: list[str] = field(default_factory=list)


def scenario_yaml(mutate: Callable[[dict[str, Any]], None]) -> str:
    s = copy.deepcopy(GOOD)
    mutate(s)
    return yaml.safe_dump(s, sort_keys=False)


def setter(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set the dotted ``path`` (list indices as numbers) of a scenario dict to ``value``."""

    def mutate(s: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = s
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def dropper(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(s: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = s
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        del node[int(last) if isinstance(node, list) else last]

    return mutate


def appender(path: str, item: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(s: dict[str, Any]) -> None:
        s.setdefault(path, []).append(item)

    return mutate


INF, NAN = float("inf"), float("nan")
WAVE_OK = {"start": "2026-03-11", "end": "2026-03-12"}
DELAY = {"supplier": "V1", "start": "2026-03-05", "end": "2026-03-08", "extra_days": 3}
DROP = {"dc": "DC1", "start": "2026-03-05", "end": "2026-03-08", "factor": 0.5}

# (case name, mutation, words the message must contain)
SCENARIO_MUTATIONS: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    ("no_name", dropper("name"), ["name", "add this field"]),
    ("empty_name", setter("name", ""), ["name"]),
    ("no_start_date", dropper("start_date"), ["start_date"]),
    ("int_start_date", setter("start_date", 1767225600), ["start_date", "YYYY-MM-DD"]),
    ("float_start_date", setter("start_date", 20260302.0), ["start_date", "YYYY-MM-DD"]),
    ("bad_start_date", setter("start_date", "2026-02-30"), ["start_date"]),
    ("slashed_start_date", setter("start_date", "02/03/2026"), ["start_date", "YYYY-MM-DD"]),
    ("horizon_zero", setter("horizon_days", 0), ["horizon_days"]),
    ("horizon_negative", setter("horizon_days", -5), ["horizon_days"]),
    ("horizon_huge", setter("horizon_days", 10**9), ["horizon_days"]),
    ("horizon_text", setter("horizon_days", "thirty"), ["horizon_days", "whole number"]),
    ("horizon_float", setter("horizon_days", 30.5), ["horizon_days"]),
    ("warmup_too_long", setter("warmup_days", 30), ["warmup_days"]),
    ("warmup_negative", setter("warmup_days", -1), ["warmup_days"]),
    ("unknown_top_field", setter("colour", "red"), ["colour", "remove it"]),
    ("unknown_store_field", setter("stores.0.colour", "red"), ["stores.0.colour"]),
    ("empty_store_id", setter("stores.0.id", ""), ["stores.0.id"]),
    ("empty_region", setter("stores.0.region", ""), ["stores.0.region"]),
    ("store_size_zero", setter("stores.0.size", 0), ["stores.0.size"]),
    ("store_size_inf", setter("stores.0.size", INF), ["stores.0.size", "finite"]),
    ("store_size_nan", setter("stores.0.size", NAN), ["stores.0.size", "finite"]),
    ("pickup_share_above_one", setter("stores.0.pickup_share", 1.5), ["stores.0.pickup_share"]),
    ("bad_channel", setter("stores.0.channels", ["drone"]), ["stores.0.channels"]),
    ("duplicate_store", appender("stores", {"id": "S1", "region": "North"}), ["duplicate id"]),
    ("store_no_dc", appender("stores", {"id": "S3", "region": "North"}), ["S3", "no DC"]),
    ("store_is_dc", appender("stores", {"id": "DC1", "region": "North"}), ["both a store"]),
    ("dc_throughput_zero", setter("dcs.0.throughput", 0), ["dcs.0.throughput"]),
    ("dc_throughput_inf", setter("dcs.0.throughput", INF), ["dcs.0.throughput"]),
    ("dc_serves_unknown", setter("dcs.0.serves", ["S1", "S2", "S9"]), ["dcs.0.serves", "S9"]),
    ("dc_serves_twice", setter("dcs.0.serves", ["S1", "S2", "S2"]), ["dcs.0.serves"]),
    ("no_dcs", setter("dcs", []), ["network is empty"]),
    ("no_stores", setter("stores", []), ["network is empty"]),
    ("no_skus", setter("skus", []), ["network is empty"]),
    ("supplier_empty_id", setter("suppliers.0.id", ""), ["suppliers.0.id"]),
    ("duplicate_supplier", appender("suppliers", {"id": "V1"}), ["suppliers.1.id"]),
    ("fill_rate_above_one", setter("suppliers.0.fill_rate", 2), ["suppliers.0.fill_rate"]),
    ("supplier_capacity_inf", setter("suppliers.0.capacity", INF), ["suppliers.0.capacity"]),
    ("moq_negative", setter("suppliers.0.moq", -1), ["suppliers.0.moq"]),
    ("expedite_zero", setter("suppliers.0.expedite_lead_time", 0), ["expedite_lead_time"]),
    (
        "lead_time_min_above_mean_fixed",
        setter("suppliers.0.lead_time", {"mean": 3, "min": 5}),
        ["suppliers.0.lead_time", "min 5 is above the mean"],
    ),
    (
        "lead_time_min_above_mean_poisson",
        setter("suppliers.0.lead_time", {"distribution": "poisson", "mean": 3, "min": 5}),
        ["suppliers.0.lead_time", "above the mean"],
    ),
    (
        "lead_time_min_above_mean_lognormal",
        setter(
            "suppliers.0.lead_time", {"distribution": "lognormal", "mean": 2, "sd": 1, "min": 4}
        ),
        ["suppliers.0.lead_time", "above the mean"],
    ),
    ("lead_time_mean_zero", setter("suppliers.0.lead_time", {"mean": 0}), ["lead_time.mean"]),
    ("lead_time_mean_inf", setter("suppliers.0.lead_time", {"mean": INF}), ["lead_time.mean"]),
    ("lead_time_mean_huge", setter("suppliers.0.lead_time", {"mean": 1e12}), ["lead_time.mean"]),
    ("lead_time_sd_negative", setter("suppliers.0.lead_time", {"sd": -1}), ["lead_time.sd"]),
    (
        "lead_time_bad_distribution",
        setter("suppliers.0.lead_time", {"distribution": "gamma"}),
        ["lead_time.distribution", "allowed values"],
    ),
    ("lane_unknown_origin", setter("lanes.0.origin", "DC9"), ["lanes.0.origin", "DC9"]),
    ("lane_unknown_destination", setter("lanes.0.destination", "S9"), ["lanes.0.destination"]),
    ("lane_to_itself", setter("lanes.0.destination", "DC1"), ["lanes.0", "same location"]),
    (
        "lane_duplicate",
        appender("lanes", {"origin": "DC1", "destination": "S1"}),
        ["lanes.2", "duplicate lane"],
    ),
    ("lane_missing", dropper("lanes.1"), ["no lane from DC1", "S2"]),
    ("lane_transit_zero", setter("lanes.0.transit_days", 0), ["lanes.0.transit_days"]),
    ("lane_transit_huge", setter("lanes.0.transit_days", 10**12), ["lanes.0.transit_days"]),
    ("lane_cost_nan", setter("lanes.0.cost_per_unit", NAN), ["lanes.0.cost_per_unit"]),
    ("sku_price_inf", setter("skus.0.price", INF), ["skus.0.price", "finite"]),
    ("sku_price_negative", setter("skus.0.price", -5), ["skus.0.price"]),
    ("sku_price_text", setter("skus.0.price", "cheap"), ["skus.0.price", "number"]),
    ("sku_cost_above_price", setter("skus.0.unit_cost", 25), ["skus.0.unit_cost", "exceeds"]),
    ("sku_baseline_inf", setter("skus.0.baseline", INF), ["skus.0.baseline"]),
    ("sku_baseline_negative", setter("skus.0.baseline", -1), ["skus.0.baseline"]),
    ("sku_positive_elasticity", setter("skus.0.elasticity", 1.5), ["skus.0.elasticity"]),
    ("sku_unknown_supplier", setter("skus.0.supplier", "V9"), ["skus.0.supplier", "V9"]),
    ("sku_empty_id", setter("skus.0.id", ""), ["skus.0.id"]),
    ("sku_empty_category", setter("skus.0.category", ""), ["skus.0.category"]),
    ("sku_duplicate", setter("skus.1.id", "K1"), ["skus.1.id", "duplicate"]),
    ("sku_missing_price", dropper("skus.0.price"), ["skus.0.price", "add this field"]),
    ("ecommerce_share_negative", setter("skus.0.ecommerce_share", -0.1), ["ecommerce_share"]),
    ("demand_positive_elasticity", setter("demand.elasticity", 0.5), ["demand.elasticity"]),
    ("demand_dispersion_zero", setter("demand.dispersion", 0), ["demand.dispersion"]),
    ("demand_weekday_six", setter("demand.weekday", [1] * 6), ["weekday needs 7"]),
    ("demand_weekday_inf", setter("demand.weekday", [1] * 6 + [INF]), ["demand.weekday.6"]),
    (
        "demand_seasonality_unknown",
        setter("demand.seasonality", {"toys": {"amplitude": 0.2}}),
        ["demand.seasonality.toys"],
    ),
    ("demand_peak_day_zero", setter("demand.seasonality", {"fans": {"peak_day": 0}}), ["peak_day"]),
    ("demand_halo_unknown", setter("demand.halo", {"fans": ["toys"]}), ["demand.halo.fans"]),
    ("demand_history_missing", setter("demand.history", "nowhere.csv"), ["demand.history"]),
    ("post_promo_days_huge", setter("demand.post_promo_days", 10**15), ["post_promo_days"]),
    (
        "promo_duplicate_id",
        appender(
            "promotions",
            {"id": "P1", "skus": ["K1"], "start": "2026-03-20", "end": "2026-03-22", "depth": 0.1},
        ),
        ["promotions.1.id", "duplicate"],
    ),
    ("promo_empty_id", setter("promotions.0.id", ""), ["promotions.0.id"]),
    ("promo_backwards", setter("promotions.0.end", "2026-03-05"), ["promotions.0", "swap"]),
    (
        "promo_outside_horizon",
        setter("promotions.0.end", "2026-05-01"),
        ["promotions.0", "outside the horizon"],
    ),
    (
        "promo_before_horizon",
        setter("promotions.0.start", "2026-01-01"),
        ["promotions.0", "outside the horizon"],
    ),
    ("promo_depth_one", setter("promotions.0.depth", 1), ["promotions.0.depth"]),
    ("promo_depth_negative", setter("promotions.0.depth", -0.2), ["promotions.0.depth"]),
    ("promo_depth_nan", setter("promotions.0.depth", NAN), ["promotions.0.depth"]),
    ("promo_nothing_promoted", setter("promotions.0.categories", []), ["promotions.0", "skus"]),
    ("promo_unknown_sku", setter("promotions.0.skus", ["K9"]), ["promotions.0.skus", "K9"]),
    (
        "promo_unknown_category",
        setter("promotions.0.categories", ["toys"]),
        ["promotions.0.categories", "toys"],
    ),
    (
        "promo_unknown_store",
        setter("promotions.0.locations", {"stores": ["S9"]}),
        ["promotions.0.locations", "S9"],
    ),
    (
        "promo_unknown_region",
        setter("promotions.0.locations", {"regions": ["West"]}),
        ["promotions.0.locations", "West"],
    ),
    ("promo_bad_channel", setter("promotions.0.channels", ["fax"]), ["promotions.0.channels"]),
    ("promo_int_date", setter("promotions.0.start", 20260310), ["promotions.0.start", "number"]),
    ("promo_planned_uplift_zero", setter("promotions.0.planned_uplift", 0), ["planned_uplift"]),
    ("promo_vendor_funding_inf", setter("promotions.0.vendor_funding", INF), ["vendor_funding"]),
    (
        "wave_backwards",
        setter("promotions.0.ecommerce_waves", [{"start": "2026-03-14", "end": "2026-03-12"}]),
        ["promotions.0.ecommerce_waves.0", "swap"],
    ),
    (
        "wave_outside_promotion",
        setter("promotions.0.ecommerce_waves", [{"start": "2026-03-14", "end": "2026-03-20"}]),
        ["promotions.0", "ecommerce_waves.0", "outside the promotion"],
    ),
    (
        "wave_negative_lift",
        setter("promotions.0.ecommerce_waves", [{**WAVE_OK, "lift": -1}]),
        ["ecommerce_waves.0.lift"],
    ),
    (
        "delay_backwards",
        setter("disruptions.supplier_delays", [{**DELAY, "end": "2026-03-01"}]),
        ["disruptions.supplier_delays.0", "swap"],
    ),
    (
        "delay_unknown_supplier",
        setter("disruptions.supplier_delays", [{**DELAY, "supplier": "X"}]),
        ["disruptions.supplier_delays.0.supplier"],
    ),
    (
        "delay_zero_days",
        setter("disruptions.supplier_delays", [{**DELAY, "extra_days": 0}]),
        ["extra_days"],
    ),
    (
        "delay_huge_days",
        setter("disruptions.supplier_delays", [{**DELAY, "extra_days": 10**10}]),
        ["extra_days"],
    ),
    (
        "drop_backwards",
        setter("disruptions.dc_capacity_drops", [{**DROP, "end": "2026-03-01"}]),
        ["disruptions.dc_capacity_drops.0", "swap"],
    ),
    (
        "drop_unknown_dc",
        setter("disruptions.dc_capacity_drops", [{**DROP, "dc": "DC9"}]),
        ["disruptions.dc_capacity_drops.0.dc"],
    ),
    (
        "drop_factor_above_one",
        setter("disruptions.dc_capacity_drops", [{**DROP, "factor": 2}]),
        ["factor"],
    ),
    ("initial_inventory_negative", setter("initial_inventory.store_days", -1), ["store_days"]),
    ("costs_penalty_inf", setter("costs.lost_sale_penalty", INF), ["costs.lost_sale_penalty"]),
    ("fulfilment_unknown", setter("fulfilment.ecommerce", "drone"), ["fulfilment.ecommerce"]),
]


def _synthetic(block: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(s: dict[str, Any]) -> None:
        for key in ("stores", "dcs", "suppliers", "lanes", "skus", "promotions"):
            s.pop(key, None)
        s["synthetic"] = block

    return mutate


SCENARIO_MUTATIONS += [
    ("synthetic_and_lists", setter("synthetic", {"stores": 2, "skus": 2}), ["not both"]),
    ("synthetic_zero_stores", _synthetic({"stores": 0, "skus": 5}), ["synthetic.stores"]),
    (
        "synthetic_negative_seed",
        _synthetic({"stores": 2, "skus": 5, "seed": -1}),
        ["synthetic.seed"],
    ),
    (
        "synthetic_10e12_stores",
        _synthetic({"stores": 10**12, "skus": 10}),
        ["synthetic", "too large", "--max-memory"],
    ),
    (
        "synthetic_100k_by_5k",
        _synthetic({"stores": 100_000, "skus": 5_000}),
        ["synthetic", "too large", "GiB"],
    ),
    ("synthetic_text_skus", _synthetic({"stores": 2, "skus": "many"}), ["synthetic.skus"]),
]


def scenario_cases() -> list[Case]:
    cases = []
    for name, mutate, expect in SCENARIO_MUTATIONS:
        files: Files = {"s.yaml": scenario_yaml(mutate)}
        cases.append(Case(f"scenario/{name}", files, ["scenarios", "validate", "{s.yaml}"], expect))
    # the run command refuses a few of them just the same, before it writes anything
    for name, mutate, expect in SCENARIO_MUTATIONS[::8]:
        files = {"s.yaml": scenario_yaml(mutate)}
        args = ["run", "{s.yaml}", "--out", "{out}"]
        cases.append(Case(f"run/{name}", files, args, expect))
    return cases


GOOD_TEXT = (DATA / "good_scenario.yaml").read_text()
RAW_SCENARIOS: list[tuple[str, str | bytes, list[str]]] = [
    ("duplicate_top_key", GOOD_TEXT + "horizon_days: 40\n", ["duplicate key 'horizon_days'"]),
    (
        "duplicate_nested_key",
        GOOD_TEXT.replace("{id: S1, region: North}", "{id: S1, region: North, region: South}"),
        ["duplicate key 'region'", "line"],
    ),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ["s.yaml", "binary"]),
    ("latin1", GOOD_TEXT.replace("North", "Nörth").encode("latin-1"), ["s.yaml", "UTF-8"]),
    ("utf16", GOOD_TEXT.encode("utf-16"), ["s.yaml"]),
    ("empty_file", "", ["file", "mapping"]),
    ("a_list", "- 1\n- 2\n", ["mapping"]),
    ("a_scalar", "hello\n", ["mapping"]),
    ("bad_yaml", "name: [unclosed\n", ["line", "not valid YAML"]),
    ("tabs", "name: x\n\tstart_date: 2026-01-01\n", ["not valid YAML"]),
    ("python_tag", "name: !!python/object:os.system x\n", ["not valid YAML"]),
]


def raw_cases() -> list[Case]:
    out = [
        Case(f"raw/{name}", {"s.yaml": body}, ["scenarios", "validate", "{s.yaml}"], expect)
        for name, body, expect in RAW_SCENARIOS
    ]
    out.append(Case("raw/folder", {}, ["scenarios", "validate", "{d}"], ["folder"], dirs=["d"]))
    out.append(Case("raw/folder_run", {}, ["run", "{d}", "--out", "{out}"], ["folder"], ["d"]))
    out.append(Case("raw/missing", {}, ["scenarios", "validate", "{none.yaml}"], ["not found"]))
    return out


HEADER = "date,location,sku,channel,units,price\n"


def history(rows: list[str], header: str = HEADER) -> str:
    return header + "".join(r + "\n" for r in rows)


def weekly_rows(n: int = 8, skip: tuple[int, ...] = ()) -> list[str]:
    import datetime as dt

    start = dt.date(2026, 1, 5)
    return [
        f"{start + dt.timedelta(days=7 * i)},S1,K1,walk_in,{10 + i},{'8' if i == 3 else '10'}"
        for i in range(n)
        if i not in skip
    ]


DAILY = [f"2026-01-{d:02d},S1,K1,walk_in,5,{8 if d == 3 else 10}" for d in range(1, 11)]
HISTORIES: list[tuple[str, str | bytes, list[str], list[str]]] = [
    (
        "dd_mm_dates",
        history([f"{d:02d}/01/2026,S1,K1,walk_in,5,10" for d in range(1, 13)]),
        [],
        ["DD/MM", "--date-format"],
    ),
    (
        "mm_dd_dates",
        history([f"01/{d:02d}/2026,S1,K1,walk_in,5,10" for d in range(13, 20)]),
        [],
        ["--date-format", "month first"],
    ),
    (
        "dotted_dates",
        history([f"{d:02d}.01.2026,S1,K1,walk_in,5,10" for d in range(1, 9)]),
        [],
        ["--date-format"],
    ),
    (
        "week_numbers",
        history([f"{w},S1,K1,walk_in,5,10" for w in range(1, 9)]),
        [],
        ["week numbers"],
    ),
    ("unreadable_dates", history(["someday,S1,K1,walk_in,5,10", *DAILY]), [], ["row 0", "date"]),
    ("wrong_date_format", history(DAILY), ["--date-format", "DD/MM/YYYY"], ["--date-format"]),
    ("bad_date_format", history(DAILY), ["--date-format", "whenever"], ["--date-format"]),
    (
        "semicolons",
        history([r.replace(",", ";") for r in DAILY], HEADER.replace(",", ";")),
        [],
        ["separator"],
    ),
    (
        "tabs",
        history([r.replace(",", "\t") for r in DAILY], HEADER.replace(",", "\t")),
        [],
        ["separator"],
    ),
    (
        "units_1e15",
        history([*DAILY[:-1], "2026-01-10,S1,K1,walk_in,1000000000000000,10"]),
        [],
        ["units above", "row 9"],
    ),
    (
        "units_inf",
        history([*DAILY[:-1], "2026-01-10,S1,K1,walk_in,inf,10"]),
        [],
        ["infinite units"],
    ),
    (
        "units_negative",
        history([*DAILY[:-1], "2026-01-10,S1,K1,walk_in,-3,10"]),
        [],
        ["negative units"],
    ),
    (
        "units_fraction",
        history([*DAILY[:-1], "2026-01-10,S1,K1,walk_in,2.5,10"]),
        [],
        ["non-integer units"],
    ),
    (
        "units_text",
        history([*DAILY[:-1], "2026-01-10,S1,K1,walk_in,lots,10"]),
        [],
        ["non-numeric units"],
    ),
    (
        "units_missing",
        history([*DAILY[:-1], "2026-01-10,S1,K1,walk_in,,10"]),
        [],
        ["missing or non-numeric units"],
    ),
    ("bad_channel", history([*DAILY[:-1], "2026-01-10,S1,K1,fax,3,10"]), [], ["channel"]),
    ("duplicate_rows", history([*DAILY, DAILY[0]]), [], ["duplicate"]),
    ("price_zero", history([*DAILY[:-1], "2026-01-10,S1,K1,walk_in,3,0"]), [], ["price"]),
    (
        "missing_units_column",
        "date,location,sku,channel\n2026-01-01,S1,K1,walk_in\n",
        [],
        ["missing column", "units"],
    ),
    ("header_only", HEADER, [], ["no rows"]),
    ("empty_file", "", [], ["cannot read history"]),
    ("binary", b"\x00\x01\x02PAR1\x00\xff", [], ["h.csv"]),
    ("latin1", history(DAILY).replace("S1", "Sö").encode("latin-1"), [], ["UTF-8"]),
    (
        "weekly_gaps",
        history(weekly_rows(skip=(4, 5))),
        [],
        ["missing weeks", "--weekly", "2 missing week"],
    ),
    (
        "skus_not_in_scenario",
        history([r.replace("K1", "X9") for r in DAILY]),
        ["--scenario", "{g.yaml}"],
        ["unknown SKU", "X9"],
    ),
    (
        "display_not_flag",
        history([r + ",2" for r in DAILY], HEADER.strip() + ",display\n"),
        [],
        ["display not 0/1"],
    ),
    (
        "depth_above_one",
        history([r + ",1.5" for r in DAILY], HEADER.strip() + ",depth\n"),
        [],
        ["depth outside"],
    ),
]


def history_cases() -> list[Case]:
    out = []
    for name, body, extra, expect in HISTORIES:
        files: Files = {"h.csv": body, "g.yaml": GOOD_TEXT}
        args = ["fit", "{h.csv}", "--out", "{model.json}", *extra]
        out.append(Case(f"history/{name}", files, args, expect))
    out.append(
        Case("history/missing", {}, ["fit", "{none.csv}", "--out", "{m.json}"], ["not found"])
    )
    out.append(Case("history/folder", {}, ["fit", "{d}", "--out", "{m.json}"], ["folder"], ["d"]))
    out.append(
        Case(
            "history/out_is_folder",
            {"h.csv": history(DAILY)},
            ["fit", "{h.csv}", "--out", "{d}"],
            ["--out", "folder"],
            ["d"],
        )
    )
    out.append(
        Case(
            "history/out_under_file",
            {"h.csv": history(DAILY)},
            ["fit", "{h.csv}", "--out", "{h.csv}/m.json"],
            ["--out", "is a file"],
        )
    )
    replay = GOOD_TEXT + "demand:\n  history: h.csv\n"
    for name, rows, expect in [
        (
            "replay_unknown_store",
            [r.replace("S1", "S7") for r in DAILY],
            ["unknown location", "S7"],
        ),
        ("replay_unknown_sku", [r.replace("K1", "K7") for r in DAILY], ["unknown SKU", "K7"]),
        ("replay_semicolons", [r.replace(",", ";") for r in DAILY], ["separator"]),
        ("replay_negative", [*DAILY[:-1], "2026-03-10,S1,K1,walk_in,-3,10"], ["negative"]),
    ]:
        header = HEADER.replace(",", ";") if "semicolons" in name else HEADER
        files = {"s.yaml": replay, "h.csv": history(rows, header)}
        out.append(Case(f"history/{name}", files, ["scenarios", "validate", "{s.yaml}"], expect))
    return out


RUN = ["run", "{g.yaml}", "--out", "{out}"]
ARGUMENTS: list[tuple[str, list[str], list[str]]] = [
    ("days_zero", [*RUN, "--days", "0"], ["--days"]),
    ("days_beyond_horizon", [*RUN, "--days", "31"], ["--days 31", "30-day horizon"]),
    ("days_100000", [*RUN, "--days", "100000"], ["--days", "1 to 30"]),
    ("days_text", [*RUN, "--days", "ten"], ["--days"]),
    ("seed_negative", [*RUN, "--seed", "-1"], ["--seed"]),
    ("seed_huge", [*RUN, "--seed", str(2**70)], ["--seed"]),
    ("seed_text", [*RUN, "--seed", "lucky"], ["--seed"]),
    ("unknown_policy", [*RUN, "--policy", "magic"], ["magic", "order-point"]),
    ("bad_ledger", [*RUN, "--ledger", "full"], ["--ledger"]),
    ("uplift_wrong_policy", [*RUN, "--uplift-file", "{g.yaml}"], ["--uplift-file"]),
    ("max_memory_text", [*RUN, "--max-memory", "lots"], ["--max-memory"]),
    ("max_memory_negative", [*RUN, "--max-memory", "-8G"], ["--max-memory"]),
    ("max_memory_too_small", [*RUN, "--max-memory", "1K"], ["too large", "--max-memory"]),
    ("out_is_file", ["run", "{g.yaml}", "--out", "{g.yaml}"], ["--out", "is a file"]),
    ("out_under_file", ["run", "{g.yaml}", "--out", "{g.yaml}/run"], ["is a file", "under it"]),
    (
        "out_not_writable",
        ["run", "{g.yaml}", "--out", "/sys/promotwin-run"],
        ["/sys", "cannot write"],
    ),
    ("out_not_empty", ["run", "{g.yaml}", "--out", "{full}"], ["not empty", "--overwrite"]),
    ("unknown_scenario", ["run", "no_such_scenario", "--out", "{out}"], ["valid: appliance_promo"]),
    (
        "validate_max_memory",
        ["scenarios", "validate", "{g.yaml}", "--max-memory", "10"],
        ["too large"],
    ),
    ("show_unknown", ["scenarios", "show", "nope"], ["valid:"]),
    (
        "readiness_days_before_zero",
        ["readiness", "{g.yaml}", "--promotion", "P1", "--days-before", "0"],
        ["--days-before"],
    ),
    (
        "readiness_days_before_too_many",
        ["readiness", "{g.yaml}", "--promotion", "P1", "--days-before", "30"],
        ["--days-before", "from 1 to 8"],
    ),
    (
        "readiness_threshold_above_100",
        ["readiness", "{g.yaml}", "--promotion", "P1", "--threshold", "150"],
        ["--threshold"],
    ),
    (
        "readiness_threshold_negative",
        ["readiness", "{g.yaml}", "--promotion", "P1", "--threshold", "-1"],
        ["--threshold"],
    ),
    (
        "readiness_quantile",
        ["readiness", "{g.yaml}", "--promotion", "P1", "--quantile", "1.2"],
        ["--quantile"],
    ),
    ("readiness_unknown_promotion", ["readiness", "{g.yaml}", "--promotion", "P9"], ["P9", "P1"]),
    ("readiness_seed", ["readiness", "{g.yaml}", "--promotion", "P1", "--seed", "-4"], ["--seed"]),
    ("demo_seed", ["demo", "--out", "{out}", "--seed", "-1"], ["--seed"]),
    ("demo_out_under_file", ["demo", "--out", "{g.yaml}/x"], ["is a file"]),
    (
        "governance_store_folder",
        ["governance", "run", "{g.yaml}", "--store", "{d}"],
        ["--store", "folder"],
    ),
    (
        "governance_store_text_file",
        ["governance", "run", "{g.yaml}", "--store", "{g.yaml}"],
        ["--store", "not a SQLite database"],
    ),
    (
        "governance_store_unwritable",
        ["governance", "run", "{g.yaml}", "--store", "/sys/x.sqlite"],
        ["--store", "cannot write"],
    ),
    (
        "governance_store_postgres_down",
        ["governance", "run", "{g.yaml}", "--store", "postgresql://twin:secret@127.0.0.1:9/twin"],
        ["--store", "127.0.0.1"],
    ),
    (
        "governance_store_bad_scheme",
        ["governance", "run", "{g.yaml}", "--store", "mongodb://x/y"],
        ["--store", "unsupported"],
    ),
    (
        "dashboard_store_text_file",
        ["dashboard", "--store", "{g.yaml}"],
        ["--store", "not a SQLite database"],
    ),
    (
        "dashboard_store_missing",
        ["dashboard", "--store", "{none.sqlite}"],
        ["--store", "no store"],
    ),
    (
        "dashboard_shadow_store_folder",
        ["dashboard", "--shadow-store", "{d}"],
        ["--shadow-store", "folder"],
    ),
    (
        "dashboard_experiments_missing",
        ["dashboard", "--experiments", "{none.sqlite}"],
        ["--experiments", "not there"],
    ),
    (
        "exceptions_store_missing",
        ["exceptions", "list", "--store", "{none.sqlite}"],
        ["--store", "no store"],
    ),
    (
        "exceptions_store_text_file",
        ["exceptions", "list", "--store", "{g.yaml}"],
        ["not a SQLite database"],
    ),
    ("audit_store_folder", ["audit", "verify", "--store", "{d}"], ["--store", "folder"]),
    ("shadow_store_folder", ["shadow", "runs", "--store", "{d}"], ["--store", "folder"]),
    (
        "shadow_store_text_file",
        ["shadow", "runs", "--store", "{g.yaml}"],
        ["--store", "not a SQLite database"],
    ),
    (
        "shadow_store_unwritable",
        ["shadow", "runs", "--store", "/sys/runs.sqlite"],
        ["--store", "cannot write"],
    ),
    (
        "governance_days_beyond",
        ["governance", "run", "{g.yaml}", "--store", "{x.sqlite}", "--days", "99"],
        ["--days"],
    ),
    ("forecast_days_zero", ["forecast", "{g.yaml}", "--days", "0"], ["--days"]),
    ("forecast_out_folder", ["forecast", "{g.yaml}", "--out", "{d}"], ["--out", "folder"]),
    (
        "compare_workers_zero",
        ["compare", "appliance_policies", "--out", "{out}", "--workers", "0"],
        ["--workers"],
    ),
    (
        "compare_out_is_file",
        ["compare", "appliance_policies", "--out", "{g.yaml}"],
        ["--out", "is a file"],
    ),
    (
        "compare_out_under_file",
        ["compare", "appliance_policies", "--out", "{g.yaml}/x"],
        ["is a file"],
    ),
    (
        "compare_out_not_experiment",
        ["compare", "appliance_policies", "--out", "{full}"],
        ["no experiment to resume"],
    ),
]


def argument_cases() -> list[Case]:
    files: Files = {"g.yaml": GOOD_TEXT, "full/something.txt": "x"}
    return [Case(f"args/{n}", files, args, expect, dirs=["d"]) for n, args, expect in ARGUMENTS]


SPEC = "name: t\nscenarios: ['{g.yaml}']\npolicies: [order-point, base-stock]\nreplications: 2\n"
SPECS: list[tuple[str, str, list[str]]] = [
    ("unknown_policy", SPEC.replace("base-stock", "magic"), ["policies", "magic"]),
    ("unknown_field", SPEC + "colour: red\n", ["colour"]),
    ("zero_replications", SPEC.replace("replications: 2", "replications: 0"), ["replications"]),
    ("duplicate_key", SPEC + "replications: 3\n", ["duplicate key 'replications'"]),
    ("bad_scenario", SPEC.replace("{g.yaml}", "{bad.yaml}"), ["horizon_days"]),
    ("missing_scenario", SPEC.replace("{g.yaml}", "nowhere.yaml"), ["not found"]),
    ("infinite_confidence", SPEC + "statistics: {confidence: .inf}\n", ["confidence"]),
    ("not_a_mapping", "- a\n- b\n", ["mapping"]),
    ("no_policies", SPEC.replace("policies: [order-point, base-stock]\n", ""), ["policies"]),
]


def spec_cases() -> list[Case]:
    out = []
    bad = scenario_yaml(setter("horizon_days", 0))
    for name, body, expect in SPECS:
        files: Files = {"e.yaml": body, "g.yaml": GOOD_TEXT, "bad.yaml": bad}
        out.append(Case(f"spec/{name}", files, ["compare", "{e.yaml}", "--out", "{out}"], expect))
    return out


GOVERNANCE: list[tuple[str, str, list[str]]] = [
    ("unknown_field", "name: g\ncolour: red\n", ["colour"]),
    ("duplicate_key", "name: g\nname: h\n", ["duplicate key 'name'"]),
    (
        "infinite_threshold",
        "name: g\nthresholds: {purchase: {max_value: .inf}}\n",
        ["thresholds.purchase.max_value"],
    ),
    ("not_utf8", "name: g\ndescription: caf\xe9\n", ["UTF-8"]),
]


def governance_cases() -> list[Case]:
    out = []
    for name, body, expect in GOVERNANCE:
        data: str | bytes = body.encode("latin-1") if name == "not_utf8" else body
        files: Files = {"rules.yaml": data}
        out.append(
            Case(f"governance/{name}", files, ["governance", "validate", "{rules.yaml}"], expect)
        )
    return out


CASES = scenario_cases() + raw_cases() + history_cases() + argument_cases()
CASES += spec_cases() + governance_cases()


def _snapshot(root: Path) -> dict[str, float]:
    """Every path under ``root``, with the modification time of files (a folder's own time
    changes when a check probes it, which writes nothing that stays)."""
    return {
        str(p.relative_to(root)): p.stat().st_mtime if p.is_file() else 0.0 for p in root.rglob("*")
    }


def run_case(case: Case, root: Path) -> str | None:
    """Run one case in ``root``; the reason it fails, or None."""
    root.mkdir()
    for name, body in case.files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            path.write_bytes(body)
        else:
            path.write_text(
                body.replace("{g.yaml}", str(root / "g.yaml")).replace(
                    "{bad.yaml}", str(root / "bad.yaml")
                )
            )
    for d in case.dirs:
        (root / d).mkdir()
    args = [_fill(a, root) for a in case.args]
    before = _snapshot(root)
    result = runner.invoke(app, args)
    text = " ".join(result.output.split())
    if result.exit_code != 2:
        return f"exit {result.exit_code}, not 2: {text[:400]}"
    if "Traceback" in result.output or "internal error" in result.output:
        return f"not a clean message: {text[:400]}"
    missing = [e for e in case.expect if e not in text]
    if missing:
        return f"message lacks {missing}: {text[:400]}"
    if _snapshot(root) != before:
        return f"wrote files: {sorted(set(_snapshot(root)) ^ set(before))}"
    return None


def _fill(arg: str, root: Path) -> str:
    if arg.startswith("{") and "}" in arg:
        name, rest = arg[1:].split("}", 1)
        return str(root / name) + rest
    return arg


def _no_server(*_args: object) -> None:
    raise AssertionError("a bad input started the dashboard server")


def test_corpus_is_large_and_covers_every_format() -> None:
    kinds = {c.name.split("/")[0] for c in CASES}
    assert len(CASES) >= 150, len(CASES)
    assert {"scenario", "raw", "history", "args", "spec", "governance", "run"} <= kinds
    assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"


def test_malformed_corpus_exit_2_named_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Typer rebuilds its click command on every invoke (~0.2 s); build it once for the corpus.
    command = typer.main.get_command(app)
    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: command)
    monkeypatch.setattr(os, "execve", _no_server)  # a `twin dashboard` case let through
    t0 = time.perf_counter()
    failures = []
    for i, case in enumerate(CASES):
        reason = run_case(case, tmp_path / f"case{i}")
        if reason is not None:
            failures.append(f"{case.name}: {reason}")
    elapsed = time.perf_counter() - t0
    assert not failures, f"{len(failures)} of {len(CASES)} cases failed:\n" + "\n".join(failures)
    assert elapsed < 30, f"the corpus took {elapsed:.1f} s"


@pytest.mark.parametrize("name", ["scenario/int_start_date", "args/days_beyond_horizon"])
def test_a_case_fails_when_the_input_is_fine(name: str, tmp_path: Path) -> None:
    """The harness itself can fail: the same command on the good scenario is not exit 2."""
    case = next(c for c in CASES if c.name == name)
    fine = Case(name, {"s.yaml": GOOD_TEXT, "g.yaml": GOOD_TEXT}, case.args[:4], case.expect)
    assert run_case(fine, tmp_path / "fine") is not None
