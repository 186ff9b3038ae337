"""Where a post-event analysis reads its run and its counterfactual from.

- A twin run folder (``twin run --out``): the run as written; the counterfactual is the baseline
  policy re-run on the same scenario, seed and days.
- An experiment folder (``twin compare --out``): one arm and replication is re-run from the
  experiment's own manifest (scenario as varied, policy, forecaster, seed, days) into a run
  folder, and checked against the run id the experiment recorded; the counterfactual is the
  experiment's baseline arm (or another arm named) on the same seed: the same demand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from promotwin.experiments.post_event import PostEventError, RunFolder, find_promotion, load_run


@dataclass(frozen=True)
class Source:
    """A run folder to analyse and how to get the baseline's ledger on the same demand."""

    run_folder: Path
    baseline_label: str
    baseline_ledger: Callable[[RunFolder], pd.DataFrame]
    description: str  # what was analysed, for the report


def is_experiment_folder(path: Path) -> bool:
    return (path / "manifest.json").is_file() and (path / "results.parquet").is_file()


DEFAULT_BASELINE = "order-point"  # a run folder's counterfactual policy unless one is named


def open_source(
    path: Path | str,
    baseline: str | None = None,
    arm: str | None = None,
    replication: int = 0,
    workdir: Path | None = None,
    promotion_id: str | None = None,
) -> Source:
    """The run folder behind ``path`` (a run folder as it is; an experiment's arm re-run into
    ``workdir``, every choice checked first); a clear error naming what was expected."""
    path = Path(path)
    if is_experiment_folder(path):
        if workdir is None:
            raise PostEventError("an experiment folder needs a folder to re-run its arm into")
        return experiment_source(path, arm, replication, workdir, baseline, promotion_id)
    if arm is not None:
        raise PostEventError(
            f"--arm is for an experiment folder (`twin compare --out`); {path} is not one"
        )
    if not path.is_dir() or not (path / "manifest.json").is_file():
        raise PostEventError(
            f"{path} is not a twin run folder (`twin run --out`: manifest.json, kpis.json, "
            "ledger.parquet …) nor an experiment folder (`twin compare --out`: manifest.json, "
            "results.parquet); give one of those"
        )
    policy = baseline or DEFAULT_BASELINE
    return Source(path, policy, lambda run: policy_ledger(run, policy), f"run folder {path}")


def policy_ledger(run: RunFolder, policy: str) -> pd.DataFrame:
    """The policy's ledger on the run's scenario, seed and days: the same demand (common random
    numbers), ungoverned, the oracle forecast."""
    from promotwin.policies.registry import make_policy
    from promotwin.twin.run import simulate

    return simulate(run.scenario, make_policy(policy), seed=run.seed, days=run.days).ledger


def _experiment(folder: Path) -> tuple[dict[str, Any], Any]:
    """The experiment's manifest and its spec rebuilt (scenarios loaded, variations applied)."""
    import yaml

    from promotwin.experiments.spec import parse_spec

    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        spec_text = yaml.safe_dump(manifest["spec"], sort_keys=False)
    except (OSError, ValueError, KeyError) as exc:
        raise PostEventError(
            f"{folder}/manifest.json cannot be read as an experiment's manifest ({exc}); "
            "rerun `twin compare SPEC --out DIR`"
        ) from None
    source = str(manifest.get("spec_source", "<spec>"))
    base = Path(source).parent if Path(source).parent.is_dir() else folder
    return manifest, parse_spec(spec_text, source=source, base_dir=base)


def _arm_run(
    experiment: Any, manifest: dict[str, Any], arm: str, replication: int, cell: tuple[str, str]
) -> dict[str, Any]:
    rows = [
        r
        for r in manifest.get("runs", [])
        if r["policy"] == arm
        and r["replication"] == replication
        and (r["scenario"], r["variation"]) == cell
    ]
    if not rows:
        n = experiment.spec.replications
        raise PostEventError(
            f"the experiment has no run of {arm} replication {replication} "
            f"(replications 0 to {n - 1})"
        )
    return dict(rows[0])


