"""One run sharded by SKU group on Dask (``experiments.shards``, ``twin run --shards``).

Truths: one shard is the single-process run, line for line; where no shared capacity binds, K
shards (on a LocalCluster, whichever worker runs which, or one after another in one process)
are the unsharded run, ledger line for line; units are conserved across the gathered shards; a
worker killed mid-run leaves no result folder.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

import dask
import distributed  # before any dask.config.set: its defaults must outlive the set
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from promotwin.cli.main import app
from promotwin.experiments.runner import local_cluster
from promotwin.experiments.shards import (
    INLINE,
    ShardError,
    ShardFailed,
    assign_shards,
    run_sharded,
    shard_specs,
)
from promotwin.policies.registry import make_policy
from promotwin.scenarios import Scenario
from promotwin.testing.scenarios import small_scenario
from promotwin.twin import simulate
from promotwin.twin.ledger import Kind

DAYS = 30


def _scenario(**synthetic: int) -> Scenario:
    spec = {"stores": 6, "dcs": 2, "skus": 12, "suppliers": 3, "categories": 4, "seed": 5}
    return small_scenario(synthetic={**spec, "promotions": 2, **synthetic}, horizon_days=DAYS)


def _unbound(scenario: Scenario) -> Scenario:
    """``scenario`` with a hidden truth, a halo and no shared capacity that can bind (lanes and
    suppliers are unlimited already; DC throughput made so; the fixed order cost, which shards
    share, zero): shards then change nothing but who computes what."""
    truth = {
        "uplift_deviations": (
            {"promotions": ("P1",), "regions": ("R1",), "deviation": 0.4, "sd": 0.2},
            {"deviation": -0.2, "sd": 0.1, "channels": ("ecommerce",)},
        )
    }
    demand = scenario.demand.model_copy(
        update={"truth": scenario.demand.truth.model_validate(truth), "halo": {"C01": ("C03",)}}
    )
    return scenario.model_copy(
        update={
            "demand": demand,
            "dcs": tuple(d.model_copy(update={"throughput": 1e9}) for d in scenario.dcs),
            "suppliers": tuple(
                v.model_copy(update={"order_cost": 0.0}) for v in scenario.suppliers
            ),
        }
    )


def _outputs(folder: Path) -> dict[str, pd.DataFrame]:
    return {n: pd.read_parquet(folder / f"{n}.parquet") for n in ("ledger", "daily", "decisions")}


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), ignore_index=True)


@pytest.fixture(scope="module")
def cluster_address(tmp_path_factory: pytest.TempPathFactory) -> object:
    scratch = tmp_path_factory.mktemp("dask")
    with dask.config.set({"temporary-directory": str(scratch)}), local_cluster(2) as cluster:
        yield cluster.scheduler_address


def test_one_shard_is_the_single_process_run(tmp_path: Path, cluster_address: str) -> None:
    scenario = _scenario()
    plain = simulate(scenario, make_policy("base-stock"), seed=4, days=DAYS)
    run = run_sharded(scenario, "base-stock", tmp_path / "k1", 1, 4, DAYS, cluster_address)
    got = _outputs(tmp_path / "k1")
    pd.testing.assert_frame_equal(got["ledger"], plain.ledger)
    pd.testing.assert_frame_equal(got["daily"], plain.daily)
    assert run.kpis == plain.kpis
    assert run.run_id == plain.run_id


@pytest.mark.parametrize("policy", ["base-stock", "order-point"])
def test_shards_are_the_unsharded_run_when_no_shared_capacity_binds(
    tmp_path: Path, cluster_address: str, policy: str
) -> None:
    """3 shards on 2 workers (which runs which is the scheduler's choice) and inline: the
    unsharded run's ledger, line for line (every per-SKU draw comes from its category's own
    stream), its KPIs and its daily integers; the daily money columns are sums over SKUs added
    in another order (within 1e-12)."""
    scenario = _unbound(_scenario())
    plain = simulate(scenario, make_policy(policy), seed=4, days=DAYS)
    assert plain.ledger["kind"].eq(int(Kind.SUPPLIER_RECEIPT)).any()
    inline = run_sharded(scenario, policy, tmp_path / "inline", 3, 4, DAYS, INLINE)
    dask_run = run_sharded(scenario, policy, tmp_path / "dask", 3, 4, DAYS, cluster_address)
    for run, name in ((inline, "inline"), (dask_run, "dask")):
        got = _outputs(tmp_path / name)
        pd.testing.assert_frame_equal(_sorted(got["ledger"]), _sorted(plain.ledger))
        assert run.kpis == plain.kpis
        exact = [c for c in plain.daily.columns if plain.daily[c].dtype.kind != "f"]
        pd.testing.assert_frame_equal(got["daily"][exact], plain.daily[exact])
        pd.testing.assert_frame_equal(got["daily"], plain.daily, check_exact=False, rtol=1e-12)
    # the shards own disjoint SKUs, every SKU once
    specs = shard_specs(scenario, 3, 4)
    owned = np.concatenate([s.sku_index for s in specs])
    assert sorted(owned.tolist()) == list(range(12))


def test_a_shard_that_binds_a_share_differs_from_the_unsharded_run(tmp_path: Path) -> None:
    """The test above can fail: with DC throughput that binds, a shard cannot borrow another's
    unused share, and the ledger differs."""
    scenario = _unbound(_scenario())
    tight = scenario.model_copy(
        update={"dcs": tuple(d.model_copy(update={"throughput": 40.0}) for d in scenario.dcs)}
    )
    plain = simulate(tight, make_policy("base-stock"), seed=4, days=DAYS)
    run_sharded(tight, "base-stock", tmp_path / "tight", 3, 4, DAYS, INLINE)
    got = _outputs(tmp_path / "tight")["ledger"]
    assert not _sorted(got).equals(_sorted(plain.ledger))


def test_units_are_conserved_across_the_gathered_shards(tmp_path: Path) -> None:
    """Every day: opening stock + supplier receipts - sales = on hand + in transit (the daily
    record is taken after the day's sales, before its dispatches), for the whole network."""
    run_sharded(_scenario(), "base-stock", tmp_path / "run", 2, 9, DAYS, INLINE)
    out = _outputs(tmp_path / "run")
    ledger, daily = out["ledger"], out["daily"]

    def per_day(*kinds: Kind) -> pd.Series:
        rows = ledger[ledger["kind"].isin([int(k) for k in kinds])]
        return rows.groupby("day")["qty"].sum().reindex(range(DAYS), fill_value=0)

    opening = ledger.loc[ledger["kind"] == int(Kind.INITIAL), "qty"].sum()
    received = per_day(Kind.SUPPLIER_RECEIPT, Kind.EXPEDITE_RECEIPT).cumsum()
    sold = per_day(Kind.SALE).cumsum()
    held = daily.groupby("day")[["on_hand", "in_transit"]].sum().sum(axis=1)
    assert (per_day(Kind.SALE) > 0).all() and received.iloc[-1] > 0
    np.testing.assert_array_equal(held.to_numpy(), (opening + received - sold).to_numpy())


def test_shards_are_balanced_whole_categories() -> None:
    full = _scenario()  # parsed: its synthetic network is explicit
    groups = assign_shards(full, 2)
    category = {s.id: s.category for s in full.skus}
    assert not {category[x] for x in groups[0]} & {category[x] for x in groups[1]}
    with pytest.raises(ShardError, match="independent category"):
        assign_shards(full, 5)


def test_a_worker_killed_mid_run_leaves_no_result_folder(tmp_path: Path) -> None:
    """No retries (allowed-failures 0): the killed shard fails the run, which writes nothing."""
    scenario = _scenario(stores=60, skus=400, categories=8)
    scratch = tmp_path / "dask"
    config = {"temporary-directory": str(scratch), "distributed.scheduler.allowed-failures": 0}
    out = tmp_path / "runs" / "killed"
    with dask.config.set(config), local_cluster(2) as cluster:
        failure: list[BaseException] = []

        def run() -> None:
            try:
                run_sharded(scenario, "base-stock", out, 2, 1, DAYS, cluster.scheduler_address)
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        with distributed.Client(cluster, set_as_default=False) as client:
            deadline = time.monotonic() + 120
            while not any(client.processing().values()) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # the shards are running their twins
            busy = [w for w, tasks in client.processing().items() if tasks]
            pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)
        thread.join(timeout=300)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    assert failure and isinstance(failure[0], ShardFailed), failure
    assert "nothing was written" in str(failure[0])
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".killed.")]


def test_cli_names_a_bad_shard_request_before_any_work(tmp_path: Path) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(_scenario().model_dump(mode="json"), sort_keys=False))
    runner = CliRunner()
    for args, message in (
        (["--shards", "9"], "independent category"),
        (["--shards", "0"], "at least 1"),
        (["--scheduler", "tcp://127.0.0.1:1"], "applies with --shards"),
        (["--shards", "2", "--policy", "hindsight"], "--forecast oracle or plan"),
    ):
        result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "o"), *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert not (tmp_path / "o").exists()


def test_cli_runs_shards_as_one_run(tmp_path: Path) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(_scenario().model_dump(mode="json"), sort_keys=False))
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["run", str(path), "--out", str(out), "--shards", "2", "--days", "10"]
    )
    assert result.exit_code == 0, result.output
    assert {"manifest.json", "kpis.json", "ledger.parquet", "daily.parquet"} <= {
        p.name for p in out.iterdir()
    }
    assert len(list((out / "ledger.parquet").glob("part-*.parquet"))) == 2
    ledger = pd.read_parquet(out / "ledger.parquet")
    assert ledger["day"].max() == 9
