"""`optbench baseline save|update` and `optbench check`: verdicts, exit codes and report formats.

One tiny real suite (regression, sgd and adam, five seeds, two epochs) is run once; each test
edits a copy of its records or of its baseline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from optbench.check.tolerance import Level, Tolerances, parse_rule
from optbench.cli.app import app
from optbench.optim.registry import spec_label
from optbench.spec import RunSpec

runner = CliRunner()


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> tuple[Path, Path]:
    """(results dir, baseline file) of one real run of a tiny suite."""
    root = tmp_path_factory.mktemp("suite")
    results, baseline = root / "results", root / "baseline.json"
    run = invoke("run", "--task", "regression", "--opt", "sgd", "adam", "--epochs", "2", "--seeds", "5",
                 "--device", "cpu", "--results-dir", results, "--data-dir", root / "data", "--quiet")
    assert run.exit_code == 0, run.output
    # --repeats 0: the stored runs as they are, so the tests below know the baseline's runtime exactly
    # (re-measuring: test_baseline_save_says_it_re_measures_and_records_the_noise)
    save = invoke("baseline", "save", "--results-dir", results, "--out", baseline, "--repeats", "0")
    assert save.exit_code == 0, save.output
    assert "2 cell(s), 10 run(s)" in save.output
    return results, baseline


@pytest.fixture
def results(suite, tmp_path) -> Path:
    """A copy of the suite's results to edit."""
    return Path(shutil.copytree(suite[0], tmp_path / "results"))


@pytest.fixture
def baseline(suite, tmp_path) -> Path:
    """A copy of the suite's baseline to edit."""
    return Path(shutil.copy(suite[1], tmp_path / "baseline.json"))


def edit_records(results: Path, edit, optimizer: str = "adam") -> None:
    for path in (results / "runs").glob("*.json"):
        record = json.loads(path.read_text())
        if record["spec"]["optimizer"] == optimizer:
            edit(record)
            spec = RunSpec.from_dict(record["spec"])  # an edited spec is another spec: rehash, as a real run would
            record.update(spec_hash=spec.spec_hash(), cell_hash=spec.cell_hash(), label=spec_label(spec))
            path.write_text(json.dumps(record))


def edit_baseline(baseline: Path, edit) -> None:
    doc = json.loads(baseline.read_text())
    edit(doc)
    baseline.write_text(json.dumps(doc))


def cell(doc: dict, label: str) -> dict:
    return next(c for c in doc["cells"] if c["label"] == label)


def check(baseline: Path, results: Path, *args: str | Path):
    return invoke("check", "--baseline", baseline, "--results-dir", results, *args)


def verdicts(json_file: Path) -> list[tuple[str, str, str]]:
    return [(r["label"], r["metric"], r["verdict"]) for r in json.loads(json_file.read_text())["rows"]]


def notes(json_file: Path) -> str:
    return "\n".join(r["note"] for r in json.loads(json_file.read_text())["rows"])


def test_baseline_file_is_small_readable_json_with_fingerprint_hash_and_per_seed_samples(suite):
    _, baseline = suite
    text = baseline.read_text()
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=2, sort_keys=True) + "\n"
    assert doc["schema_version"] == 1
    assert {"cpu", "device_name", "torch", "cuda", "python", "optbench", "git_commit"} <= doc["environment"].keys()
    adam = cell(doc, "adam")
    assert (adam["task"], adam["dataset"], adam["optimizer"], adam["epochs"], adam["batch_size"], adam["device"]) == (
        "regression", "synthetic", "adam", 2, 64, "cpu")
    assert adam["hparams"]["lr"] == 0.001 and len(adam["cell_hash"]) == 16
    assert [r["seed"] for r in adam["runs"]] == [0, 1, 2, 3, 4]
    assert set(adam["runs"][0]) == {"seed", "status", "train_seconds", "step_cost", "final_train_loss",
                                    "optimizer_state_bytes", "test_loss", "test_rmse"}


def test_identical_results_pass(suite, tmp_path):
    results, baseline = suite
    result = check(baseline, results, "--json", tmp_path / "c.json")
    assert result.exit_code == 0, result.output
    assert "PASS: 2 cell(s) compared" in result.stdout
    assert {v for _, _, v in verdicts(tmp_path / "c.json")} == {"pass"}
    assert len(verdicts(tmp_path / "c.json")) == 12  # 2 cells x (run time, step cost, final loss, state, test loss, RMSE)
    assert "test_rmse" not in result.stdout  # passing rows are folded: the table shows what needs a look
    listed = check(baseline, results, "--all")
    assert listed.stdout.count("test_rmse") == 2 and "PASS: 2 cell(s) compared" in listed.stdout


