"""The report's charts: reference values from the tasks, scales chosen by the data, layouts that fit.

Reference values are checked against an independent computation (numpy's least squares on the
same split); charts are drawn from cells built by the real aggregation and checked on the drawn
figure (scales, lines, label and legend boxes), never on pixels.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from optbench.metrics import metric
from optbench.report import charts
from optbench.report.colours import colour_map
from optbench.metrics import METRICS as METRIC_BY_COLUMN
from optbench.report.aggregate import cell_stats, curve_stats, reference_values, seed_values
from optbench.store.frame import CELL_COLUMNS
from optbench.tasks import get_task
from optbench.tasks.base import split_indices
from optbench.tasks.mlp import FRIEDMAN_NOISE
from optbench.tasks.regression import SYNTHETIC_NOISE, synthetic_line

RMSE, ACCURACY = METRIC_BY_COLUMN["test_rmse"], METRIC_BY_COLUMN["test_accuracy"]


# --- reference values, from the tasks -------------------------------------------------------------

def test_regression_optimum_is_numpy_least_squares_on_the_same_split(tmp_path: Path) -> None:
    data = get_task("regression").load("synthetic", tmp_path)
    x, y = (t.numpy() for t in synthetic_line())
    train, test = (i.numpy() for i in split_indices(len(x)))
    design = np.column_stack([x, np.ones(len(x))])
    coef, *_ = np.linalg.lstsq(design[train], y[train], rcond=None)
    rmse = float(np.sqrt(np.mean((design[test] @ coef - y[test]) ** 2)))
    assert data.reference["optimum_rmse"] == pytest.approx(rmse, rel=1e-9)
    assert data.reference["noise_floor_rmse"] == SYNTHETIC_NOISE


def test_each_task_declares_its_references_through_its_data(tmp_path: Path) -> None:
    assert get_task("mlp").load("synthetic", tmp_path).reference == {"noise_floor_rmse": FRIEDMAN_NOISE}
    assert get_task("cifar10").load("synthetic", tmp_path).reference == {"chance_accuracy": 0.1,
                                                                          "chance_loss": pytest.approx(math.log(10))}
    for name in ("optimum_rmse", "noise_floor_rmse", "chance_accuracy", "chance_loss"):  # with the metric they refer to
        assert metric(name).reference_of in ("test_rmse", "test_accuracy", "test_loss")


def test_a_run_stores_the_references_with_its_test_metrics(tmp_path: Path) -> None:
    from optbench.engine.eager import run
    from optbench.config.suite import build_specs, load_suite

    suite = load_suite(None, {"tasks": ["regression"], "optimizers": ["sgd"], "epochs": 1, "device": "cpu"},
                       source="test")
    record = run(build_specs(suite)[0], data_dir=tmp_path).to_record()
    data = get_task("regression").load("synthetic", tmp_path)
    assert record["metrics"]["optimum_rmse"] == pytest.approx(data.reference["optimum_rmse"])
    assert record["metrics"]["noise_floor_rmse"] == SYNTHETIC_NOISE


def test_references_are_read_from_the_runs_for_the_metric_they_refer_to() -> None:
    runs = pd.DataFrame({"optimum_rmse": [1469.0, 1469.0, None], "noise_floor_rmse": [1500.0, None, None],
                         "chance_accuracy": [None, None, None]})
    assert [(ref.name, v) for ref, v in reference_values(runs, "test_rmse")] == \
        [("optimum_rmse", 1469.0), ("noise_floor_rmse", 1500.0)]
    assert reference_values(runs, "test_accuracy") == []  # no run stored it: no line
    assert reference_values(pd.DataFrame({"test_rmse": [1.0]}), "test_rmse") == []  # records from before references


# --- scales --------------------------------------------------------------------------------------

def test_log_scale_only_where_the_spread_needs_it() -> None:
    assert charts.log_scale([1469, 1470, 4371]) == (False, pytest.approx(4371 / 1469))
    assert charts.log_scale([0.1, 2.9])[0] is False  # 29x: still linear
    assert charts.log_scale([0.1, 3.1, float("nan"), float("inf")])[0] is True
    assert charts.log_scale([0.0, 5.0, 500.0])[0] is False  # zero has no place on a log axis
    assert charts.log_scale([])[0] is False


# --- charts from cells -----------------------------------------------------------------------------

def fake_runs(n_cells: int, seeds: int = 3, task: str = "regression", spread: float = 1.0) -> pd.DataFrame:
    """Runs of ``n_cells`` cells (every fourth a variant with more epochs, the last all diverged, one
    with a single seed) in the columns the aggregation reads."""
    names = ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax",
             "nadam", "radam", "amsgrad"]
    rows = []
    rng = np.random.default_rng(0)
    for c in range(n_cells):
        optimizer = names[c % len(names)]
        epochs = 20 if c % 4 else 10
        label = optimizer if c < len(names) else f"{optimizer}(lr={0.01 * c:g})"
        for seed in range(1 if c == 1 else seeds):
            status = "diverged" if c == n_cells - 1 else "ok"
            value = (1 + c * spread / n_cells) * (1 + 0.05 * rng.random())
            seconds = 0.1 * (1 + c % 5) * (1 + 0.1 * rng.random())
            metrics = ({"test_accuracy": min(0.95, 0.2 + 0.05 * c * rng.random()), "chance_accuracy": 0.1,
                        "chance_loss": math.log(10)}
                       if task == "cifar10" else {"test_rmse": 1469 * value, "optimum_rmse": 1469.0,
                                                   "noise_floor_rmse": 1500.0})
            curve = [{"epoch": e, "time_s": seconds * e / 3, "train_loss": 1.0 / (e + c), "test_loss": 1.0 / e,
                      "test_metric": metrics.get("test_accuracy", 1.0 / e)} for e in (1, 2, 3)]
            rows.append({"task": task, "dataset": "synthetic", "label": label, "hparams": "", "epochs": epochs,
                         "batch_size": 64, "device": "cpu", "training": "", "code": "", "optimizer": optimizer,
                         "cell_hash": f"{c:016x}", "seed": seed, "status": status, "split": "test",
                         "metric_name": "accuracy" if task == "cifar10" else "rmse",
                         "train_seconds": seconds, **({} if status == "diverged" else metrics),
                         "curve": curve if status == "ok" else []})
    return pd.DataFrame(rows)


def chart_inputs(runs: pd.DataFrame, main: str, short_names: bool = False
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    cells = cell_stats(runs)
    cells["name"] = [label if short_names else f"{label} · {e} ep" for label, e in zip(cells["label"], cells["epochs"])]
    seeds = seed_values(runs, ["train_seconds", main]).merge(cells[[*CELL_COLUMNS, "name"]], on=CELL_COLUMNS)
    curves = curve_stats(runs).merge(cells[[*CELL_COLUMNS, "name"]], on=CELL_COLUMNS)
    return cells, seeds, curves


def drawn(fig: Figure) -> Figure:
    """``fig`` rendered to a PNG with every warning an error (tight layouts that do not fit warn)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = charts.render(fig)["png"]
    assert png.startswith(b"\x89PNG")
    return fig


