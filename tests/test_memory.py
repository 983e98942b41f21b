"""Memory beside time: every record's optimizer state and parameter bytes (exact, equal to hand counts
and between engines), the peak resident set of the training window on CPU, the report's ``state``
column and bar panel, and ``optbench check`` guarding the state's size with no tolerance."""

from __future__ import annotations

import dataclasses
import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from optbench.check.baseline import Cell, SeedRun, cells_from_records, make_baseline
from optbench.check.compare import compare
from optbench.check.tolerance import Tolerances
from optbench.cli.app import app
from optbench.engine.eager import run
from optbench.engine.memory import PeakRSS, optimizer_state_bytes
from optbench.engine.vectorized import train_group
from optbench.metrics import binary_size, metric
from optbench.report.bars import bar_chart
from optbench.report.build import build_report
from optbench.report.colours import colour_map
from optbench.report.tables import group_tables
from optbench.spec import RunSpec
from optbench.store.schema import why_invalid

runner = CliRunner()

# Adam with its state in a Python int step and one buffer: the int counts 0 bytes.
PLUGIN = textwrap.dedent('''
    import torch

    class OneBuffer(torch.optim.Optimizer):
        def __init__(self, params, lr=0.01):
            super().__init__(params, dict(lr=lr))

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    state = self.state[p]
                    if not state:
                        state["step"], state["avg"] = 0, torch.zeros_like(p)
                    state["step"] += 1
                    state["avg"].mul_(0.9).add_(p.grad)
                    p.add_(state["avg"], alpha=-group["lr"])
''')
HPARAMS = {"sgd": {"lr": 0.01}, "momentum": {"lr": 0.01, "momentum": 0.9}, "adam": {"lr": 0.01}}


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def spec(optimizer: str, **kw) -> RunSpec:
    base = {"task": "mlp", "dataset": "synthetic", "optimizer": optimizer,
            "hparams": HPARAMS.get(optimizer, {"lr": 0.01}), "epochs": 1, "batch_size": 512, "seed": 0, "device": "cpu"}
    return RunSpec(**{**base, **kw})


def mlp_parameters() -> tuple[int, int]:
    """(bytes, tensors) of the MLP task's model, counted from the model itself."""
    from optbench.engine.eager import load_data
    from optbench.tasks import get_task

    task = get_task("mlp")
    model = task.build_model(load_data(task, "synthetic", Path("data"), "cpu"))
    params = list(model.parameters())
    return sum(p.numel() * 4 for p in params), len(params)


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> tuple[Path, Path]:
    """(results dir, baseline) of a real tiny suite: the MLP with sgd, momentum and adam, two seeds."""
    root = tmp_path_factory.mktemp("memory")
    results, baseline = root / "results", root / "baseline.json"
    ran = invoke("run", "--task", "mlp", "--opt", "sgd", "momentum", "adam", "--epochs", "1", "--seeds", "2",
                 "--device", "cpu", "--results-dir", results, "--data-dir", root / "data", "--quiet")
    assert ran.exit_code == 0, ran.output
    saved = invoke("baseline", "save", "--results-dir", results, "--out", baseline, "--repeats", "0")
    assert saved.exit_code == 0, saved.output
    return results, baseline


def records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (results / "runs").glob("*.json")]


# --- the counts -----------------------------------------------------------------------------------

def test_state_bytes_equal_hand_counts_for_sgd_momentum_adam() -> None:
    params, tensors = mlp_parameters()
    assert params > 10_000  # the MLP has real weights: a count of zero could not pass by accident
    counted = {name: run(spec(name)).metrics for name in ("sgd", "momentum", "adam")}
    assert {m["parameter_bytes"] for m in counted.values()} == {params}
    assert counted["sgd"]["optimizer_state_bytes"] == 0  # no momentum: no state
    assert counted["momentum"]["optimizer_state_bytes"] == params  # one buffer per parameter
    # exp_avg and exp_avg_sq, and a step that torch keeps per parameter as a float32 scalar tensor
    step = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    step.param_groups[0]["params"][0].grad = torch.zeros(1)
    step.step()
    assert next(iter(step.state.values()))["step"].element_size() == 4 and next(iter(step.state.values()))["step"].dim() == 0
    assert counted["adam"]["optimizer_state_bytes"] == 2 * params + 4 * tensors