def test_quality_regression_fails_and_prints_the_update_command(results, baseline, tmp_path):
    def better(doc):
        for run in cell(doc, "adam")["runs"]:
            run["test_rmse"] *= 0.5
    edit_baseline(baseline, better)
    result = check(baseline, results, "--json", tmp_path / "c.json")
    assert result.exit_code == 1, result.output
    assert verdicts(tmp_path / "c.json")[0] == ("adam", "test_rmse", "fail")
    command = f"optbench baseline update --baseline {baseline} --results-dir {results} --cell regression/adam"
    assert command in result.stdout

    # Running that command accepts the change: the check passes again, the sgd cell is untouched.
    before = cell(json.loads(baseline.read_text()), "sgd")
    update = invoke(*command.split()[1:])
    assert update.exit_code == 0, update.output
    assert "replaced: regression/adam" in update.stdout
    assert cell(json.loads(baseline.read_text()), "sgd") == before
    assert check(baseline, results).exit_code == 0


def test_a_changed_optimizer_under_the_same_name_fails(results, baseline):
    # As if a plugin optimizer's update rule changed: same spec hash, clearly worse losses.
    def worse(record):
        record["metrics"]["test_loss"] *= 3
        record["metrics"]["final_train_loss"] *= 3
    edit_records(results, worse)
    result = check(baseline, results)
    assert result.exit_code == 1
    assert "test_loss" in result.stdout and "fail" in result.stdout


def test_small_numeric_differences_and_improvements_pass(results, baseline, tmp_path):
    edit_records(results, lambda r: r["metrics"].update(test_rmse=r["metrics"]["test_rmse"] * 1.001))
    edit_records(results, lambda r: r["metrics"].update(test_loss=r["metrics"]["test_loss"] * 0.5), optimizer="sgd")
    result = check(baseline, results, "--json", tmp_path / "c.json")
    assert result.exit_code == 0, result.output
    assert "better beyond the warn level" in notes(tmp_path / "c.json")


def test_difference_within_seed_noise_only_warns(results, baseline, tmp_path):
    # Baseline seeds 0-4, current seeds 5-9 (so unpaired): 12% worse on average, but the seeds spread widely.
    spread = [0.2, 1.0, 1.8, 0.6, 1.4]
    edit_baseline(baseline, lambda doc: [run.update(test_rmse=5000 * f) for run, f in zip(cell(doc, "adam")["runs"], spread)])

    def reseed(record):
        record["spec"]["seed"] += 5
        record["metrics"]["test_rmse"] = 5000 * 1.12 * spread[record["spec"]["seed"] - 5]
    edit_records(results, reseed)
    result = check(baseline, results, "--json", tmp_path / "c.json")
    assert result.exit_code == 0, result.output
    assert "within seed noise" in notes(tmp_path / "c.json")

    # The same seeds on both sides: paired by seed, the spread cancels and the same 12% fails.
    edit_records(results, lambda r: r["spec"].update(seed=r["spec"]["seed"] - 5))
    assert check(baseline, results).exit_code == 1


def test_a_diverged_run_always_fails(results, baseline, tmp_path):
    def diverge(record):
        if record["spec"]["seed"] == 3:
            record["status"] = "diverged"
            record["metrics"].update(final_train_loss=None, test_loss=None, test_rmse=None)
    edit_records(results, diverge, optimizer="sgd")
    result = check(baseline, results, "--json", tmp_path / "c.json")
    assert result.exit_code == 1
    assert verdicts(tmp_path / "c.json")[0] == ("sgd", "status", "fail")
    assert "seed 3 diverged" in notes(tmp_path / "c.json")


def slow(factor: float, **env):
    """The optimizer step ``factor`` times as costly (and the whole run with it)."""
    def edit(record):
        record["metrics"]["train_seconds"] *= factor
        record["metrics"]["step_cost"] *= factor
        record["environment"].update(env)
    return edit