def drawn_canvas(fig: Figure):
    """The renderer of ``fig`` drawn on an Agg canvas at the PNG's dpi (as ``charts.render`` draws it,
    which solves the layout once, at that dpi), for layout boxes."""
    fig.set_dpi(150)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def boxes_apart(a, b) -> bool:
    return a.x1 <= b.x0 or b.x1 <= a.x0 or a.y1 <= b.y0 or b.y1 <= a.y0


def assert_nothing_overlaps(fig: Figure) -> None:
    """Legends lie outside every axes and apart from the title; tick labels do not run into each other."""
    renderer = drawn_canvas(fig)
    title = fig._suptitle.get_window_extent(renderer)
    for legend in fig.legends:
        box = legend.get_window_extent(renderer)
        assert boxes_apart(box, title)
        for ax in fig.axes:
            assert boxes_apart(box, ax.get_window_extent(renderer)), "legend on the plot"
    for ax in fig.axes:
        assert boxes_apart(title, ax.get_tightbbox(renderer).shrunk(1, 0.999))
        labels = [t.get_window_extent(renderer) for t in ax.get_yticklabels() if t.get_text() and t.get_visible()]
        for upper, lower in zip(labels, labels[1:]):
            assert boxes_apart(upper, lower), "tick labels overlap"


