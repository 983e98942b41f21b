"""The Ray executor: units of work as Ray tasks on a cluster, results back in completion order.

Ray is imported only here, and only when ``--executor ray`` is asked for (``pip install
"optbench[ray]"``). Without an address a local Ray cluster starts in this process and stops with
it; with ``auto`` or ``HOST:PORT`` the executor joins a running cluster (``ray start``) and leaves
it running. Each unit is one task that runs ``execute_unit`` on a worker and returns its results;
the driver (``optbench.execution.driver``) alone skips, claims and writes records (the unit carries
what the driver knows, so results come back final), so
workers need no access to the results folder.

Only an exception raised by a run is a ``failed`` result. A fault of the cluster never is: a worker
process that dies is retried by Ray (``max_retries``); a unit that still fails for a reason of the
cluster (a worker or node died, an object was lost) is submitted again (``RAY_RESUBMITS``), and when
the driver's own raylet died, no node answers or the unit keeps failing, the campaign stops with
``ClusterLost`` (no record for the runs in flight; a re-run resumes). A ``UserError`` on a worker
(bad data there) stops the campaign with its line. Joining a cluster (``--address``) takes at most
``ray_connect_timeout_s()`` seconds; Ray's own log lines go to a file (``optbench.execution.ray_setup``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optbench.engine.base import RunEvents
from optbench.engine.bookkeeping import failed_result, finish, utc_now
from optbench.errors import ClusterLost, UserError
from optbench.execution.base import WorkUnit, execute_unit
from optbench.execution.ray_setup import abandon, parse_address, ray_logs_to_file
from optbench.limits import (
    RAY_CONNECT_TIMEOUT_VARIABLE,
    RAY_RESUBMITS,
    RAY_START_ATTEMPTS,
    ray_connect_timeout_s,
)
from optbench.spec import RunResult

RAY_INSTALL = 'pip install "optbench[ray]"'
# A dying worker process or node: Ray runs the task again, this many times at most.
MAX_RETRIES = 3


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError(f"--executor ray needs Ray, which is not installed; {RAY_INSTALL}") from None
    return ray


def _run_unit(unit: WorkUnit, data_dir: str) -> list[RunResult] | str:
    """On a worker: the unit's results, each naming the executor and node; or a UserError's line."""
    node = socket.gethostname()
    try:
        results = list(execute_unit(unit, Path(data_dir)))
    except UserError as exc:
        return f"on {node}: {exc}"
    for result in results:
        result.environment = {**result.environment, "executor": "ray", "node": node}
    return results


@dataclass
class RayExecutor:
    """Runs every unit as one Ray task with ``cpus``/``gpus`` per run (fractions allowed: 0.25 GPU
    lets four small runs share a GPU); at most ``window`` tasks are in flight at once, so a large
    campaign does not claim all its specs up front."""

    address: str | None = None
    cpus: float = 1.0
    gpus: float = 0.0
    window: int | None = None
    name: str = "ray"

    def __post_init__(self) -> None:
        if self.address is None:
            # A cluster of this machine alone listens on 127.0.0.1, not on every interface.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        ray = _ray()
        self._ray = ray
        if not ray.is_initialized():
            host_port = parse_address(self.address) if self.address is not None else None
            with ray_logs_to_file():
                if self.address is None:
                    self._start_local()
                else:
                    self._connect(host_port)
        self._check_feasible()
        self._remote = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=MAX_RETRIES)(_run_unit)
        self._pending: dict[Any, WorkUnit] = {}
        self._resubmitted: dict[int, int] = {}  # id(unit) -> times it was submitted again after a cluster fault

    def _start_local(self) -> None:
        """Start a local cluster; a start-up that times out (a busy machine) is tried once more."""
        for attempt in range(1, RAY_START_ATTEMPTS + 1):
            try:
                self._ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False,
                               runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
                return
            except Exception as exc:
                with contextlib.suppress(Exception):
                    self._ray.shutdown()
                if attempt == RAY_START_ATTEMPTS:
                    raise UserError(f"cannot start a local Ray cluster ({_first_line(exc)}; tried {attempt} times); "
                                    "the machine may be too busy: try again, or start one with `ray start --head` "
                                    "and pass --address") from None

    def _connect(self, host_port: tuple[str, int] | None) -> None:
        """Join the cluster at ``self.address`` within ``ray_connect_timeout_s()`` seconds: first a TCP
        connection to its port (refused or unreachable: fail at once), then ``ray.init`` in a helper
        thread, which a port that is not Ray's would otherwise keep waiting for ever."""
        timeout = ray_connect_timeout_s()
        where = f"the Ray cluster at {self.address}"
        advice = f"start it with `ray start --head`, check the address, or wait longer with {RAY_CONNECT_TIMEOUT_VARIABLE}=S"
        started = time.monotonic()
        if host_port is not None:
            try:
                socket.create_connection(host_port, timeout=timeout).close()
            except OSError as exc:
                reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
                raise UserError(f"cannot connect to {where} ({reason} within {timeout:g} s); {advice}") from None
        outcome: dict[str, BaseException | None] = {}

        def init() -> None:
            try:
                self._ray.init(address=self.address, log_to_driver=False, configure_logging=False)
                outcome["error"] = None
            except BaseException as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=init, name="optbench-ray-connect", daemon=True)
        thread.start()
        thread.join(max(0.1, timeout - (time.monotonic() - started)))
        if thread.is_alive():
            abandon(thread)
            raise UserError(f"cannot connect to {where} (no Ray cluster answered within {timeout:g} s); {advice}")
        error = outcome.get("error")
        if error is not None:
            raise UserError(f"cannot connect to {where} ({_first_line(error)}); {advice}") from None

    def _check_feasible(self) -> None:
        """A request no node can ever satisfy is an error now, not an endless wait."""
        nodes = [n for n in self._ray.nodes() if n.get("Alive")]
        fits = [n for n in nodes if n["Resources"].get("CPU", 0) >= self.cpus and n["Resources"].get("GPU", 0) >= self.gpus]
        if not fits:
            largest = max(((n["Resources"].get("CPU", 0), n["Resources"].get("GPU", 0)) for n in nodes), default=(0, 0))
            raise UserError(f"no node of the Ray cluster has {self.cpus:g} CPU(s) and {self.gpus:g} GPU(s) for one run "
                            f"(the largest has {largest[0]:g} CPU(s), {largest[1]:g} GPU(s)); lower --cpus-per-run/--gpus-per-run")

    def _capacity(self) -> int:
        if self.window:
            return self.window
        total = self._ray.cluster_resources()
        by_cpu = int(total.get("CPU", 1) // self.cpus) if self.cpus else 64
        by_gpu = int(total.get("GPU", 0) // self.gpus) if self.gpus else by_cpu
        return max(1, 2 * min(by_cpu, by_gpu))

    def map(self, work: Iterable[WorkUnit], data_dir: Path, events: RunEvents) -> Iterator[RunResult]:
        ray, units = self._ray, iter(work)
        capacity = self._capacity()
        data = str(Path(data_dir).resolve())
        try:
            exhausted = False
            while True:
                while not exhausted and len(self._pending) < capacity:
                    unit = next(units, None)
                    if unit is None:
                        exhausted = True
                        break
                    self._submit(unit, data)
                    for spec in unit.specs:
                        events.run_started(spec.spec_hash())
                if not self._pending:
                    return
                done = self._wait()
                for ref in done:
                    unit = self._pending.pop(ref)
                    started = utc_now()
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # the unit's own code raised: its runs failed
                        cause = getattr(exc, "cause", None) or exc
                        outcome = [finish(failed_result(spec, started, f"{type(cause).__name__}: {_first_line(cause)}"),
                                          unit.context) for spec in unit.specs]
                    except Exception as exc:
                        self._resubmit(unit, data, exc)
                        continue
                    if isinstance(outcome, str):
                        raise UserError(outcome)
                    yield from outcome
        finally:
            self._cancel()

    def _submit(self, unit: WorkUnit, data: str) -> None:
        try:
            self._pending[self._remote.remote(unit, data)] = unit
        except Exception as exc:
            raise self._lost(exc, extra=len(unit.specs)) from None

    def _resubmit(self, unit: WorkUnit, data: str, exc: Exception) -> None:
        """A unit that failed for a reason of the cluster (a worker or node died, an object was lost)
        runs again, at most ``RAY_RESUBMITS`` times; when the driver's own raylet died, the cluster
        answers no more, or the unit keeps failing, the campaign stops (ClusterLost)."""
        tries = self._resubmitted.get(id(unit), 0)
        if isinstance(exc, self._ray.exceptions.LocalRayletDiedError) or tries >= RAY_RESUBMITS or not self._alive():
            raise self._lost(exc, extra=len(unit.specs))
        self._resubmitted[id(unit)] = tries + 1
        self._submit(unit, data)

    def _alive(self) -> bool:
        try:
            return any(n.get("Alive") for n in self._ray.nodes())
        except Exception:
            return False

    def _lost(self, exc: BaseException | str, extra: int = 0) -> ClusterLost:
        in_flight = extra + sum(len(u.specs) for u in self._pending.values())
        where = f"the Ray cluster at {self.address}" if self.address else "the local Ray cluster"
        why = exc if isinstance(exc, str) else f"{type(exc).__name__}: {_first_line(exc)}"
        return ClusterLost(f"{where} failed ({why})", in_flight)

    def _wait(self) -> list[Any]:
        try:
            while True:  # a second at a time: a local cluster's dead raylet is seen at once, not after Ray's 15 s
                done = self._ray.wait(list(self._pending), num_returns=1, timeout=1.0)[0]
                if done:
                    return done
                dead = self._dead_local_process()
                if dead:
                    raise self._lost(f"its {dead} process ended")
        except self._ray.exceptions.RayError as exc:
            raise self._lost(exc) from None
        except SystemError as exc:
            # A signal handler's exception (the driver's Interrupted on SIGINT/SIGTERM) raised while
            # Ray's C++ wait ran comes back wrapped: let it through as itself.
            cause = exc.__cause__ or exc.__context__
            if cause is not None and not isinstance(cause, Exception):
                raise cause from None
            raise

    def _dead_local_process(self) -> str | None:
        """The name of a process of the local cluster this executor started (its raylet, its GCS)
        that has ended, or None (also for a joined cluster, whose processes are not this one's)."""
        if self.address is not None:
            return None
        try:
            node = self._ray._private.worker._global_node
            for kind in ("raylet", "gcs_server"):
                for info in node.all_processes.get(kind, []):
                    if info.process.poll() is not None:
                        return kind
        except Exception:
            return None
        return None

    def _cancel(self) -> None:
        """Forget the tasks in flight; ``close`` ends them. (``ray.cancel(force=True)`` on a task
        whose reply is arriving crashes Ray 2.60's driver; ending the job ends its tasks cleanly.)"""
        self._pending.clear()

    def close(self) -> None:
        """Disconnect, which ends this job's tasks still running; a local cluster stops, a joined one keeps running."""
        self._cancel()
        if self._ray.is_initialized():
            with contextlib.suppress(Exception):  # a cluster that is gone has nothing left to stop
                self._ray.shutdown()


def _first_line(exc: BaseException) -> str:
    """An exception's message's first line, or its type's name when it has none."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