def test_runtime_slowdown_under_another_fingerprint_only_warns(results, baseline, tmp_path):
    edit_records(results, slow(3.0, cpu="Another CPU", torch="9.9.9"))
    result = check(baseline, results, "--json", tmp_path / "c.json")
    assert result.exit_code == 0, result.output
    assert ("adam", "step_cost", "warn") in verdicts(tmp_path / "c.json")
    assert "another environment (cpu " in notes(tmp_path / "c.json")
    assert "re-measuring" not in result.stderr  # another machine's timings are not re-measured here


def test_a_costlier_step_on_the_same_machine_fails_with_its_effect_and_interval(results, baseline, tmp_path):
    edit_records(results, slow(3.0))
    result = check(baseline, results, "--confirm", "0", "--json", tmp_path / "c.json")
    assert result.exit_code == 1, result.output
    assert ("adam", "step_cost", "fail") in verdicts(tmp_path / "c.json")
    row = next(r for r in json.loads((tmp_path / "c.json").read_text())["rows"] if r["metric"] == "step_cost" and r["label"] == "adam")
    assert row["change"] == pytest.approx(3.0, rel=0.01) and 1 < row["ci_low"] < 3 < row["ci_high"]
    assert "95% CI" in row["note"] and "5 vs 5 runs" in row["note"]
    # Whole-run time only warns by default: it follows the machine's load.
    assert ("adam", "train_seconds", "warn") in verdicts(tmp_path / "c.json")


def test_a_suspected_slowdown_is_re_measured_before_the_verdict(results, baseline, tmp_path):
    edit_records(results, slow(3.0))
    result = check(baseline, results, "--confirm", "1", "--json", tmp_path / "c.json")
    assert "re-measuring 1 cell(s) that look slower, 1 more round(s): regression/adam" in result.stderr
    row = next(r for r in json.loads((tmp_path / "c.json").read_text())["rows"] if r["metric"] == "step_cost" and r["label"] == "adam")
    assert (row["remeasured"], row["n_current"]) == (5, 10)  # each of the 5 seeds ran once more
    assert "5 of them re-measured" in row["note"]


def test_runtime_tolerance_override_and_off(results, baseline):
    edit_records(results, slow(3.0))
    assert check(baseline, results, "--confirm", "0", "--tol", "step_cost=4x").exit_code == 0
    assert check(baseline, results, "--confirm", "0", "--tol", "step_cost=warn:1.2x,fail:off").exit_code == 0
    assert check(baseline, results, "--confirm", "0", "--tol", "step_cost@*/sgd=off").exit_code == 1  # adam still slow
    assert check(baseline, results, "--confirm", "0", "--tol", "step_cost=off", "--tol", "train_seconds=1.5x").exit_code == 1


def test_tolerances_from_the_suite_config_check_table(results, baseline, tmp_path):
    edit_records(results, slow(3.0))
    config = tmp_path / "suite.toml"
    config.write_text('tasks = ["regression"]\n[check]\ntol = ["step_cost=fail:off"]\nstrict = true\nconfirm = 0\n')
    assert check(baseline, results, "--config", config).exit_code == 0
    # The command line comes after the config and wins.
    assert check(baseline, results, "--config", config, "--tol", "step_cost=1.5x").exit_code == 1


def test_exact_reproduction_from_the_suite_config_catches_a_stale_baseline(results, baseline, tmp_path):
    config = tmp_path / "suite.toml"
    config.write_text('tasks = ["regression"]\n[check]\nexact = true\n')
    assert check(baseline, results, "--config", config).exit_code == 0  # the same code reproduces it exactly

    def drift(doc):
        cell(doc, "sgd")["runs"][1]["test_loss"] *= 1.0001  # far within the tolerances
    edit_baseline(baseline, drift)
    assert check(baseline, results).exit_code == 0
    result = check(baseline, results, "--config", config)
    assert result.exit_code == 1
    assert "stale baseline" in result.output and "Stale baseline: the quality numbers" in result.output
    assert "Regression" not in result.output  # within the tolerances: not called a regression
    assert f"optbench baseline update --baseline {baseline} --results-dir {results} --cell regression/sgd" in result.output


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    ('{"schema_version": 1, "environment": {}}', "is not an optbench baseline"),
    ('{"schema_version": 99}', "schema version 99"),
])
def test_malformed_baseline_exits_2_with_one_line(results, tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = check(bad, results)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.output.strip().splitlines()) == 1


def test_missing_baseline_file_exits_2(results, tmp_path):
    result = check(tmp_path / "nope.json", results)
    assert result.exit_code == 2 and "optbench baseline save --out" in result.stderr


