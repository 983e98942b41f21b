"""Training on the CPU with torch's CUDA build and no GPU: optbench says once, in one line on stderr,
how to install the CPU-only build (several GB less disk); OPTBENCH_NO_CUDA_NOTICE=1 hides it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from optbench.devices import CPU_ONLY_INSTALL
from optbench.limits import CUDA_BUILD_NOTICE_VARIABLE

# The notice is due exactly where torch is a CUDA build and no GPU is usable (this machine; not a
# CI machine with the CPU-only build, where the tests check that it stays silent).
DUE = bool(torch.version.cuda) and not torch.cuda.is_available()


def notices(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CPU_ONLY_INSTALL in line]


def test_a_real_process_says_it_once_in_one_line_and_the_variable_hides_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != CUDA_BUILD_NOTICE_VARIABLE}
    args = [sys.executable, "-m", "optbench", "run", "--opt", "sgd", "--seeds", "2", "--epochs", "1", "--quiet"]
    (tmp_path / "plain").mkdir()
    (tmp_path / "hidden").mkdir()
    # Both processes at once: each costs seconds, mostly importing torch.
    plain = subprocess.Popen(args, cwd=tmp_path / "plain", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    hidden = subprocess.Popen(args, cwd=tmp_path / "hidden", env={**env, CUDA_BUILD_NOTICE_VARIABLE: "1"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    (out, err), (hidden_out, hidden_err) = plain.communicate(timeout=120), hidden.communicate(timeout=120)
    assert plain.returncode == 0 and hidden.returncode == 0, err + hidden_err
    said = notices(err)
    assert len(said) == (1 if DUE else 0), err  # two runs, one notice
    if DUE:
        assert "several GB" in said[0] and f"{CUDA_BUILD_NOTICE_VARIABLE}=1" in said[0]
        assert err.count("\n") == 1  # the only line on stderr
        assert "2 run(s) recorded" in out and CPU_ONLY_INSTALL not in out
    assert hidden_err == "" and "2 run(s) recorded" in hidden_out


def test_the_variable_hides_it_and_a_process_says_it_once(cli, monkeypatch):
    if not DUE:
        pytest.skip("torch here is a CPU-only build or a GPU is usable: the notice is not due")
    monkeypatch.setenv(CUDA_BUILD_NOTICE_VARIABLE, "1")
    assert notices(cli.run("--opt", "sgd", "--epochs", "1", "--quiet").stderr) == []
    monkeypatch.delenv(CUDA_BUILD_NOTICE_VARIABLE)
    assert len(notices(cli.run("--opt", "sgd", "--epochs", "1", "--quiet", "--force").stderr)) == 1
    assert notices(cli.run("--opt", "adam", "--epochs", "1", "--quiet").stderr) == []  # once per process
