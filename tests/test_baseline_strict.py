"""Baselines and tolerances are as strict as run records: a sample is a JSON number (not true, not
"7151"), finite, within its metric's range and small enough that means and sums stay finite; a
tolerance is a finite number within the documented range. Each problem is one line and exit 2,
before any verdict. And check's statistics say nothing through library warnings."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest

from optbench.check.runtime import slowdown
from optbench.check.tolerance import parse_rule


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, dict]:
    from typer.testing import CliRunner

    from optbench.cli.app import app

    root = tmp_path_factory.mktemp("strict")
    runner = CliRunner()
    done = runner.invoke(app, ["run", "--results-dir", str(root / "results"), "--data-dir", str(root / "data"),
                               "--epochs", "1", "--seeds", "2", "--opt", "sgd", "--device", "cpu", "--quiet"])
    assert done.exit_code == 0, done.output
    # --repeats 0: the baseline is the stored runs, so an unchanged check (--confirm 0) compares them with themselves
    done = runner.invoke(app, ["baseline", "save", "--out", str(root / "base.json"), "--results-dir", str(root / "results"),
                               "--repeats", "0"])
    assert done.exit_code == 0, done.output
    return root, json.loads((root / "base.json").read_text())


def check(cli_root: Path, *args: str):
    from typer.testing import CliRunner

    from optbench.cli.app import app

    return CliRunner().invoke(app, ["check", "--results-dir", str(cli_root / "results"), "--confirm", "0", *args])


@pytest.mark.parametrize("metric, value, says", [
    ("test_rmse", True, "test_rmse: input should be a valid number, not true"),  # was read as 1.0: a false regression
    ("test_rmse", "7151", 'test_rmse: input should be a valid number, not "7151"'),  # was coerced and passed
    ("test_rmse", -5.0, "metric 'test_rmse' = -5 is negative"),
    ("test_loss", -0.5, "metric 'test_loss' = -0.5 is negative"),
    ("train_seconds", -1, "metric 'train_seconds' = -1 is negative"),
    ("test_rmse", 1e308, "metric 'test_rmse' = 1e+308 is beyond ±1e+100"),  # was OverflowError in fsum
])
def test_a_malformed_baseline_sample_is_one_line_and_exit_2(saved, metric: str, value, says: str) -> None:
    root, doc = saved
    bad = json.loads(json.dumps(doc))
    bad["cells"][0]["runs"][0][metric] = value
    path = root / f"bad-{metric}.json"
    path.write_text(json.dumps(bad))
    done = check(root, "--baseline", str(path))
    assert done.exit_code == 2, done.output
    assert done.output.count("\n") == 1 and says in done.output, done.output
    assert done.output.startswith(f"error: baseline {path} is not an optbench baseline (cells.0.runs.0")


def test_an_accuracy_sample_is_a_fraction() -> None:
    from pydantic import ValidationError

    from optbench.check.baseline import SeedRun

    with pytest.raises(ValidationError, match=r"metric 'test_accuracy' = 1.5 is not a fraction in \[0, 1\]"):
        SeedRun.model_validate({"seed": 0, "status": "ok", "test_accuracy": 1.5})
    assert SeedRun.model_validate({"seed": 0, "status": "ok", "test_accuracy": 1, "test_loss": 0}).test_accuracy == 1.0


def test_the_saved_baseline_still_passes(saved) -> None:
    root, _ = saved
    done = check(root, "--baseline", str(root / "base.json"))
    assert done.exit_code == 0, done.output


@pytest.mark.parametrize("rule", ["test_rmse=1e400%", "test_rmse=1e7x", "test_rmse=warn:1e309%,fail:10%",
                                  "test_rmse=abs=1e400", "test_rmse=abs=2e6"])
def test_a_tolerance_is_finite_and_within_its_range(saved, rule: str) -> None:
    root, _ = saved
    done = check(root, "--baseline", str(root / "base.json"), "--tol", rule)
    assert done.exit_code == 2, done.output  # 1e400% used to mean "off", silently
    assert done.output.count("\n") == 1
    assert "is beyond the largest tolerance value, 1,000,000 (10% is 10); to turn a check off write off" in done.output


def test_the_largest_tolerance_and_off_are_accepted() -> None:
    assert parse_rule("test_rmse=1e6%").fail.value == pytest.approx(1e4)
    assert parse_rule("test_rmse=fail:off").fail.kind == "off"


def test_nearly_equal_timings_give_no_library_warning() -> None:
    # scipy warns of "catastrophic cancellation" on samples that differ in the last bits: check then
    # printed a two-line RuntimeWarning under its table.
    base = [math.log(0.0735045)] * 2 + [math.log(0.0735045) + 1e-16]
    current = [math.log(0.0735045)] * 3 + [math.log(0.0735045) * (1 + 1e-15)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        effect = slowdown([math.exp(v) for v in base], [math.exp(v) for v in current])
    assert effect.ratio == pytest.approx(1.0)


def test_a_record_with_a_metric_beyond_the_bound_is_skipped_not_summed(saved) -> None:
    from optbench.store.schema import why_invalid

    root, _ = saved
    record = json.loads(next((root / "results" / "runs").glob("*.json")).read_text())
    assert why_invalid(record) is None
    record["metrics"]["test_rmse"] = 1e300
    assert "metric 'test_rmse' = 1e+300 is beyond ±1e+100, not a measurement" in why_invalid(record)