@pytest.mark.parametrize("rule, message", [
    ("test_rmse=banana", "not a level"),
    ("test_rmse", "METRIC[@TASK/OPTIMIZER]=VALUE"),
    ("test_rsme=10%", "did you mean 'test_rmse'"),
    ("test_rmse@adam=10%", "TASK/OPTIMIZER"),
    ("train_seconds=0.5x", "allows no worsening"),
    ("test_rmse=warn:5%,fial:10%", "warn:VALUE or fail:VALUE"),
])
def test_bad_tolerance_exits_2_with_one_line(suite, rule, message):
    results, baseline = suite
    result = check(baseline, results, "--tol", rule)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.output.strip().splitlines()) == 1


def test_changed_spec_is_not_comparable(results, baseline, tmp_path):
    def other_epochs(doc):
        adam = cell(doc, "adam")
        adam["epochs"], adam["cell_hash"] = 3, "0123456789abcdef"
        for run in adam["runs"]:
            run["test_rmse"] = 1.0  # would fail if it were compared
    edit_baseline(baseline, other_epochs)
    result = check(baseline, results, "--json", tmp_path / "c.json")
    assert result.exit_code == 0, result.output
    rows = verdicts(tmp_path / "c.json")
    assert ("adam", "spec", "not comparable") in rows and not any(v == "fail" for _, _, v in rows)
    note = next(r["note"] for r in json.loads((tmp_path / "c.json").read_text())["rows"] if r["metric"] == "spec")
    assert "epochs 3 -> 2" in note


def test_nothing_comparable_exits_3(results, baseline):
    edit_baseline(baseline, lambda doc: [c.update(cell_hash=f"{i:016x}") for i, c in enumerate(doc["cells"])])
    result = check(baseline, results)
    assert result.exit_code == 3
    assert "nothing comparable" in result.stderr


def test_missing_cell_warns_and_fails_under_strict(results, baseline, tmp_path):
    for path in (results / "runs").glob("*_sgd_*.json"):
        path.unlink()
    relaxed = check(baseline, results, "--json", tmp_path / "c.json")
    assert relaxed.exit_code == 0, relaxed.output
    assert ("sgd", "cell", "missing") in verdicts(tmp_path / "c.json")
    strict = check(baseline, results, "--strict")
    assert strict.exit_code == 1
    command = f"optbench baseline update --baseline {baseline} --results-dir {results} --cell regression/sgd --prune"
    assert command in strict.stdout
    update = invoke(*command.split()[1:])
    assert update.exit_code == 0 and "removed: regression/sgd" in update.stdout
    assert [c["label"] for c in json.loads(baseline.read_text())["cells"]] == ["adam"]
    assert check(baseline, results, "--strict").exit_code == 0


def test_new_cell_is_reported(results, baseline, tmp_path):
    edit_baseline(baseline, lambda doc: doc["cells"].remove(cell(doc, "sgd")))
    result = check(baseline, results, "--json", tmp_path / "c.json")
    assert result.exit_code == 0
    assert ("sgd", "cell", "new") in verdicts(tmp_path / "c.json")


def test_junit_xml_has_one_case_per_cell_and_metric_and_counts_failures(results, baseline, tmp_path):
    edit_records(results, lambda r: r["metrics"].update(test_rmse=r["metrics"]["test_rmse"] * 2, test_loss=r["metrics"]["test_loss"] * 2))
    edit_records(results, slow(3.0, cpu="Another CPU"), optimizer="sgd")
    result = check(baseline, results, "--junit", tmp_path / "junit.xml")
    assert result.exit_code == 1
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 12 and suite.get("tests") == "12"
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert sorted(failed) == ["adam [cpu] test_loss", "adam [cpu] test_rmse"] and suite.get("failures") == "2"
    warned = [c for c in cases if c.find("system-out") is not None]
    assert [c.get("name") for c in warned] == ["sgd [cpu] train_seconds", "sgd [cpu] step_cost"]