def test_a_plugin_optimizers_state_counts_its_tensors_and_not_its_python_int(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "onebuffer.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    params, _ = mlp_parameters()
    result = run(spec("onebuffer.py:OneBuffer"))
    assert result.status == "ok", result.error
    assert result.metrics["optimizer_state_bytes"] == params  # "avg"; the int "step" is 0 bytes


def test_non_tensor_state_counts_zero() -> None:
    p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=0.1)
    opt.state[p] = {"step": 7, "scale": 0.5, "buffer": torch.zeros(3, dtype=torch.float64)}
    assert optimizer_state_bytes(opt) == 24


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_vectorized_runs_record_the_state_and_parameter_bytes_of_their_eager_runs(name: str) -> None:
    # Two seeds of one value (a stack of 2) and one of another (a stack of 1).
    lr = HPARAMS[name]["lr"]
    group = [spec(name, seed=0, engine="vectorized"), spec(name, seed=1, engine="vectorized"),
             spec(name, seed=0, engine="vectorized", hparams={**HPARAMS[name], "lr": lr * 2})]
    for vectorized in train_group(group, Path("data")):
        eager = run(dataclasses.replace(vectorized.spec, engine="eager"))
        for key in ("optimizer_state_bytes", "parameter_bytes"):
            assert vectorized.metrics[key] == eager.metrics[key], (key, vectorized.spec)
    assert vectorized.metrics["group_size"] == 3


def test_sizes_print_in_binary_units() -> None:
    assert [binary_size(v) for v in (0, 24, 1023, 1024, 39456, 1.5 * 2**20, 2**20 - 1)] == \
        ["0 B", "24 B", "1,023 B", "1.00 KiB", "38.5 KiB", "1.50 MiB", "1.00 MiB"]


def test_a_negative_size_is_not_a_run_record(suite: tuple[Path, Path]) -> None:
    record = records(suite[0])[0]
    record["metrics"]["optimizer_state_bytes"] = -1
    assert "negative" in why_invalid(record)


# --- peak resident memory --------------------------------------------------------------------------

@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="no /proc/self/clear_refs (not Linux)")
def test_peak_rss_is_the_windows_own_peak_after_a_reset() -> None:
    peak = PeakRSS()
    peak.start()
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    block += 1
    high = peak.peak_mb()
    del block
    peak.start()  # the reset: the 64 MiB freed above are no longer the peak
    low = peak.peak_mb()
    assert high is not None and low is not None
    assert high - low > 48


def test_peak_rss_is_absent_where_it_cannot_be_reset(tmp_path: Path) -> None:
    peak = PeakRSS(tmp_path / "no-proc")
    peak.start()
    assert peak.peak_mb() is None


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="no /proc/self/clear_refs (not Linux)")
def test_cpu_records_carry_the_peak_resident_memory(suite: tuple[Path, Path]) -> None:
    for record in records(suite[0]):
        assert 50 < record["metrics"]["peak_rss_mb"] < 100_000  # torch alone is resident: tens of MiB at least


# --- the report ------------------------------------------------------------------------------------

