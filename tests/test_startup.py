"""Commands that only read (report, list-runs, check, list, --help) start without torch: records are JSON, and
importing torch costs seconds and hundreds of MB. Real processes, as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from optbench.check.baseline import save_baseline
from optbench.optim.hparams import default_hparams
from optbench.optim.registry import REFERENCE, REGISTRY, spec_label
from optbench.spec import CurvePoint, RunResult, RunSpec
from optbench.spec.training import TrainingOptions
from optbench.store.records import save_result

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENT = {"optbench": "0.1.0", "torch": "2.5.0", "python": "3.12.0", "cpu": "test cpu", "cpu_count": 2,
               "torch_threads": 2, "cuda": None, "git_commit": None, "device": "cpu", "device_name": "cpu"}


def optbench_imports(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``python -m optbench ARGS``; the result and the top-level packages it imported."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "COLUMNS": "100"}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "optbench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    # -X importtime writes "import time: self | cumulative | package" lines to stderr, one per module.
    modules = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return proc, {m.split(".")[0] for m in modules}


def stored_run(results: Path, task: str, optimizer: str, seed: int, value: float, *, hparams: dict | None = None,
               split: str = "test", stage: str | None = None) -> None:
    """A finished run in the store's own format, written by its own writer: no training."""
    accuracy = task == "cifar10"
    spec = RunSpec(task=task, dataset="synthetic", optimizer=optimizer, hparams=hparams or default_hparams(optimizer),
                   epochs=3, batch_size=64, seed=seed, device="cpu", training=TrainingOptions(split=split))
    prefix = "val" if split == "validation" else "test"
    metric = "accuracy" if accuracy else "rmse"
    curve = [CurvePoint(epoch=e, time_s=0.5 * e, train_loss=1.0 / e, test_loss=1.1 / e, test_metric=value * e / 3, lr=0.01)
             for e in (1, 2, 3)]
    metrics = {"train_seconds": 1.5, "steps": 75, "steps_per_s": 50.0, "final_train_loss": 0.3,
               f"{prefix}_loss": 0.4, f"{prefix}_{metric}": value}
    save_result(RunResult(spec, "ok", metrics, curve, ENVIRONMENT, "2026-01-01T00:00:00+00:00",
                          "2026-01-01T00:00:02+00:00", f"{abs(hash((task, optimizer, seed, split, str(hparams)))):012x}"[:12],
                          metric_name=metric, stage=stage, target={"metric": "loss", "value": 0.5},
                          label=spec_label(spec)), results)  # the label a run stores (engine.bookkeeping.finish)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Regression: sgd and adam over 2 seeds, and an sgd sweep (validation) whose winner ran on
    test; cifar10: adam and sgd."""
    results = tmp_path_factory.mktemp("results")
    for seed in (0, 1):
        stored_run(results, "regression", "sgd", seed, 1600.0 + seed)
        stored_run(results, "regression", "adam", seed, 1550.0 + seed)
        stored_run(results, "regression", "sgd", seed, 1500.0 + seed, hparams={"lr": 0.1}, stage="final")
        stored_run(results, "cifar10", "adam", seed, 0.6 + seed / 100)
        stored_run(results, "cifar10", "sgd", seed, 0.4 + seed / 100)
    for lr in (0.01, 0.1):
        stored_run(results, "regression", "sgd", 0, 1500.0 / lr / 100, hparams={"lr": lr}, split="validation", stage="sweep")
    return results


def test_report_never_imports_torch(results: Path, tmp_path: Path) -> None:
    proc, imported = optbench_imports("report", "--results-dir", str(results), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "sgd(lr=0.1)" in proc.stdout and "adam" in proc.stdout  # the tables, with default vs tuned
    assert list((tmp_path / "out").glob("*.png"))  # charts were drawn
    assert "torch" not in imported and "pandas" in imported

    proc, imported = optbench_imports("report", "--results-dir", str(results), "--opt", "sgd:lr=0.1", "--no-charts",
                                      "--format", "csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "sgd(lr=0.1)" in proc.stdout and "adam" not in proc.stdout  # the filter matched by hyperparameters
    assert "torch" not in imported and "matplotlib" not in imported


def test_list_runs_never_imports_torch(results: Path, tmp_path: Path) -> None:
    proc, imported = optbench_imports("list-runs", "--results-dir", str(results), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "regression/synthetic" in " ".join(proc.stdout.split())
    assert not imported & {"torch", "matplotlib"}, imported


def test_check_never_imports_torch(results: Path, tmp_path: Path) -> None:
    save_baseline(results, tmp_path / "baseline.json")
    proc, imported = optbench_imports("check", "--baseline", str(tmp_path / "baseline.json"), "--results-dir", str(results),
                                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "PASS" in proc.stdout
    assert "torch" not in imported


@pytest.mark.parametrize("args", [["--help"], ["list"], ["report", "--help"]])
def test_help_and_list_never_import_torch_or_pandas(args: list[str], tmp_path: Path) -> None:
    proc, imported = optbench_imports(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Usage" in proc.stdout or "optimizers" in proc.stdout
    assert not imported & {"torch", "pandas", "matplotlib", "scipy"}, imported  # (Typer itself imports pydantic)


def test_every_builtin_optimizer_takes_weight_decay_as_list_says() -> None:
    # `optbench list` states it without reading the classes' signatures (that would import torch).
    assert all("weight_decay" in opt.accepted_keys() for opt in [*REGISTRY.values(), *REFERENCE.values()])


def test_a_run_that_skips_every_spec_never_imports_torch(tmp_path: Path) -> None:
    """Resume decides from the records before anything needs torch: spec building and hashing
    (built-in optimizers at their defaults), the store read once, no data check."""
    from optbench.config.suite import build_specs, load_suite

    args = ["--opt", "sgd", "adam", "--seeds", "2", "--epochs", "3", "--device", "cpu"]
    specs = build_specs(load_suite(None, {"optimizers": ["sgd", "adam"], "seeds": 2, "epochs": 3, "device": "cpu"}))
    curve = [CurvePoint(epoch=e, time_s=0.5 * e, train_loss=1.0, test_loss=1.0, test_metric=1.0) for e in (1, 2, 3)]
    for i, spec in enumerate(specs):
        save_result(RunResult(spec, "ok", {"train_seconds": 1.5, "test_rmse": 1.0}, curve, ENVIRONMENT,
                              "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:02+00:00", f"{i:012x}", metric_name="rmse",
                              label=spec_label(spec)), tmp_path / "results")
    # No data folder: nothing is to run, so no dataset is looked at.
    proc, imported = optbench_imports("run", *args, "--results-dir", str(tmp_path / "results"), "--data-dir",
                                      str(tmp_path / "no-data"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "skipped 4 already finished" in " ".join(proc.stdout.split())
    assert "torch" not in imported
    assert not (tmp_path / "no-data").exists()


def test_every_builtin_optimizer_trains_at_its_declared_defaults() -> None:
    # Spec building takes a built-in's declared defaults as they are, without reading or building
    # its class (that would import torch): they must be all it needs, and values it accepts.
    from optbench.optim.construct import probe

    for opt in [*REGISTRY.values(), *REFERENCE.values()]:
        assert opt.required_keys() == [] or set(opt.required_keys()) <= set(opt.defaults), opt.name
        assert set(opt.defaults) <= set(opt.accepted_keys()), opt.name
        assert probe(opt.name, dict(opt.defaults)) is None, opt.name
