"""A run knows its code: a plugin whose source changed is another run (resume never reuses the old
result), check compares across the change and names it, and built-in runs keep their hashes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from optbench.config.suite import build_specs, load_suite
from optbench.store.records import load_records

PLUGIN = textwrap.dedent('''
    import torch

    class MySGD(torch.optim.Optimizer):
        def __init__(self, params, lr=0.01):
            super().__init__(params, dict(lr=lr))

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-group["lr"] * SCALE)
''')


def optbench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_a_changed_plugin_is_rerun_not_reused_and_check_names_the_change(tmp_path: Path, monkeypatch, cli) -> None:
    plugin = tmp_path / "myopt.py"
    plugin.write_text(PLUGIN + "SCALE = 1.0\n")
    run = ["run", "--opt", "myopt.py:MySGD", "--epochs", "2", "--quiet", "--device", "cpu"]
    monkeypatch.chdir(tmp_path)
    assert cli(*run).exit_code == 0  # this process imports this version
    assert cli("baseline", "save", "--out", "base.json", "--repeats", "0").exit_code == 0

    plugin.write_text(PLUGIN + "SCALE = 0.0\n")  # now it never learns
    changed = optbench(*run, cwd=tmp_path)  # a process of its own: it imports the new version
    assert changed.returncode == 0 and "skipped" not in changed.stdout, changed.stdout  # not the old result
    records, _ = load_records([tmp_path / "results"])
    assert len({r["spec"]["code"]["optimizer"] for r in records}) == 2
    assert len({r["cell_hash"] for r in records}) == 2  # the report keeps them apart

    new = tmp_path / "new" / "runs"
    new.mkdir(parents=True)
    newest = max((tmp_path / "results" / "runs").glob("*.json"), key=lambda p: p.name)  # names start with the time
    (new / newest.name).write_bytes(newest.read_bytes())
    check = cli("check", "--baseline", "base.json", "--results-dir", "new")
    words = " ".join(check.stdout.replace("│", " ").split())
    assert "optimizer code changed:" in words, check.stdout
    assert check.exit_code == 1  # compared across the change: the quality regression fails


def test_built_in_specs_store_no_code_and_keep_their_hashes() -> None:
    (spec,) = build_specs(load_suite(None, {"tasks": ["regression"], "optimizers": ["adam"], "device": "cpu"},
                                     source="test"))
    assert spec.code == {} and "code" not in spec.to_dict()
    assert spec.spec_hash() == "8cbf85bc3437e190"  # as before code versions existed