@dataclass(frozen=True)
class ArmChoice:
    """An experiment's arm, replication and baseline arm, checked against its manifest."""

    experiment: Any
    arm: str
    baseline: str
    replication: int
    run: dict[str, Any]  # the manifest's record of the arm's run

    def simulate(self, label: str, seed: int, days: int) -> Any:
        """The experiment's run of ``label`` (its policy and forecaster) on the first cell."""
        from promotwin.demand.forecaster import make_forecaster
        from promotwin.experiments.spec import forecaster_of
        from promotwin.policies.registry import make_policy
        from promotwin.twin.run import simulate

        return simulate(
            self.experiment.cells[0].model,
            make_policy(dict(self.experiment.policies)[label]),
            seed=seed,
            days=days,
            forecaster=make_forecaster(*forecaster_of(self.experiment, label)),
            ledger_detail="sku",
        )


def choose_arm(
    folder: Path,
    arm: str | None,
    replication: int,
    baseline: str | None = None,
    promotion_id: str | None = None,
) -> ArmChoice:
    """``arm`` (default: the first arm that is not the baseline) and ``replication`` of the
    experiment's first scenario x variation, against the baseline arm (``baseline``: another
    arm's label); a policy name that is no arm is refused. Nothing is simulated."""
    manifest, experiment = _experiment(folder)
    labels = [label for label, _ in experiment.policies]
    base = experiment.baseline if baseline in (None, "") else baseline
    if base not in labels:
        raise PostEventError(
            f"--baseline {base!r} is not an arm of experiment {experiment.spec.name}: "
            f"give one of {', '.join(labels)}"
        )
    chosen = arm or next((x for x in labels if x != base), base)
    if chosen not in labels:
        raise PostEventError(
            f"--arm {chosen!r} is not an arm of experiment {experiment.spec.name}: "
            f"give one of {', '.join(labels)}"
        )
    cell = experiment.cells[0]  # the first scenario x variation: where the promotion is planned
    if promotion_id is not None:
        find_promotion(cell.model, promotion_id)
    run = _arm_run(experiment, manifest, chosen, replication, (cell.scenario, cell.variation))
    return ArmChoice(experiment, chosen, base, replication, run)


def experiment_source(
    folder: Path,
    arm: str | None,
    replication: int,
    workdir: Path,
    baseline: str | None = None,
    promotion_id: str | None = None,
) -> Source:
    """Re-run the chosen arm (``choose_arm``) into ``workdir``, checked against the run id the
    experiment recorded; the baseline arm on the same seed is the counterfactual."""
    from promotwin.twin.run import write_outputs

    c = choose_arm(folder, arm, replication, baseline, promotion_id)
    result = c.simulate(c.arm, int(c.run["seed"]), int(c.run["days"]))
    if result.run_id != c.run["run_id"]:
        raise PostEventError(
            f"re-running {c.arm} replication {replication} gives run {result.run_id}, not the "
            f"experiment's {c.run['run_id']} (another promotwin version or changed inputs); "
            "rerun `twin compare` first"
        )
    out = Path(workdir) / f"{c.arm}-replication-{replication}"
    write_outputs(result, out)
    cell = c.experiment.cells[0]
    return Source(
        out,
        c.baseline,
        lambda r: c.simulate(c.baseline, r.seed, r.days).ledger,
        f"experiment {c.experiment.spec.name} ({folder}): arm {c.arm}, replication "
        f"{replication} of {cell.scenario} · {cell.variation}, seed {c.run['seed']}; the "
        f"baseline arm {c.baseline} on the same seed",
    )


def check_source(
    path: Path | str,
    promotion_id: str,
    baseline: str | None = None,
    arm: str | None = None,
    replication: int = 0,
) -> None:
    """Every choice checked before anything is simulated or written (``PostEventError``)."""
    from promotwin.policies.registry import make_policy

    path = Path(path)
    if replication < 0:
        raise PostEventError("--replication must be 0 or more")
    if is_experiment_folder(path):
        choose_arm(path, arm, replication, baseline, promotion_id)
        return
    open_source(path, baseline, arm)  # the folder's kind, before it is read
    find_promotion(load_run(path).scenario, promotion_id)
    make_policy(baseline or DEFAULT_BASELINE)


@dataclass(frozen=True)
class ExperimentArms:
    """What an experiment folder offers a post-event analysis (for pickers)."""

    arms: list[str]
    baseline: str
    replications: int
    promotions: list[str]  # of its first scenario x variation


def experiment_arms(folder: Path | str) -> ExperimentArms:
    _, experiment = _experiment(Path(folder))
    return ExperimentArms(
        [label for label, _ in experiment.policies],
        experiment.baseline,
        experiment.spec.replications,
        [p.id for p in experiment.cells[0].model.promotions],
    )
