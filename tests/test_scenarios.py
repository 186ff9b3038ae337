"""Scenario schema, generator and library."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from promotwin.scenarios import ScenarioError, compile_network, library_names, load_scenario
from promotwin.scenarios.generator import generate_network
from promotwin.scenarios.schema import Store, Synthetic

BAD = sorted((Path(__file__).parent / "data" / "bad_scenarios").glob("*.yaml"))


def expectations(path: Path) -> list[str]:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name} needs an '# expect:' first line"
    return [x.strip() for x in first.removeprefix("# expect: ").split("|")]


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_malformed_scenarios_list_every_problem(path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    text = str(info.value)
    for expected in expectations(path):
        assert expected in text, f"{path.name}: {expected!r} not in {text}"
    assert len(info.value.problems) >= len(expectations(path))


def test_library_has_the_reference_story() -> None:
    assert {"appliance_promo", "steady_network", "large_network"} <= set(library_names())
    s = load_scenario("appliance_promo")
    assert len(s.stores) >= 40 and len({x.region for x in s.stores}) >= 3
    assert len(s.dcs) == 2 and len(s.suppliers) >= 3
    promo = s.promotions[0]
    assert (promo.end - promo.start).days + 1 == 21 and "ecommerce" in promo.channels
    promoted = set(promo.skus)
    assert len(promoted) >= 30
    categories = {k.category for k in s.skus if k.id in promoted}
    adjacent = [k for k in s.skus if k.category in categories and k.id not in promoted]
    assert adjacent, "non-promoted SKUs in the promoted categories get cannibalised"


def test_large_network_size() -> None:
    s = load_scenario("large_network")
    assert (len(s.stores), len(s.skus), s.horizon_days) == (500, 2000, 365)


def test_schema_is_strict_and_frozen() -> None:
    with pytest.raises(ValidationError):
        Store(id="S", region="R", colour="red")  # type: ignore[call-arg]
    store = Store(id="S", region="R")
    with pytest.raises(ValidationError):
        store.region = "Q"  # type: ignore[misc]


def test_generator_is_seeded_and_sized() -> None:
    import datetime as dt

    spec = Synthetic(stores=30, dcs=3, skus=50, suppliers=4, seed=3)
    a = generate_network(spec, dt.date(2026, 1, 1), 60)
    b = generate_network(spec, dt.date(2026, 1, 1), 60)
    c = generate_network(spec.model_copy(update={"seed": 4}), dt.date(2026, 1, 1), 60)
    assert a == b and a != c
    assert len(a["stores"]) == 30 and len(a["skus"]) == 50 and len(a["dcs"]) == 3
    served = [s for dc in a["dcs"] for s in dc.serves]
    assert sorted(served) == sorted(s.id for s in a["stores"])  # every store served exactly once


def test_network_index_maps() -> None:
    s = load_scenario("appliance_promo")
    net = compile_network(s)
    assert list(net.locations.index[: net.n_dcs]) == ["DC-NORTH", "DC-SOUTH"]
    assert (net.serving_dc[net.n_dcs :] < net.n_dcs).all()
    lane = net.store_lane
    assert len(lane) == net.n_stores
