"""Report chart axes read cleanly: short amounts, no "-0", one tick for an all-zero panel."""

from __future__ import annotations

from promotwin.experiments.report import _format_axis, compact


def _tick_labels(values: list[float], kpi: str) -> list[str]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot(range(len(values)), values, "o")
    _format_axis(ax.yaxis, kpi)
    fig.canvas.draw()
    low, high = ax.get_ylim()
    ticks = zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)
    return [t.get_text() for v, t in ticks if low <= v <= high]


def test_compact_amounts() -> None:
    assert [compact(v) for v in (0.0, -0.3, 850, 9_999, 12_400, 1_250_000, 3e6)] == [
        "0",
        "0",
        "850",
        "9,999",
        "12k",
        "1.25M",
        "3M",
    ]


def test_an_all_zero_panel_has_one_tick() -> None:
    assert _tick_labels([0.0, 0.0, 0.0], "expedite_cost") == ["0"]


def test_large_amounts_do_not_run_together() -> None:
    labels = _tick_labels([1_150_000, 1_260_000, 1_380_000], "avg_inventory_value")
    assert 2 <= len(labels) <= 6 and all(len(x) <= 6 and x.endswith("M") for x in labels), labels