def test_markdown_goes_to_stdout_and_to_github_step_summary(results, baseline, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    edit_records(results, lambda r: r["metrics"].update(test_rmse=r["metrics"]["test_rmse"] * 2))
    result = check(baseline, results, "--format", "markdown")
    assert result.exit_code == 1
    assert result.stdout.startswith("### optbench check: fail")
    assert "| ❌ fail | regression/synthetic adam (cpu) | test_rmse |" in result.stdout
    text = summary.read_text()
    assert text.startswith("earlier step\n### optbench check: fail") and "optbench baseline update" in text


def test_baseline_save_refuses_to_overwrite_and_update_with_unknown_cell_is_an_error(suite):
    results, baseline = suite
    again = invoke("baseline", "save", "--results-dir", results, "--out", baseline)
    assert again.exit_code == 2 and "optbench baseline update" in again.stderr
    unknown = invoke("baseline", "update", "--baseline", baseline, "--results-dir", results, "--cell", "mlp/*")
    assert unknown.exit_code == 2 and "regression/adam" in unknown.stderr


def test_empty_results_dir_is_a_usage_error(suite, tmp_path):
    result = check(suite[1], tmp_path / "empty")
    assert result.exit_code == 2 and "no run records" in result.stderr


@pytest.mark.parametrize("text, warn, fail", [
    ("test_rmse=10%", Level("rel", 0.05), Level("rel", 0.10)),
    ("train_seconds=1.5x", Level("ratio", 1.25), Level("ratio", 1.5)),
    ("test_accuracy=abs=0.02", Level("abs", 0.01), Level("abs", 0.02)),
    ("test_rmse=warn:2%,fail:off", Level("rel", 0.02), Level("off")),
])
def test_tolerance_syntax(text, warn, fail):
    rule = parse_rule(text)
    assert (rule.warn, rule.fail) == (warn, fail)


def test_tolerance_directions_and_scopes():
    acc = Tolerances.parse(["test_accuracy@cifar10/*=abs=0.05"])
    assert acc.for_cell("test_accuracy", "cifar10", "adam(lr=0.01)", "adam").fail == Level("abs", 0.05)
    assert acc.for_cell("test_accuracy", "mlp", "adam", "adam").fail == Level("abs", 0.02)  # the default
    fail = acc.for_cell("test_accuracy", "mlp", "adam", "adam").fail
    assert fail.exceeded(0.80, 0.77, higher_is_better=True) and not fail.exceeded(0.80, 0.90, higher_is_better=True)
    assert Level("ratio", 1.5).exceeded(2.0, 3.1, higher_is_better=False)
    assert not Level("rel", 0.1).exceeded(2.0, 2.1, higher_is_better=False)


def optbench_process(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    """A real ``python -m optbench`` process at 80 columns: what a user reads in a terminal or a CI log."""
    env = {**os.environ, "COLUMNS": "80", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "optbench", *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_quality_regression_reads_regression_first_and_the_update_only_if_intended(results, baseline, tmp_path):
    """The printed order: the failing row with its evidence, "Regression in ...", and only then the
    update command, offered if the change was intended; under --exact too, where the numbers also
    no longer reproduce: never "stale", which would invite refreshing the baseline over a regression."""
    def better(doc):
        for run in cell(doc, "adam")["runs"]:
            run["test_rmse"] *= 0.5
    edit_baseline(baseline, better)
    for exact in ("--no-exact", "--exact"):
        done = optbench_process("check", "--baseline", baseline, "--results-dir", results, "--confirm", "0", exact,
                                cwd=tmp_path)
        out = done.stdout
        assert done.returncode == 1, out + done.stderr
        assert "stale" not in out.lower(), out
        words = " ".join(out.split())
        assert "regression: worse beyond fail level 10% (+100.0%;" in words, out
        headline = out.index("Regression in 1 cell(s): each fail row above gives its evidence.")
        offer = out.index("If the change was intended (not a regression to fix), accept it into the baseline")
        assert out.index("test_rmse") < headline < offer < out.index("optbench baseline update --baseline")


def test_baseline_save_says_it_re_measures_and_records_the_noise(suite, tmp_path):
    results, _ = suite
    done = optbench_process("baseline", "save", "--results-dir", results, "--out", tmp_path / "b.json", "--repeats", "1",
                            cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "measuring the runtime of 2 cell(s) 1 more time(s) per seed, as check confirms a slowdown" in done.stderr
    doc = json.loads((tmp_path / "b.json").read_text())
    assert all(c["repeats"] == 1 and set(c["noise"]) == {"train_seconds", "step_cost"} for c in doc["cells"])
    plain = optbench_process("baseline", "save", "--results-dir", results, "--out", tmp_path / "p.json", "--repeats", "0",
                             cwd=tmp_path)
    assert plain.returncode == 0 and "measuring" not in plain.stderr
    assert all("noise" not in c and "repeats" not in c for c in json.loads((tmp_path / "p.json").read_text())["cells"])
