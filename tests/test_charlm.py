"""The character-level language model task (charlm): its data, its metric (bits per character), the
Muon optimizer's split of its parameters, and the CLI from run to report. Tiny budgets: windows
per epoch through the dataset's rows option, small batches."""

from __future__ import annotations

import copy
import functools
import hashlib
import http.server
import math
import threading
from pathlib import Path

import pytest
import torch
from conftest import SHARED_DATA

from optbench.datasets import text
from optbench.errors import UserError
from optbench.optim.construct import build_optimizer
from optbench.optim.hparams import resolve_hparams
from optbench.optim.muon import MuonAdamW
from optbench.spec.vocabulary import PARAM_ROLE
from optbench.tasks import get_task
from optbench.tasks.charlm import CONTEXT, CharTransformer, text_data, vocabulary

TINY = ("--task", "charlm", "--dataset", "synthetic:rows=64", "--batch-size", "16", "--epochs", "2")
# The 2-D matrices of the transformer blocks, the only parameters Muon may update.
BLOCK_MATRICES = [f"blocks.{i}.{m}.weight" for i in range(2) for m in ("query", "key", "value", "out", "fc", "proj")]


def one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr.replace("\n", ""), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def groups_by_name(optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> dict[bool, list[str]]:
    names = {id(p): n for n, p in model.named_parameters()}
    return {bool(g["use_muon"]): [names[id(p)] for p in g["params"]] for g in optimizer.param_groups}


# --- the metric, the run and the report -----------------------------------------------------------

def test_a_tiny_run_learns_below_the_uniform_guess_reports_bits_per_character_and_repeats_exactly(cli):
    (record,) = cli.run_json(*TINY, "--opt", "muon", "--target", "bpc=4.8")
    m = record["metrics"]
    assert record["status"] == "ok" and record["metric_name"] == "bpc"
    assert m["test_bpc"] == pytest.approx(m["test_loss"] / math.log(2), rel=1e-12)
    assert m["chance_bpc"] == pytest.approx(math.log2(34))  # 33 characters and the unknown symbol
    assert m["test_bpc"] < m["unigram_bpc"] < m["chance_bpc"]  # context helps: below the character frequencies
    assert 0 < m["test_accuracy"] < 1 and m["steps"] == 2 * 64 // 16
    assert [p["test_metric"] for p in record["curve"]][-1] == m["test_bpc"]
    assert m["epochs_to_target"] in (1, 2) and m["time_to_target_s"] > 0  # --target bpc=... reads the curve
    (again,) = cli.run_json(*TINY, "--opt", "muon", "--force")  # deterministic on CPU for one seed
    assert [(p["train_loss"], p["test_loss"]) for p in again["curve"]] == [(p["train_loss"], p["test_loss"]) for p in record["curve"]]


def test_run_then_report_compares_optimizers_by_bits_per_character(cli, tmp_path):
    records = cli.run_json(*TINY, "--opt", "sgd", "adamw:lr=0.01", "muon")
    assert [r["spec"]["optimizer"] for r in records] == ["sgd", "adamw", "muon"]
    out = tmp_path / "report"
    result = cli("report", "--results-dir", str(cli.results_dir), "--out", str(out), "--chart-format", "png")
    assert result.exit_code == 0, result.output
    table = " ".join(result.stdout.split())
    assert "test bits/char" in table and "sorted by test bits/char, lower is better" in table
    rows = [line for line in result.stdout.splitlines() if line.strip("│ ").split(" ")[0] in ("sgd", "adamw", "muon")]
    assert rows[-1].strip("│ ").startswith("sgd")  # plain SGD at lr 0.01 barely moves a transformer in 8 steps
    assert {p.name for p in out.glob("*.png")} >= {f"charlm-synthetic-rows-64-{kind}.png" for kind in ("bars", "convergence")}


def test_vectorized_engine_says_why_it_cannot_run_charlm(cli):
    one_line_error(cli.run(*TINY, "--opt", "adam", "--engine", "vectorized"),
                   "task 'charlm' is not vectorized (only regression, mlp): its per-position outputs")


def test_a_target_on_bits_per_character_is_refused_for_a_task_without_it(cli):
    one_line_error(cli.run("--task", "regression", "--opt", "sgd", "--epochs", "1", "--target", "bpc=2"),
                   "task 'regression' measures rmse, not bpc")


def test_the_suite_file_runs_sgd_adamw_and_muon_on_the_real_text():
    from optbench.config.suite import build_specs, load_suite, read_config

    specs = build_specs(load_suite(read_config(Path(__file__).resolve().parents[1] / "configs" / "charlm.toml"),
                                   {"device": "cpu"}))
    assert sorted((s.task, s.dataset, s.optimizer, s.epochs, s.batch_size, s.seed) for s in specs) == sorted(
        ("charlm", "tinyshakespeare", opt, 6, 32, seed) for opt in ("sgd", "adamw", "muon") for seed in range(3))


# --- data -----------------------------------------------------------------------------------------

def test_windows_blocks_and_unseen_characters():
    source = ("abcab" * 400) + "Z" * 200  # 'Z' is only in the validation and test blocks
    data = text_data(source, None, "mine")
    vocab = vocabulary(source[: int(len(source) * 0.9)])
    assert vocab == "abc\x00" and data.vocab_size == 4
    assert data.x_train.shape == (int(len(source) * 0.9) // CONTEXT, CONTEXT)  # all windows: fewer than the default sample
    assert torch.equal(data.x_train[:, 1:], data.y_train[:, :-1])  # targets are the inputs shifted by one
    assert (data.y_test == 3).all()  # the unknown symbol stands for 'Z': kept and scored, never dropped
    val = data.validation_split()
    assert torch.equal(val.x_test, data.x_val) and val.vocab_size == 4 and not val.reference


def test_too_many_windows_is_a_user_error(cli):
    one_line_error(cli.run("--task", "charlm", "--dataset", "synthetic:rows=9000", "--opt", "sgd", "--epochs", "1"),
                   "synthetic:rows=9000 asks for more training windows than the text has (4,218 of 64 characters)")


def write_text(data_dir, body: str, monkeypatch) -> str:
    """The text as the downloader saves it, with its own checksum standing in for the published one."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / text.FILENAME).write_text(body, encoding="utf-8")
    monkeypatch.setattr(text, "SHA256", hashlib.sha256(body.encode()).hexdigest())
    return body


def test_the_real_file_path_reads_a_text_in_the_published_format(cli, monkeypatch):
    lines = [f"Speaker {i % 7}:\nWhat say'st thou, good {['sir', 'madam', 'friend'][i % 3]}?\n\n" for i in range(300)]
    body = write_text(cli.data_dir, "".join(lines), monkeypatch)
    (record,) = cli.run_json("--task", "charlm", "--dataset", "tinyshakespeare:rows=16", "--batch-size", "8",
                             "--epochs", "1", "--opt", "adamw")
    assert record["status"] == "ok" and record["spec"]["dataset"] == "tinyshakespeare:rows=16"
    size = len(vocabulary(body[: int(len(body) * 0.9)]))
    assert record["metrics"]["chance_bpc"] == pytest.approx(math.log2(size))


def test_a_file_that_is_not_tiny_shakespeare_is_refused(cli):
    cli.data_dir.mkdir()
    (cli.data_dir / text.FILENAME).write_text("To be, or not to be\n" * 100)
    result = cli.run("--task", "charlm", "--dataset", "tinyshakespeare", "--opt", "sgd", "--epochs", "1")
    one_line_error(result, "tinyshakespeare.txt fails its SHA-256 checksum (it is not the published tiny-shakespeare text)")
    assert not cli.stored()


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_the_text_is_downloaded_once_and_checked(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    body = "Enter the ghost.\n" * 500
    (served / "input.txt").write_text(body)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietFiles, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv(text.URL_VARIABLE, f"http://127.0.0.1:{server.server_address[1]}/input.txt")
        with pytest.raises(UserError, match="the file has SHA256 [0-9a-f]+, expected 86c4e6aa"):
            text.load_tinyshakespeare(tmp_path / "refused")  # the published checksum is not this text's
        assert not (tmp_path / "refused").exists()
        monkeypatch.setattr(text, "SHA256", hashlib.sha256(body.encode()).hexdigest())
        monkeypatch.setattr(text, "TEXT_BYTES", len(body))
        assert text.load_tinyshakespeare(tmp_path / "data") == body
        assert (tmp_path / "data" / text.FILENAME).read_text() == body
    finally:
        server.shutdown()


def test_the_shared_copy_of_tiny_shakespeare():
    if not (SHARED_DATA / text.FILENAME).exists():
        pytest.skip("../shared/data/tinyshakespeare.txt is not present")
    data = get_task("charlm").load("tinyshakespeare", SHARED_DATA)
    assert data.vocab_size == 66  # its 65 characters all occur in the first 90%, and the unknown symbol
    assert data.x_train.shape == (4096, CONTEXT) and data.x_test.shape == (871, CONTEXT) == data.x_val.shape
    assert data.reference["chance_bpc"] == pytest.approx(math.log2(66))
    assert 4.8 < data.reference["unigram_bpc"] < 4.9


# --- Muon: hidden matrices, and AdamW for the rest -------------------------------------------------

def test_muon_updates_exactly_the_block_matrices_of_the_transformer():
    model = CharTransformer(vocab=40)
    groups = groups_by_name(build_optimizer("muon", model.parameters(), resolve_hparams("muon", {})), model)
    assert groups[True] == BLOCK_MATRICES
    assert {"token.weight", "position.weight", "head.weight", "ln.weight", "blocks.0.ln1.bias"} <= set(groups[False])
    assert set(groups[True]) | set(groups[False]) == {n for n, _ in model.named_parameters()}


def test_muon_on_an_unmarked_model_keeps_its_input_and_output_layers_on_adamw():
    task = get_task("mlp")
    model = task.build_model(task.load("synthetic", "data"))  # Linear 10->64, 64->64, 64->1
    optimizer = build_optimizer("muon", model.parameters(), resolve_hparams("muon", {}))
    assert groups_by_name(optimizer, model) == {True: ["2.weight"], False: ["0.weight", "0.bias", "2.bias", "4.weight", "4.bias"]}
    x, y = torch.randn(64, 10), torch.randn(64)
    before = task.loss(model(x), y).item()
    for _ in range(20):
        task.loss(model(x), y).backward()
        optimizer.step()
        optimizer.zero_grad()
    assert task.loss(model(x), y).item() < before


def test_a_muon_step_is_an_orthogonalised_momentum_step():
    weight = torch.nn.Parameter(torch.zeros(32, 32))
    setattr(weight, PARAM_ROLE, "hidden")  # a marked model: this matrix is a hidden one
    optimizer = MuonAdamW([weight], lr=0.02)
    weight.grad = torch.randn(32, 32, generator=torch.Generator().manual_seed(0))
    optimizer.step()
    singular = torch.linalg.svdvals(weight.detach() / 0.02)
    assert 0.5 < singular.min() and singular.max() < 1.3  # about U V^T of the gradient: every direction moves alike


def test_muon_state_round_trips_through_its_state_dict():
    """A fresh optimizer loaded with another's state steps on as that one does (the AdamW part's
    moments included: restarting them would change the next steps)."""
    torch.manual_seed(0)
    model, twin = CharTransformer(vocab=10), CharTransformer(vocab=10)
    x = torch.randint(0, 10, (2, 8))
    first = MuonAdamW(model.parameters())
    model(x).sum().backward()
    first.step()
    first.zero_grad()
    twin.load_state_dict(model.state_dict())
    second = MuonAdamW(twin.parameters())
    second.load_state_dict(copy.deepcopy(first.state_dict()))  # torch loads the tensors themselves, not copies
    for _ in range(2):
        for m, opt in ((model, first), (twin, second)):
            m(x).sum().backward()
            opt.step()
            opt.zero_grad()
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters()))


def test_zoo_muon_splits_charlm_the_same_way():
    pytest.importorskip("pytorch_optimizer")
    model = CharTransformer(vocab=40)
    groups = groups_by_name(build_optimizer("po:muon", model.parameters(), resolve_hparams("po:muon", {})), model)
    assert groups[True] == BLOCK_MATRICES and "token.weight" in groups[False] and "head.weight" in groups[False]


def test_the_cli_in_real_processes_runs_reports_and_gates_charlm(tmp_path):
    # As a user types it: run, report (json), baseline save and check, each a process of its own.
    import json
    import subprocess
    import sys

    def optbench(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "optbench", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, check=False)

    run = optbench("run", *TINY, "--opt", "adamw", "muon", "--quiet", "--json")
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert {r["spec"]["optimizer"] for r in json.loads(run.stdout)} == {"adamw", "muon"}
    report = optbench("report", "--format", "json", "--no-charts", "--table", "cells")
    assert report.returncode == 0, report.stderr
    cells = json.loads(report.stdout)
    assert {c["optimizer"] for c in cells} == {"adamw", "muon"} and {c["metric_name"] for c in cells} == {"bpc"}
    assert optbench("baseline", "save", "--out", "baseline.json", "--repeats", "0").returncode == 0
    check = optbench("check", "--baseline", "baseline.json", "--confirm", "0", "--all")
    assert check.returncode == 0 and "PASS: 2 cell(s)" in check.stdout, check.stdout + check.stderr
    assert "test_bpc" in check.stdout  # the gate judges the task's own metric
