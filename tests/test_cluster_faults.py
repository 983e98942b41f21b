"""Faults of a real Ray cluster never become results: the raylet of `optbench run --executor ray`'s
local cluster killed by its PID mid-campaign stops the suite with one line and exit 75, keeps the
records finished before and writes none for the runs in flight. And joining a cluster never waits
for ever: a refused port, a port out of range and a TCP listener that is not Ray each fail with one
line naming the address, within the configured time (OPTBENCH_RAY_CONNECT_TIMEOUT).

Every process runs with RAY_AUTH_MODE=disabled and listens on 127.0.0.1 only; the test ends the
processes it started, by their PIDs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason='the ray extra is not installed (pip install "optbench[ray]")')

from optbench.errors import ClusterLost

ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "OMP_NUM_THREADS": "1"}


def descendants(root: int) -> dict[int, bytes]:
    """PID -> command line of every process below ``root``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, grew = {root}, True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    found.discard(root)
    out = {}
    for pid in found:
        try:
            out[pid] = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            pass
    return out


def end(processes: dict[int, bytes]) -> None:
    """SIGKILL the processes this test started that are still the same processes."""
    for pid, cmdline in processes.items():
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() == cmdline:
                os.kill(pid, signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


def records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (results / "runs").glob("*.json")]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the raylet through /proc")
def test_a_dead_raylet_stops_the_suite_and_no_run_is_recorded_as_failed(tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "optbench", "run", "--executor", "ray", "--task", "regression",
                             "--epochs", "100", "--seeds", "2", "--opt", "sgd", "adam", "momentum", "--device", "cpu",
                             "--quiet", "--results-dir", str(results), "--data-dir", str(tmp_path / "data")],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started: dict[int, bytes] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not list((results / "runs").glob("*.json")):
            time.sleep(0.1)  # kill once a run is recorded and others are in flight
        started = descendants(proc.pid)
        raylet = [pid for pid, cmd in started.items() if cmd.split(b"\0")[0].endswith(b"/raylet")]
        assert raylet, f"no raylet below the driver; {proc.poll()=}"
        os.kill(raylet[0], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        end(started)

    assert proc.returncode == ClusterLost.EXIT_CODE == 75, stderr
    kept = records(results)
    assert kept and all(r["status"] == "ok" for r in kept), [r["status"] for r in kept]  # no `failed` record
    assert len(kept) < 6
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr  # the one line: no Ray log line, no traceback
    assert lines[-1].startswith("error: the local Ray cluster failed (")
    assert f"stopped the suite; kept the {len(kept)} run(s) finished before in {results / 'runs'}" in lines[-1]
    assert "in flight; run the same command again to resume" in lines[-1]
    assert "raylet" not in stdout and "Traceback" not in stderr  # Ray's own messages went to its log file
    assert not (results / ".claims").exists()  # the claims of the runs in flight were given back


def connect(address: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optbench", "run", "--executor", "ray", "--address", address,
                           "--epochs", "1", "--opt", "sgd", "--device", "cpu"],
                          env={**ENV, "OPTBENCH_RAY_CONNECT_TIMEOUT": "2"}, capture_output=True, text=True, timeout=60, check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("address, says", [
    ("127.0.0.1:99999", "is not auto or HOST:PORT with a port in 1-65535"),
    ("127.0.0.1:0", "is not auto or HOST:PORT with a port in 1-65535"),
    ("[::1]", "is not auto or HOST:PORT with a port in 1-65535"),
    ("127.0.0.1:FREE", "(Connection refused within 2 s)"),  # FREE: a port nothing listens on, found at run time
    ("[::1]:6379", "cannot connect to the Ray cluster at [::1]:6379 ("),  # refused, or no IPv6 here
])
def test_an_address_without_a_cluster_fails_at_once_with_one_line(monkeypatch, address: str, says: str) -> None:
    from optbench.errors import UserError
    from optbench.execution import make_executor

    monkeypatch.setenv("OPTBENCH_RAY_CONNECT_TIMEOUT", "2")
    address = address.replace("FREE", str(free_port()))  # not at collection: every xdist worker collects the same ids
    started = time.monotonic()
    with pytest.raises(UserError) as caught:
        make_executor("ray", address)
    assert says in str(caught.value) and address in str(caught.value) and "\n" not in str(caught.value)
    assert time.monotonic() - started < 5


def test_a_listener_that_is_not_ray_is_given_up_within_the_timeout(tmp_path: Path) -> None:
    with socket.socket() as listener:  # accepts connections, never answers as Ray would
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        done = connect(address)
    assert done.returncode == 2, done.stderr  # not a crash of Ray's client at exit
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: cannot connect to the Ray cluster at {address} (no Ray cluster answered within 2 s); start it with "
        "`ray start --head`, check the address, or wait longer with OPTBENCH_RAY_CONNECT_TIMEOUT=S")
