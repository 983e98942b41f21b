"""The Ray executor: units of work as Ray tasks on a cluster, results back in completion order.

Ray is imported only here, and only when ``--executor ray`` is asked for (``pip install
"optbench[ray]"``). Without an address a local Ray cluster starts in this process and stops with
it; with ``auto`` or ``HOST:PORT`` the executor joins a running cluster (``ray start``) and leaves
it running. Each unit is one task that runs ``execute_unit`` on a worker and returns its results;
the driver (``optbench.execution.driver``) alone skips, claims and writes records (the unit carries
what the driver knows, so results come back final), so
workers need no access to the results folder. A worker process or node that dies is retried
(``max_retries``); a run that raises comes back as a ``failed`` result; a ``UserError`` on a
worker (bad data there) stops the campaign with its line.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optbench.engine.base import RunEvents
from optbench.engine.bookkeeping import failed_result, finish, utc_now
from optbench.errors import UserError
from optbench.execution.base import WorkUnit, execute_unit
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
            try:
                if self.address is None:
                    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False,
                             runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
                else:
                    ray.init(address=self.address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray cluster"
                raise UserError(f"cannot connect to {where} ({str(exc).splitlines()[0]}); start it with "
                                "`ray start --head` or leave out --address for a local one") from None
        self._check_feasible()
        self._remote = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=MAX_RETRIES)(_run_unit)
        self._pending: dict[Any, WorkUnit] = {}

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
                    self._pending[self._remote.remote(unit, data)] = unit
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
                    except Exception as exc:  # noqa: BLE001 - retries exhausted: the worker or node kept dying
                        outcome = [finish(failed_result(spec, started, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"),
                                          unit.context) for spec in unit.specs]
                    if isinstance(outcome, str):
                        raise UserError(outcome)
                    yield from outcome
        finally:
            self._cancel()

    def _wait(self) -> list[Any]:
        try:
            return self._ray.wait(list(self._pending), num_returns=1)[0]
        except SystemError as exc:
            # A signal handler's exception (the driver's Interrupted on SIGINT/SIGTERM) raised while
            # Ray's C++ wait ran comes back wrapped: let it through as itself.
            cause = exc.__cause__ or exc.__context__
            if cause is not None and not isinstance(cause, Exception):
                raise cause from None
            raise

    def _cancel(self) -> None:
        """Forget the tasks in flight; ``close`` ends them. (``ray.cancel(force=True)`` on a task
        whose reply is arriving crashes Ray 2.60's driver; ending the job ends its tasks cleanly.)"""
        self._pending.clear()

    def close(self) -> None:
        """Disconnect, which ends this job's tasks still running; a local cluster stops, a joined one keeps running."""
        self._cancel()
        if self._ray.is_initialized():
            self._ray.shutdown()
