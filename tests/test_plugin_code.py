"""A plugin imports like a script (its folder is importable while it loads, and leaves no trace), and
its code version covers the local modules it imports: a changed helper is another run, and check
names the file; a plugin without helpers keeps the code value it always had."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from optbench.config.suite import build_specs, load_suite
from optbench.optim.registry import code_version, get_optimizer

# SGD whose step is scaled by a value from a module beside it.
PLUGIN = textwrap.dedent('''
    import torch
    import helper

    class MySGD(torch.optim.Optimizer):
        def __init__(self, params, lr=0.01):
            super().__init__(params, dict(lr=lr))

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-group["lr"] * helper.SCALE)
''')
TINY = ["--task", "regression", "--epochs", "2", "--seeds", "1", "--device", "cpu"]


def optbench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "250"}  # table notes on one line
    return subprocess.run([sys.executable, "-m", "optbench", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180, env=env, check=False)


def write_plugin(folder: Path, scale: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "myopt.py").write_text(PLUGIN)
    (folder / "helper.py").write_text(f"SCALE = {scale}\n")


def digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def forget_modules_under(folder: Path) -> None:
    """Take the modules a test imported from its temp folder out of sys.modules (never torch's: a C
    extension imported twice crashes)."""
    for name, module in list(sys.modules.items()):
        where = getattr(module, "__file__", None)
        if where and Path(where).resolve().is_relative_to(folder.resolve()):
            del sys.modules[name]


def records(results: Path) -> list[dict]:
    return sorted((json.loads(p.read_text()) for p in (results / "runs").glob("*.json")), key=lambda r: r["started_at"])


def test_a_plugin_file_imports_a_module_beside_it(tmp_path: Path) -> None:
    write_plugin(tmp_path / "plugins", 1.0)
    proc = optbench("run", "--opt", "plugins/myopt.py:MySGD", *TINY, cwd=tmp_path)  # its folder is not the cwd
    assert proc.returncode == 0, proc.stderr
    (record,) = records(tmp_path / "results")
    assert record["status"] == "ok"
    assert record["spec"]["code"] == {"optimizer": digest(tmp_path / "plugins" / "myopt.py"),
                                      "optimizer:helper.py": digest(tmp_path / "plugins" / "helper.py")}


def test_a_changed_helper_is_rerun_and_check_names_its_file(tmp_path: Path) -> None:
    write_plugin(tmp_path, 1.0)
    run = ["run", "--opt", "myopt.py:MySGD", *TINY]
    assert optbench(*run, cwd=tmp_path).returncode == 0
    assert optbench("baseline", "save", "--out", "base.json", "--repeats", "0", cwd=tmp_path).returncode == 0

    (tmp_path / "helper.py").write_text("SCALE = 0.0\n")  # only the helper changes: now it never learns
    changed = optbench(*run, cwd=tmp_path)
    assert changed.returncode == 0 and "skipped" not in changed.stdout, changed.stdout
    first, second = records(tmp_path / "results")
    assert first["spec"]["code"]["optimizer"] == second["spec"]["code"]["optimizer"]  # the plugin file is the same
    assert first["spec"]["code"]["optimizer:helper.py"] != second["spec"]["code"]["optimizer:helper.py"]

    new = tmp_path / "new" / "runs"
    new.mkdir(parents=True)
    newest = max((tmp_path / "results" / "runs").glob("*.json"), key=lambda p: p.name)  # names start with the time
    shutil.copy(newest, new / newest.name)
    check = optbench("check", "--baseline", "base.json", "--results-dir", "new", "--json", "check.json", cwd=tmp_path)
    assert check.returncode == 1, check.stderr  # compared across the change: the quality regression fails
    old_hash, new_hash = (r["spec"]["code"]["optimizer:helper.py"].removeprefix("sha256:")[:8] for r in (first, second))
    assert f"optimizer:helper.py code changed: {old_hash}… → {new_hash}…" in check.stdout, check.stdout
    (code_row,) = [r for r in json.loads((tmp_path / "check.json").read_text())["rows"] if r["metric"] == "code"]
    assert code_row["note"] == f"optimizer:helper.py code changed: {old_hash}… → {new_hash}…"
    for side in ("baseline", "current"):  # a short cell: the plugin and its one helper as one digest
        assert code_row[side].startswith("optimizer+1 ") and len(code_row[side]) == len("optimizer+1 3f2a9c1b")
    assert code_row["baseline"] != code_row["current"]


def test_plugins_in_two_folders_each_import_their_own_helper(tmp_path: Path) -> None:
    write_plugin(tmp_path / "a", 1.0)
    write_plugin(tmp_path / "b", 0.0)
    path = list(sys.path)
    try:
        classes = [get_optimizer(str(tmp_path / f / "myopt.py") + ":MySGD").load_class() for f in ("a", "b")]
        assert [sys.modules[c.__module__].helper.SCALE for c in classes] == [1.0, 0.0]
        assert sys.path == path  # the folders were importable for the import only
        assert "helper" not in sys.modules
        codes = [code_version(str(tmp_path / f / "myopt.py") + ":MySGD") for f in ("a", "b")]
        assert [c["optimizer:helper.py"] for c in codes] == [digest(tmp_path / f / "helper.py") for f in ("a", "b")]
    finally:
        forget_modules_under(tmp_path)


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``zoo_code/`` on sys.path: an empty ``__init__.py``, ``plain.py`` (no helpers), ``lion.py`` and
    ``adan.py`` sharing ``common.py`` by relative imports."""
    root = tmp_path / "site"
    pkg = root / "zoo_code"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "common.py").write_text("SCALE = 1.0\n")
    (pkg / "plain.py").write_text("import math\nimport torch\n\nclass Plain(torch.optim.SGD):\n    pass\n")
    for name in ("lion", "adan"):
        (pkg / f"{name}.py").write_text(f"import torch\nfrom .common import SCALE\n\nclass {name.title()}(torch.optim.SGD):\n    pass\n")
    monkeypatch.syspath_prepend(str(root))
    yield pkg
    forget_modules_under(tmp_path)


def test_a_plugin_without_helpers_keeps_its_code_value(tmp_path: Path, package: Path) -> None:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "myopt.py").write_text("import math\nimport torch\n\nclass MySGD(torch.optim.SGD):\n    pass\n")
    (folder / "notes.py").write_text("X = 1\n")  # beside it, never imported: not its code
    plugin = str(folder / "myopt.py") + ":MySGD"
    assert code_version(plugin) == {"optimizer": digest(folder / "myopt.py")}
    # a module of a package whose __init__.py is empty, as before helpers counted
    assert code_version("zoo_code.plain:Plain") == {"optimizer": digest(package / "plain.py")}
    (spec,) = build_specs(load_suite(None, {"tasks": ["regression"], "optimizers": [plugin], "device": "cpu"},
                                     source="test"))
    assert spec.to_dict()["code"] == {"optimizer": digest(folder / "myopt.py")}


def test_a_package_plugin_counts_the_modules_it_imports_from_its_package(package: Path) -> None:
    lion, adan = code_version("zoo_code.lion:Lion"), code_version("zoo_code.adan:Adan")
    # common.py was loaded by lion's import; adan's import reuses it, and still counts it
    assert lion == {"optimizer": digest(package / "lion.py"), "optimizer:zoo_code/common.py": digest(package / "common.py")}
    assert adan == {"optimizer": digest(package / "adan.py"), "optimizer:zoo_code/common.py": digest(package / "common.py")}
