"""Requests and inputs that would exhaust memory, run for ever or end optbench strangely are
one-line errors (exit 2) before anything runs, naming the limit and how to raise it."""

from __future__ import annotations

import json
import time

import pytest

from optbench.limits import MAX_RUNS, MAX_SEED


def one_line_error(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert err.startswith("error: ") and "Traceback" not in err, err
    flat = err.replace("\n", "")
    for needle in needles:
        assert needle in flat, flat
    return flat


def nothing_written(cli) -> None:
    assert not cli.results_dir.exists(), list(cli.results_dir.rglob("*"))


@pytest.mark.parametrize("args, needles", [
    (["--seeds", "1000000000"], ["1,000,000,000 seed(s) makes 4,000,000,000 runs", f"limit of {MAX_RUNS:,}",
                                 "OPTBENCH_MAX_RUNS=4000000000"]),
    (["--seed", str(2**64)], ["seed", str(MAX_SEED)]),
    (["--seed", str(MAX_SEED), "--seeds", "2"], ["go past the largest seed"]),
    (["--opt", "adam:lr=" + "|".join(f"{i}e-5" for i in range(1, 200)) + ",eps=" + "|".join(f"{i}e-9" for i in range(1, 200))],
     ["makes 39,601 runs"]),
])
def test_oversized_requests_fail_fast_before_anything_is_built(cli, args, needles):
    started = time.monotonic()
    one_line_error(cli.run(*args), *needles)
    assert time.monotonic() - started < 30  # checked by counting, not by building (a guard, not a timing claim)
    nothing_written(cli)


def test_toml_sizes_are_counted_over_the_whole_suite_before_building(cli, tmp_path):
    config = tmp_path / "suite.toml"
    config.write_text('optimizers = [{ name = "sgd", lr = { log = [1e-5, 1], num = 1000000000 } }]\n')
    one_line_error(cli.run("--config", str(config)), "1,000,000,000 optimizer setting(s)", "runs per suite")
    # 100 entries of 100 alternatives each: every entry is small, the suite is not
    entries = ",\n".join(f'{{ name = "sgd", lr = [{", ".join(str(1e-4 * (i + 1) + j * 1e-7) for i in range(100))}] }}'
                         for j in range(100))
    config.write_text(f"optimizers = [\n{entries}\n]\nseeds = 2\n")
    one_line_error(cli.run("--config", str(config)), "1 task(s) x 10,000 optimizer setting(s) x 2 seed(s) makes 20,000 runs")
    nothing_written(cli)


def test_the_run_limit_can_be_raised(cli, monkeypatch):
    monkeypatch.setenv("OPTBENCH_MAX_RUNS", "1")
    one_line_error(cli.run("--opt", "sgd", "adam", "--epochs", "1"), "makes 2 runs, over the limit of 1")
    monkeypatch.setenv("OPTBENCH_MAX_RUNS", "2")
    assert cli.run("--opt", "sgd", "adam", "--epochs", "1").exit_code == 0
    monkeypatch.setenv("OPTBENCH_MAX_RUNS", "lots")
    one_line_error(cli.run("--opt", "sgd"), "OPTBENCH_MAX_RUNS='lots' is not a positive whole number")


@pytest.mark.parametrize("content, needles", [
    ("a = " + "[" * 5000 + "]" * 5000 + "\n", ["nests tables or arrays more than 64 deep"]),
    ("a = " + "{b = " * 5000 + "1" + "}" * 5000 + "\n", ["nests tables or arrays more than 64 deep"]),
    ('optimizers = ["evil\\u0000.py:Opt"]\n', ["optimizers[0] contains the control character '\\x00'"]),
    ('device = "cpu\\u0000"\n', ["device contains the control character"]),
    ("# padding\n" * 200_000, ["over the limit of 1,048,576"]),
    ("epochs = true\n", ["epochs: input should be a valid integer (got True)"]),
    ('seeds = "3"\n', ["seeds: input should be a valid integer (got '3')"]),
    ("seed = 1.5\n", ["seed: input should be a valid integer (got 1.5)"]),
    ('tasks = [{ name = "mlp", batch_size = 6.4e1 }]\n', ["tasks.0.batch_size: input should be a valid integer"]),
    ("clip_norm = inf\n", ["clip_norm: input should be a finite number"]),
])
def test_hostile_suite_files_are_one_line_errors(cli, tmp_path, content, needles):
    config = tmp_path / "suite.toml"
    config.write_text(content)
    one_line_error(cli.run("--config", str(config)), *needles)
    nothing_written(cli)


def test_a_suite_file_that_is_a_pipe_does_not_hang(cli, tmp_path):
    import os

    os.mkfifo(tmp_path / "suite.toml")
    one_line_error(cli.run("--config", str(tmp_path / "suite.toml")), "not a regular file (a named pipe)")


@pytest.mark.parametrize("code, needles", [
    ("import sys\nsys.exit(0)\n", ["called exit(0) while being imported"]),
    ("raise SystemExit(3)\n", ["called exit(3)"]),
    ("raise KeyboardInterrupt\n", ["raised KeyboardInterrupt while being imported"]),
])
def test_a_plugin_that_exits_on_import_is_a_plugin_error(cli, tmp_path, monkeypatch, code, needles):
    (tmp_path / "quitter.py").write_text(code)
    monkeypatch.chdir(tmp_path)
    for opt in ("quitter.py:Opt", "quitter:Opt"):
        one_line_error(cli.run("--opt", opt, "sgd"), f"optimizer '{opt}'", *needles)
        nothing_written(cli)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_baseline_with_nan_or_infinity_is_refused_before_anything_is_written(cli, tmp_path, constant):
    cli.run_json("--opt", "sgd", "--epochs", "1")
    baseline = tmp_path / "baseline.json"
    assert cli("baseline", "save", "--results-dir", str(cli.results_dir), "--out", str(baseline), "--repeats", "0").exit_code == 0
    doc = json.loads(baseline.read_text())
    doc["cells"][0]["runs"][0]["test_rmse"] = "@"
    baseline.write_text(json.dumps(doc).replace('"@"', constant))
    junit, out = tmp_path / "junit.xml", tmp_path / "check.json"
    result = cli("check", "--baseline", str(baseline), "--results-dir", str(cli.results_dir),
                 "--junit", str(junit), "--json", str(out))
    one_line_error(result, f"baseline {baseline}")
    assert not junit.exists() and not out.exists()


def test_report_out_inside_runs_is_refused(cli):
    cli.run_json("--opt", "sgd", "--epochs", "1")
    runs = cli.results_dir / "runs"
    before = sorted(p.name for p in runs.rglob("*"))
    for out in (runs, runs / "sub", runs / "a" / "b"):
        result = cli("report", "--results-dir", str(cli.results_dir), "--out", str(out), "--format", "csv")
        one_line_error(result, "where run records live")
    assert sorted(p.name for p in runs.rglob("*")) == before


def test_baseline_and_check_outputs_are_refused_inside_runs(cli):
    cli.run_json("--opt", "sgd", "--epochs", "1")
    runs = cli.results_dir / "runs"
    before = sorted(p.name for p in runs.iterdir())
    one_line_error(cli("baseline", "save", "--results-dir", str(cli.results_dir), "--out", str(runs / "b.json")),
                   f"--out {runs / 'b.json'} is inside {runs}, where only run records live")
    baseline = cli.results_dir / "b.json"
    assert cli("baseline", "save", "--results-dir", str(cli.results_dir), "--out", str(baseline), "--repeats", "0").exit_code == 0
    for flag in ("--json", "--junit"):
        result = cli("check", "--baseline", str(baseline), "--results-dir", str(cli.results_dir), flag, str(runs / "c.json"))
        one_line_error(result, f"{flag} {runs / 'c.json'} is inside")
    assert sorted(p.name for p in runs.iterdir()) == before