def test_the_report_table_shows_state_per_optimizer_at_80_columns(suite: tuple[Path, Path],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    report = build_report([suite[0]], draw_charts=False)
    (table,) = group_tables(report.cells, report.runs)
    state = table.columns.index("state")
    params, tensors = mlp_parameters()
    shown = {row[0]: row[state] for row in table.rows}
    assert shown == {"sgd": "0 B", "momentum": binary_size(params), "adam": binary_size(2 * params + 4 * tensors)}
    assert any(note.startswith("state: the optimizer's state per run") for note in table.notes)
    monkeypatch.setenv("COLUMNS", "80")
    out = invoke("report", "--results-dir", suite[0], "--format", "table", "--no-charts")
    assert out.exit_code == 0, out.output
    assert "state" in out.output and binary_size(params) in out.output
    assert max(len(line) for line in out.output.splitlines()) <= 80


def test_the_bar_chart_gets_a_state_panel_only_where_records_have_it(suite: tuple[Path, Path]) -> None:
    report = build_report([suite[0]], draw_charts=False)
    cells = report.cells[report.cells["split"] == "test"].reset_index(drop=True)
    colours = colour_map(cells["optimizer"])
    rmse = metric("test_rmse")
    fig = bar_chart(cells, colours, "mlp on synthetic", rmse)
    assert len(fig.axes) == 3
    state = fig.axes[2]
    assert "optimizer state" in state.get_xlabel() and state.get_xlim()[0] == 0
    widths = {p.get_gid(): p.get_width() for p in state.patches if p.get_gid()}
    assert widths["bar-state-sgd"] == 0 and widths["bar-state-adam"] > widths["bar-state-momentum"] > 0
    older = cells.assign(optimizer_state_bytes_mean=np.nan)  # records from before it was measured
    assert len(bar_chart(older, colours, "mlp on synthetic", rmse).axes) == 2


# --- check -----------------------------------------------------------------------------------------

def state_cell(sizes: list[float | None], optimizer: str = "adam") -> Cell:
    samples = [{} if s is None else {"optimizer_state_bytes": s} for s in sizes]
    runs = [SeedRun(seed=i, status="ok", train_seconds=1.0, step_cost=2.0, final_train_loss=0.5, test_loss=0.5,
                    test_rmse=1500.0, **samples[i]) for i in range(len(sizes))]
    return Cell(task="regression", dataset="synthetic", optimizer=optimizer, hparams={"lr": 0.001}, epochs=2,
                batch_size=64, device="cpu", label=optimizer, cell_hash=f"hash-{optimizer}", metric_name="rmse",
                runs=runs, environment={"cpu": "Test CPU", "torch": "2.5.0"})


def state_row(base: list[float | None], cur: list[float | None]):
    result = compare(make_baseline([state_cell(base)]), [state_cell(cur)], Tolerances())
    rows = [r for r in result.rows if r.metric == "optimizer_state_bytes"]
    return result, rows[0] if rows else None


def test_one_byte_more_state_is_a_regression_with_no_tolerance_and_less_is_fine() -> None:
    result, row = state_row([39_456, 39_456], [39_457, 39_457])
    assert row.verdict == "fail" and result.exit_code == 1 and row.tolerance == "exact"
    assert "grew by 1 B (39,456 B -> 39,457 B)" in row.note and "any increase is a regression" in row.note
    result, row = state_row([39_456, 39_456], [19_728, 19_728])
    assert row.verdict == "pass" and result.exit_code == 0 and "shrank by 19.3 KiB" in row.note
    result, row = state_row([0, 0], [0, 0])
    assert row.verdict == "pass" and row.change_text == "same"


def test_an_old_baseline_without_state_sizes_loads_and_the_guard_is_skipped_with_a_note() -> None:
    result, row = state_row([None, None], [39_456, 39_456])
    assert row is None and result.exit_code == 0
    assert result.notes == [("optimizer_state_bytes not guarded for 1 cell(s): the baseline was saved before it was "
                             "measured; optbench baseline update adds it")]


def test_a_baseline_keeps_state_sizes_to_the_byte(suite: tuple[Path, Path]) -> None:
    record = records(suite[0])[0]
    record["metrics"].update(optimizer_state_bytes=123_456_789, test_loss=0.123456789)
    (cell,) = cells_from_records([record])
    assert cell.runs[0].optimizer_state_bytes == 123_456_789  # not 123,457,000: one byte more is seen
    assert cell.runs[0].test_loss == 0.123457  # other samples keep 6 significant digits


def test_check_cli_fails_on_grown_state_and_refuses_a_tolerance_for_it(suite: tuple[Path, Path], tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    results, saved = suite
    baseline = Path(shutil.copy(saved, tmp_path / "baseline.json"))
    doc = json.loads(baseline.read_text())
    adam = next(c for c in doc["cells"] if c["optimizer"] == "adam")
    for r in adam["runs"]:
        r["optimizer_state_bytes"] -= 1  # the code now holds one byte more than the baseline did
    baseline.write_text(json.dumps(doc))
    monkeypatch.setenv("COLUMNS", "200")
    out = invoke("check", "--baseline", baseline, "--results-dir", results, "--json", tmp_path / "c.json")
    assert out.exit_code == 1, out.output
    rows = json.loads((tmp_path / "c.json").read_text())["rows"]
    failed = [(r["label"], r["metric"]) for r in rows if r["verdict"] == "fail"]
    assert failed == [("adam", "optimizer_state_bytes")]
    assert "the optimizer's state grew by 1 B" in out.output

    for r in adam["runs"]:
        del r["optimizer_state_bytes"]  # a baseline saved before the size was measured
    baseline.write_text(json.dumps(doc))
    out = invoke("check", "--baseline", baseline, "--results-dir", results)
    assert out.exit_code == 0, out.output
    assert "optimizer_state_bytes not guarded for 1 cell(s)" in out.output

    out = invoke("check", "--baseline", saved, "--results-dir", results, "--tol", "optimizer_state_bytes=5%")
    assert out.exit_code == 2
    assert out.output.strip().splitlines() == [
        ("error: bad tolerance 'optimizer_state_bytes=5%': optimizer_state_bytes is compared exactly (any increase "
         "fails) and takes no tolerance; leave it out")]
