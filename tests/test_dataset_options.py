"""Dataset options: ``--dataset diamonds:rows=20000`` trains on a seeded sample of the table; the option
is part of the spec and of its identity, shown where the dataset is, and checked in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optbench.config.suite import build_specs, load_suite
from optbench.datasets.diamonds import load_diamonds
from optbench.tasks import get_task

HEADER = "carat,cut,color,clarity,depth,table,price,x,y,z\n"


def write_diamonds(folder, rows: int = 200) -> None:
    """A table in the seaborn diamonds format, ``rows`` distinct diamonds."""
    rng = np.random.default_rng(1)
    carat = np.round(rng.uniform(0.2, 3.0, rows), 3)
    lines = [f"{c},Ideal,E,SI2,61.5,55,{int(7756 * c - 2256 + 3000)},3.95,3.98,2.43" for c in carat]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "diamonds.csv").write_text(HEADER + "\n".join(lines) + "\n")


def spec_of(dataset: str):
    [spec] = build_specs(load_suite(None, {"tasks": ["regression"], "optimizers": ["sgd"], "device": "cpu",
                                          "dataset": dataset}))
    return spec


def test_rows_is_part_of_the_spec_and_changes_its_hash():
    full, sample, other = spec_of("diamonds"), spec_of("diamonds:rows=100"), spec_of("diamonds:rows=1_00")
    assert sample.dataset == "diamonds:rows=100" and sample.spec_hash() != full.spec_hash()
    assert other.spec_hash() == sample.spec_hash()  # written canonically
    suite_file = build_specs(load_suite({"tasks": [{"name": "regression", "dataset": "diamonds:rows=100"}],
                                         "optimizers": ["sgd"], "device": "cpu"}))
    assert [s.spec_hash() for s in suite_file] == [sample.spec_hash()]


def test_rows_samples_the_table_the_same_way_every_time(tmp_path):
    write_diamonds(tmp_path)
    full = load_diamonds(tmp_path)
    sample, again = load_diamonds(tmp_path, 50), load_diamonds(tmp_path, 50)
    assert len(full) == 200 and len(sample) == 50
    pd.testing.assert_frame_equal(sample, again)
    assert set(sample["carat"]) < set(full["carat"])
    # the article's sample: numpy's RandomState(42) shuffle, then the first rows
    order = np.arange(200)
    np.random.RandomState(42).shuffle(order)
    assert sample["carat"].tolist() == full["carat"].to_numpy()[order[:50]].tolist()


def test_training_uses_the_sampled_rows_80_20(cli):
    write_diamonds(cli.data_dir)
    data = get_task("regression").load("diamonds:rows=50", cli.data_dir)
    assert (len(data.x_train), len(data.x_test)) == (40, 10)
    assert len(get_task("regression").load("diamonds", cli.data_dir).x_train) == 160
    assert len(get_task("regression").load("synthetic:rows=500", cli.data_dir).x_train) == 400
    [record] = cli.run_json("--dataset", "diamonds:rows=50", "--opt", "sgd", "--epochs", "1", "--quiet")
    assert record["spec"]["dataset"] == "diamonds:rows=50"
    assert record["metrics"]["steps"] == 1  # 40 training rows: one batch of 64
    shown = cli("report", "--results-dir", str(cli.results_dir), "--no-charts").stdout
    assert "regression on diamonds:rows=50" in shown
    # --dataset names the dataset: every sample of it matches, as does the exact value
    for wanted in ("diamonds", "diamonds:rows=50"):
        assert "regression on diamonds:rows=50" in cli("report", "--results-dir", str(cli.results_dir), "--no-charts",
                                                      "--dataset", wanted).stdout
    missed = cli("report", "--results-dir", str(cli.results_dir), "--no-charts", "--dataset", "diamonds:rows=60")
    assert missed.exit_code == 2 and "the results hold: diamonds:rows=50" in missed.stderr


def test_the_real_table_sampled_as_the_article(diamonds_dir):
    sample = load_diamonds(diamonds_dir, 20000)
    assert len(sample) == 20000
    data = get_task("regression").load("diamonds:rows=20000", diamonds_dir)
    assert (len(data.x_train), len(data.x_test)) == (16000, 4000)


@pytest.mark.parametrize(("dataset", "message"), [
    ("diamonds:rows=5", "rows in 'diamonds:rows=5' must be a whole number from 10 to 10,000,000"),
    ("diamonds:rows=1.5", "must be a whole number"),
    ("diamonds:rows=500", "diamonds:rows=500 asks for more rows than"),
    ("diamonds:colour=5", "unknown dataset option 'colour' in 'diamonds:colour=5'; valid options: rows"),
    ("diamonds:rows", "bad dataset option 'rows'"),
])
def test_a_bad_dataset_option_is_one_line_and_writes_nothing(cli, dataset, message):
    write_diamonds(cli.data_dir)
    result = cli.run("--dataset", dataset, "--opt", "sgd", "--epochs", "1")
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and not cli.results_dir.exists()


def test_a_dataset_without_options_refuses_them(cli):
    result = cli.run("--task", "cifar10", "--dataset", "synthetic:rows=50", "--epochs", "1")
    assert result.exit_code == 2 and "dataset 'synthetic' of task 'cifar10' has no option 'rows'; it takes none" in result.stderr


def test_the_seed002_suite_is_the_articles_set_up():
    from pathlib import Path

    from optbench.config.suite import read_config

    suite = load_suite(read_config(Path(__file__).resolve().parents[1] / "configs" / "seed002.toml"), {"device": "cpu"})
    specs = build_specs(suite)
    cells = list(dict.fromkeys((s.optimizer, s.hparams["lr"], s.training.clip_value) for s in specs))
    assert cells == [("sgd", 0.1, 1.0), ("momentum", 0.1, 1.0), ("rmsprop", 0.01, None), ("adam", 0.01, None)]
    # 100 epochs and 5 seeds: the config's two stated differences from the article (docs/articles.md)
    assert {(s.dataset, s.epochs, s.batch_size) for s in specs} == {("diamonds:rows=20000", 100, 64)}
    assert len(specs) == 4 * 5 and sorted({s.seed for s in specs}) == [0, 1, 2, 3, 4]
    assert next(s for s in specs if s.optimizer == "rmsprop").hparams["alpha"] == 0.9 and suite.name == "seed002"
