"""Import time of the library and of ``twin --help``, each in a fresh interpreter.

    python benchmarks/bench_import.py [--runs N] [--json]

Cases: ``import promotwin.twin``, ``import promotwin.cli.main`` and the ``twin --help`` console
script, against two baselines measured in the same run: a bare ``python -c pass`` (interpreter
start-up) and ``python -c "import numpy"`` (the floor of any numeric library). One more
reference, ``import numpy, pandas, simpy; from pydantic import BaseModel``, is the floor of the
twin's own dependencies (its network tables are DataFrames, its scenarios pydantic models): the
twin cannot import faster than that. Each case runs
``--runs`` times (default 5), the cases interleaved round-robin so a burst of load on a shared
machine hits all of them alike. Reported per case: median and min–max of wall and CPU (user + sys
of the child) seconds, and the ratio of the medians to each baseline. CPU is what compares across
runs on a shared machine; wall is what the user waits. ``--json`` adds one JSON line per case.

Targets (issue 12, median wall on an idle machine): ``import promotwin.twin`` <= 1 s,
``twin --help`` <= 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TARGETS_S = {"import promotwin.twin": 1.0, "twin --help": 0.5}
BASELINES = ("python -c pass", "import numpy")
DEPENDENCIES = "import numpy, pandas, simpy; from pydantic import BaseModel"


@dataclass(frozen=True)
class Sample:
    wall_s: float
    cpu_s: float


def twin_script() -> list[str]:
    """The installed ``twin`` console script (next to this interpreter), else ``python -m``."""
    beside = Path(sys.executable).parent / "twin"
    found = str(beside) if beside.exists() else shutil.which("twin")
    return [found] if found else [sys.executable, "-m", "promotwin.cli.main"]


def cases() -> dict[str, list[str]]:
    python = [sys.executable, "-c"]
    return {
        "python -c pass": [*python, "pass"],
        "import numpy": [*python, "import numpy"],
        DEPENDENCIES: [*python, DEPENDENCIES],
        "import promotwin.twin": [*python, "import promotwin.twin"],
        "import promotwin.cli.main": [*python, "import promotwin.cli.main"],
        "twin --help": [*twin_script(), "--help"],
    }


def run_once(command: list[str]) -> Sample:
    """Wall time of one fresh process, and the CPU time it used (from the children's rusage)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall, cpu)


def measure(commands: dict[str, list[str]], runs: int) -> dict[str, list[Sample]]:
    samples: dict[str, list[Sample]] = {name: [] for name in commands}
    for command in commands.values():  # warm the file cache; not counted
        run_once(command)
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].append(run_once(command))
    return samples


def summary(name: str, samples: list[Sample], medians: dict[str, Sample]) -> dict[str, object]:
    wall = [s.wall_s for s in samples]
    cpu = [s.cpu_s for s in samples]
    row: dict[str, object] = {
        "case": name,
        "runs": len(samples),
        "wall_median_s": round(statistics.median(wall), 3),
        "wall_min_s": round(min(wall), 3),
        "wall_max_s": round(max(wall), 3),
        "cpu_median_s": round(statistics.median(cpu), 3),
        "cpu_min_s": round(min(cpu), 3),
        "cpu_max_s": round(max(cpu), 3),
    }
    for base in BASELINES:
        key = "python" if base == "python -c pass" else "numpy"
        row[f"wall_x_{key}"] = round(statistics.median(wall) / medians[base].wall_s, 2)
        row[f"cpu_x_{key}"] = round(statistics.median(cpu) / max(medians[base].cpu_s, 1e-3), 2)
    row["cpu_x_dependencies"] = round(statistics.median(cpu) / medians[DEPENDENCIES].cpu_s, 2)
    if name in TARGETS_S:
        row["target_wall_s"] = TARGETS_S[name]
        row["meets_target"] = statistics.median(wall) <= TARGETS_S[name]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per case")
    parser.add_argument("--json", action="store_true", help="also print one JSON line per case")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    samples = measure(cases(), args.runs)
    medians = {
        name: Sample(
            statistics.median(s.wall_s for s in runs), statistics.median(s.cpu_s for s in runs)
        )
        for name, runs in samples.items()
    }
    rows = [summary(name, runs, medians) for name, runs in samples.items()]
    load = os.getloadavg()[0]
    print(
        f"{args.runs} fresh interpreters per case; "
        f"load average {load:.2f} on {os.cpu_count()} cores"
    )
    print(
        f"{'case':<52} {'wall median [min-max] s':>26} {'CPU median [min-max] s':>25}"
        f" {'wall x pass':>11} {'wall x numpy':>12} {'CPU x numpy':>11} {'CPU x deps':>10}"
        "  target"
    )
    for r in rows:
        target = ""
        if "target_wall_s" in r:
            target = f"<= {r['target_wall_s']} s wall: {'met' if r['meets_target'] else 'NOT met'}"
        print(
            f"{r['case']:<52} "
            f"{r['wall_median_s']:>8.3f} [{r['wall_min_s']:.3f}-{r['wall_max_s']:.3f}]"
            f"{'':>2} {r['cpu_median_s']:>8.3f} [{r['cpu_min_s']:.3f}-{r['cpu_max_s']:.3f}]"
            f" {r['wall_x_python']:>11.2f} {r['wall_x_numpy']:>12.2f} {r['cpu_x_numpy']:>11.2f}"
            f" {r['cpu_x_dependencies']:>10.2f}"
            f"  {target}"
        )
    if args.json:
        for r in rows:
            print(json.dumps(r | {"load_average": round(load, 2)}))


if __name__ == "__main__":
    main()