@pytest.mark.parametrize("n_cells", [4, 18])
def test_comparison_is_dots_with_intervals_on_a_zero_based_axis_with_reference_lines(n_cells: int) -> None:
    runs = fake_runs(n_cells)
    cells, seeds, _ = chart_inputs(runs, "test_rmse")
    colours = colour_map(cells["optimizer"])
    fig = drawn(charts.comparison_chart(cells, seeds, colours, "regression on synthetic", RMSE,
                                        reference_values(runs, "test_rmse")))
    runtime, error = fig.axes
    assert not runtime.patches and not error.patches  # no bars
    for ax in (runtime, error):
        assert ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0 and "log" not in ax.get_xlabel()
    assert "RMSE" in error.get_xlabel()
    vertical = sorted(line.get_xdata()[0] for line in error.get_lines() if line.get_label() == "_reference")
    assert vertical == [1469.0, 1500.0]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "least-squares optimum: 1,469" in legend and "noise floor (noise σ): 1,500" in legend
    means = [line for line in error.get_lines() if not line.get_label().startswith("_")]
    assert len(means) == n_cells - 1  # every cell with an ok run; the diverged one gets a note
    assert any("no ok run" in t.get_text() for t in error.texts)
    assert_nothing_overlaps(fig)


def test_comparison_turns_logarithmic_when_the_spread_needs_it_and_says_so() -> None:
    runs = fake_runs(6, spread=400.0)
    cells, seeds, _ = chart_inputs(runs, "test_rmse")
    fig = drawn(charts.comparison_chart(cells, seeds, colour_map(cells["optimizer"]), "t", RMSE))
    runtime, error = fig.axes
    assert runtime.get_xscale() == "linear"
    assert error.get_xscale() == "log" and "log scale: the values span" in error.get_xlabel()
    assert not error.patches


def test_classification_compares_accuracy_in_percent_with_the_chance_line() -> None:
    runs = fake_runs(3, task="cifar10")
    cells, seeds, curves = chart_inputs(runs, "test_accuracy", short_names=True)
    refs = reference_values(runs, "test_accuracy")
    colours = colour_map(cells["optimizer"])
    fig = drawn(charts.comparison_chart(cells, seeds, colours, "cifar10 on synthetic", ACCURACY, refs))
    accuracy = fig.axes[1]
    assert "accuracy (%)" in accuracy.get_xlabel() and "cross-entropy" not in accuracy.get_xlabel()
    assert [line.get_xdata()[0] for line in accuracy.get_lines() if line.get_label() == "_reference"] == [0.1]
    assert "chance: 10.0%" in [t.get_text() for t in fig.legends[0].get_texts()]
    fig = drawn(charts.accuracy_chart(cells[cells["n"] > 0], curves, colours, "cifar10 on synthetic", refs))
    assert fig.legends[0]._ncols == 1  # short: right of the plot, below the title
    assert_nothing_overlaps(fig)
    ax = fig.axes[0]
    assert ax.get_ylim()[0] == 0 and [line.get_ydata()[0] for line in ax.get_lines()
                                      if line.get_label() == "_reference"] == [0.1]
    assert "chance: 10.0%" in [t.get_text() for t in fig.legends[0].get_texts()]
    fig = drawn(charts.convergence_chart(cells, curves, colours, "cifar10 on synthetic", "training loss",
                                         reference_values(runs, "test_loss")))
    for ax in fig.axes:  # the cross-entropy of a uniform guess, ln 10
        assert [line.get_ydata()[0] for line in ax.get_lines() if line.get_label() == "_reference"] == \
            [pytest.approx(math.log(10))]
    assert "chance (uniform guess): 2.30" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_many_cells_get_a_legend_in_columns_below_the_plots() -> None:
    runs = fake_runs(18)
    cells, _, curves = chart_inputs(runs, "test_rmse")
    colours = colour_map(cells["optimizer"])
    fig = drawn(charts.convergence_chart(cells, curves, colours, "regression on synthetic", "training loss"))
    legend = fig.legends[0]
    assert legend._ncols >= 2 and len(legend.get_texts()) == charts.MAX_LINES == 12
    renderer = drawn_canvas(fig)
    box = legend.get_window_extent(renderer)
    assert all(box.y1 <= ax.get_tightbbox(renderer).y0 + 1 for ax in fig.axes)  # below the plots
    plots = sum(ax.get_window_extent(renderer).height for ax in fig.axes[:1])
    assert box.height < plots  # the plot, not the legend, takes most of the figure
    assert_nothing_overlaps(fig)
    few = drawn(charts.convergence_chart(cells.head(4), curves, colours, "regression on synthetic", "training loss"))
    assert few.legends[0]._ncols == 1  # a short legend stays right of the plots
    assert_nothing_overlaps(few)


