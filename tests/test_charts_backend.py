"""Charts leave the user's matplotlib as it was: importing and drawing the run, dashboard and
report charts keeps the backend the user chose and adds no pyplot figure."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

SCENARIO = {
    "name": "tiny",
    "start_date": "2026-03-02",
    "horizon_days": 20,
    "warmup_days": 2,
    "synthetic": {
        "stores": 2,
        "dcs": 1,
        "skus": 3,
        "suppliers": 1,
        "categories": 1,
        "promotions": 1,
        "seed": 3,
    },
}
SPEC = {
    "name": "tiny-report",
    "scenarios": ["tiny.yaml"],
    "policies": ["order-point", "base-stock"],
    "replications": 2,
    "base_seed": 4,
}

DRAW = """
import json, sys
from pathlib import Path

import matplotlib

matplotlib.use("svg")  # the user's own choice, as a notebook sets its inline backend
import matplotlib.pyplot as plt

plt.figure()  # a figure the user has open

import pandas as pd

from promotwin.dashboards import charts as dashboard_charts
from promotwin.experiments.report import write_report
from promotwin.experiments.runner import run_experiment
from promotwin.experiments.spec import load_spec
from promotwin.policies.registry import make_policy
from promotwin.scenarios import load_scenario
from promotwin.twin import simulate
from promotwin.twin.charts import comparison_chart
from promotwin.twin.run import write_outputs

imported = matplotlib.get_backend()
out = Path(sys.argv[1])
scenario = load_scenario(str(out / "tiny.yaml"))
runs = [simulate(scenario, make_policy(p), seed=1) for p in ("order-point", "base-stock")]
write_outputs(runs[0], out / "run")
comparison_chart(runs, out / "comparison.png")
experiment = load_spec(str(out / "spec.yaml"))
result = run_experiment(experiment, out / "experiment", workers=1)
write_report(experiment, result.results, out / "experiment")
sweep = pd.DataFrame(
    {"depth": [0.1, 0.2], "promo_fill_rate": [0.9, 0.8], "promo_lost_sales_units": [5.0, 9.0]}
)
dashboard_charts.sweep_figure(sweep, 0.1, 0.2).savefig(out / "sweep.png")
shadow = pd.DataFrame(
    {
        "started": ["2026-03-02T08:00:00+00:00", "2026-03-03T08:00:00+00:00"],
        "status": ["ok", "failed"],
        "agreement_rate": [0.7, 0.0],
        "order_agreement_rate": [0.5, 0.0],
    }
)
dashboard_charts.agreement_figure(shadow).savefig(out / "agreement.png")
print(json.dumps({"imported": imported, "drawn": matplotlib.get_backend(),
                  "figures": plt.get_fignums()}))
"""


def test_charts_keep_the_users_backend_and_figures(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(SCENARIO, sort_keys=False))
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(SPEC, sort_keys=False))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DRAW), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout.splitlines()[-1])
    assert state == {"imported": "svg", "drawn": "svg", "figures": [1]}
    pngs = [
        tmp_path / "run" / "promoted_category.png",
        tmp_path / "comparison.png",
        tmp_path / "sweep.png",
        tmp_path / "agreement.png",
        *sorted((tmp_path / "experiment").glob("*.png")),
    ]
    assert len(pngs) >= 6
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
