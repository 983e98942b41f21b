"""Re-measuring suspected runtime regressions before the verdict, as asv re-runs its suspects.

A cell whose runtime is beyond its warn level (``Row.suspect``) is run again: each of its seeds ``rounds`` more times, in the
check's own process, round-robin over the suspect cells and seeds (``a0 b0 a1 b1 a0 b0 ...``), so
a burst of load hits one repetition of each rather than every repetition of one. The results are
kept in memory only: ``optbench check`` never writes run records, and the stored results stay what
``optbench run`` measured. Each repetition is the same spec on the same engine, so its
``step_cost`` measures the same thing as the stored run's.

Only cells the baseline names are re-measured (a suspect has a baseline cell's spec: the same
task, dataset, optimizer, hyperparameters and so on; only the code version may differ, since that is
what is being tested), so what runs is the suite the committed baseline was saved from, never an
optimizer that only a results directory names; ``--confirm 0`` re-measures nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from optbench.check.baseline import Cell
from optbench.check.compare import Remeasured
from optbench.check.runtime import fingerprint_change
from optbench.metrics import checked_metrics
from optbench.spec import SUCCESS, RunSpec

# step_cost is measured by the eager engine (optbench.engine.steptime); another engine's records are
# other cells and carry no step_cost, so they are never suspects.
ENGINE = "eager"


def runtime_metrics() -> list[str]:
    """The runtime metrics check compares (the registry's checked metrics marked ``runtime``): what is re-measured."""
    return [name for name, m in checked_metrics().items() if m.runtime]


def specs_of(cell: Cell) -> list[RunSpec]:
    """The specs of the cell's finished runs, one per seed."""
    fields = cell.spec_fields()
    specs = [RunSpec.from_dict({**fields, "seed": run.seed}) for run in cell.runs if run.status in SUCCESS]
    if specs and specs[0].cell_hash() != cell.cell_hash:
        raise ValueError(f"cell {cell.name}: its spec fields do not rebuild its hash {cell.cell_hash} (a spec field Cell lacks?)")
    return specs


def remeasure(cells: list[Cell], rounds: int, data_dir: Path = Path("data"),
              on_run: Callable[[RunSpec], None] | None = None) -> Remeasured:
    """Run every finished seed of ``cells`` ``rounds`` more times, interleaved; the runtime samples
    of the repetitions that finished, by cell hash and metric. A cell whose results came from
    another machine (``RUNTIME_KEYS`` differ from here) is not re-measured."""
    by_seed = repeat_runs(cells, rounds, data_dir, on_run)
    return {h: {m: [v for seed in seeds.values() for v in seed.get(m, [])] for m in runtime_metrics()}
            for h, seeds in by_seed.items()}


# cell_hash -> seed -> metric -> samples of the repetitions
BySeed = dict[str, dict[int, dict[str, list[float]]]]


def repeat_runs(cells: list[Cell], rounds: int, data_dir: Path = Path("data"),
                on_run: Callable[[RunSpec], None] | None = None) -> BySeed:
    """``remeasure``'s repetitions, by cell hash, seed and metric (cells from another machine: none)."""
    import torch  # imported only when something is re-measured

    from optbench.engine import get_engine
    from optbench.engine.base import RunEvents
    from optbench.fingerprint import environment

    engine = get_engine(ENGINE)

    runtime = runtime_metrics()
    samples: BySeed = {cell.cell_hash: {} for cell in cells}
    threads = torch.get_num_threads()
    per_cell = []
    for cell in cells:
        recorded = cell.environment or {}
        # Re-measure with the thread count the results ran with (CI runs the suite with OMP_NUM_THREADS=1,
        # the check without), and only on the machine that ran them: elsewhere the samples would not compare.
        here = {**environment(cell.device), "torch_threads": recorded.get("torch_threads", threads)}
        if not fingerprint_change(recorded, here) and cell.engine == ENGINE:
            per_cell.append((cell.cell_hash, specs_of(cell)))
    order = [(cell_hash, specs[i]) for _ in range(rounds)
             for i in range(max((len(specs) for _, specs in per_cell), default=0))
             for cell_hash, specs in per_cell if i < len(specs)]
    try:
        for cell_hash, spec in order:
            if on_run:
                on_run(spec)
            recorded = next(c.environment or {} for c in cells if c.cell_hash == cell_hash)
            torch.set_num_threads(recorded.get("torch_threads") or threads)
            (result,) = engine.run_group([spec], data_dir, RunEvents())
            if result.status in SUCCESS:
                seed = samples[cell_hash].setdefault(spec.seed, {m: [] for m in runtime})
                for metric in runtime:
                    value = result.metrics.get(metric)
                    if value is not None and value > 0:
                        seed[metric].append(value)
    finally:
        torch.set_num_threads(threads)
    return samples