def test_a_chart_of_many_cells_shows_each_optimizers_best_and_says_so() -> None:
    """Past MAX_ROWS cells (MAX_LINES for line charts) a chart draws each optimizer's best cell, and
    its title says so; fewer cells are all drawn, with no note."""
    runs = fake_runs(40)
    cells, seeds, curves = chart_inputs(runs, "test_rmse")
    colours = colour_map(cells["optimizer"])
    best = cells.drop_duplicates("optimizer")  # cells come best first
    fig = drawn(charts.comparison_chart(cells, seeds, colours, "regression on synthetic", RMSE))
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(best["name"])
    assert fig._suptitle.get_text().endswith("each optimizer's best setting (12 of 40; the table has all)")
    fig = drawn(charts.convergence_chart(cells, curves, colours, "regression on synthetic", "training loss"))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(best["name"])
    assert "12 of 40" in fig._suptitle.get_text()
    assert_nothing_overlaps(fig)
    few, note = charts.shown(cells.head(charts.MAX_ROWS), charts.MAX_ROWS)
    assert len(few) == charts.MAX_ROWS and note == ""
    top, note = charts.shown(cells, 5)  # more optimizers than fit: the best ones
    assert list(top["name"]) == list(best["name"][:5]) and note.startswith("the 5 best optimizers' best settings")


def test_time_to_target_is_dots_from_zero_never_bars() -> None:
    rows = pd.DataFrame({"optimizer": ["adam", "sgd", "sgd"], "name": ["adam", "sgd", "sgd(lr=0.1)"],
                         "seconds": [0.5, 0.95, math.inf], "epochs": [2.0, 4.0, math.inf],
                         "steps": [200.0, 400.0, math.inf], "runs": [3, 3, 3],
                         "reached": [3, 2, 0]})
    fig = drawn(charts.time_to_target_chart(rows, colour_map(rows["optimizer"]), "t", "loss=0.1"))
    ax = fig.axes[0]
    assert not ax.patches and ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0
    assert any("not reached (0 of 3 seeds reached it)" in t.get_text() for t in ax.texts)


@pytest.mark.parametrize("kind", ["sensitivity", "convergence"])
def test_a_long_log_scale_axis_label_is_wrapped_inside_the_figure_not_cut(kind: str) -> None:
    """A log axis names its spread in the label: ``final validation RMSE (target units) (log scale:
    the values span 64x)`` is longer than a 4.4-inch chart is tall; it wraps onto two lines."""
    from dataclasses import replace as with_fields

    from optbench.execution.selection import Candidate, Choice
    from optbench.report import fair
    from optbench.spec import RunSpec

    if kind == "sensitivity":
        spec = RunSpec.from_dict({"task": "regression", "dataset": "synthetic", "optimizer": "momentum",
                                  "hparams": {"lr": 1e-5}, "epochs": 2, "batch_size": 64, "seed": 0, "device": "cpu"})
        candidates = [Candidate(with_fields(spec, hparams={"lr": lr}), "ok", v)
                      for lr, v in ((1e-5, 90_000.0), (1e-3, 5_000.0), (1e-2, 1_400.0))]
        choice = Choice("regression", "synthetic", "momentum", "val_rmse", False, candidates, candidates[-1])
        fig = charts.sensitivity_chart([fair.sensitivity(choice)], ["momentum"], {"momentum": "#E69F00"},
                                       "regression on synthetic", metric("val_rmse"))
    else:
        runs = fake_runs(3)
        runs["curve"] = [[{"epoch": e, "time_s": e, "train_loss": 100.0 / e ** 3, "test_loss": None,
                           "test_metric": None} for e in (1, 2, 3, 4)] for _ in range(len(runs))]
        cells, _, curves = chart_inputs(runs, "test_rmse")
        fig = charts.convergence_chart(cells, curves, colour_map(cells["optimizer"]), "regression on synthetic",
                                       "training loss, MSE on standardised target")
    renderer = drawn_canvas(drawn(fig))
    label = fig.axes[0].yaxis.label
    box, page = label.get_window_extent(renderer), fig.bbox
    assert page.y0 <= box.y0 and box.y1 <= page.y1 and page.x0 <= box.x0, (box, page)
    assert "log scale" in label.get_text() and "\n" in label.get_text()
