"""The tuning protocol behind ``optbench run --select``: tune on validation, compare on test.

1. ``sweep``: every candidate (each combination of a sweep, see ``optbench.config.sweep``) runs with
   the suite's first ``selection_seeds`` seeds (1 by default, as DeepOBS: the first seed only) on
   the validation split (``TaskData.validation_split``): the test split is never seen while
   choosing. Each seed's run is an ordinary record of stage ``sweep``.
2. ``final``: per task x optimizer, the candidate with the best main validation metric, the mean
   over its selection seeds (lowest ``val_rmse``, highest ``val_accuracy``; ties: the first
   candidate), is re-run on test with every seed of the suite. A candidate any of whose seeds
   diverged or failed is never chosen.
3. ``default``: the same optimizer at its documented default hyperparameters, with the same
   training options and seeds, on test, so the report can show default against tuned. Skipped
   where the defaults won (the final runs are those runs), and left out by a preset that has no
   such stage (``optbench.config.presets``: deepobs).

Records carry their stage as the top-level key ``stage``. A stage is a role, not part of what is
computed: the spec (and its hash) is that of the run, so a resumed protocol skips every run already
stored, and a final run equal to an earlier plain run is not repeated. Which candidate won is
therefore never read from the stage marks but recomputed from the sweep's records (``choose``),
here and in the report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from optbench.metrics import held_out
from optbench.optim.hparams import default_hparams
from optbench.spec import FINISHED, SUCCESS, RunSpec
from optbench.spec.identity import sweep_key
from optbench.spec.vocabulary import DEFAULT, FINAL, SWEEP
from optbench.store.records import newest_per_spec
from optbench.tasks.catalog import main_metric_name



@dataclass
class Candidate:
    """One sweep candidate's outcome over its selection seeds: the first seed's spec, a status (the
    first seed's that did not finish, else the first's), the mean main validation metric (None: a
    seed has no value) and each seed's value (``values``, in seed order; one with the default
    ``selection_seeds``), from which a report can tell whether two candidates are within seed noise."""

    spec: RunSpec
    status: str
    value: float | None
    values: tuple[float, ...] = ()


@dataclass
class Choice:
    """The sweep of one task x dataset x optimizer (with its other settings) and its winner."""

    task: str
    dataset: str
    optimizer: str
    metric: str  # "val_rmse" or "val_accuracy"
    higher_is_better: bool
    candidates: list[Candidate] = field(default_factory=list)
    best: Candidate | None = None

    @property
    def finished(self) -> int:
        """Candidates with a value to compare (finished training without diverging)."""
        return sum(c.value is not None for c in self.candidates)

    def swept(self) -> list[str]:
        """The hyperparameters whose value differs between the candidates."""
        keys = {k for c in self.candidates for k in c.spec.hparams}
        return sorted(k for k in keys if len({repr(c.spec.hparams.get(k)) for c in self.candidates}) > 1)

    def tuned_spec(self) -> RunSpec | None:
        """The winner as a test-split spec (seed still the sweep's), or None when nothing finished."""
        return None if self.best is None else on_test(self.best.spec)

    def default_spec(self, load: bool = True) -> RunSpec:
        """The optimizer at its default hyperparameters with the candidates' other settings, on test.
        ``load=False`` for stored records: see ``optbench.optim.hparams.default_hparams`` (UserError where unknown)."""
        first = on_test(self.candidates[0].spec)
        return replace(first, hparams=default_hparams(self.optimizer, load))


def on_test(spec: RunSpec) -> RunSpec:
    return replace(spec, training=spec.training.with_split("test"))


def candidate_specs(specs: Iterable[RunSpec], selection_seeds: int = 1) -> list[RunSpec]:
    """Validation-split specs per distinct cell of ``specs``, with the first ``selection_seeds``
    seeds from the suite's first seed (each cell's seeds together), in order."""
    specs = list(specs)
    first_seed = min((s.seed for s in specs), default=0)
    out: list[RunSpec] = []
    seen: set[str] = set()
    for spec in specs:
        for seed in range(first_seed, first_seed + selection_seeds):
            candidate = replace(spec, seed=seed, training=spec.training.with_split("validation"))
            if candidate.spec_hash() not in seen:
                seen.add(candidate.spec_hash())
                out.append(candidate)
    return out


def main_validation_metric(task: str, metric_name: str | None = None) -> tuple[str, bool]:
    """(``val_rmse``, False) or (``val_accuracy``, True) for a task (a task this optbench lacks
    answers from its records' ``metric_name``)."""
    main = held_out(main_metric_name(task, [metric_name]), "val")
    return main.name, main.higher_is_better


def choose(outcomes: Iterable[tuple[RunSpec, str, dict[str, Any], str | None]]) -> list[Choice]:
    """Group validation-split outcomes ``(spec, status, metrics, metric_name)`` into sweeps and pick
    each one's best; test-split outcomes are ignored. Where a spec appears more than once, the last
    outcome counts (pass them oldest first). Sweeps come in the order of their first candidate."""
    latest: dict[str, tuple[RunSpec, str, dict[str, Any], str | None]] = {}
    for outcome in outcomes:
        if outcome[0].training.split == "validation":
            latest[outcome[0].spec_hash()] = outcome  # keeps the first position, takes the last value
    choices: dict[str, Choice] = {}
    seeds: dict[str, list[tuple[RunSpec, str, float | None]]] = {}  # cell -> its seeds' outcomes
    for spec, status, metrics, metric_name in latest.values():
        metric, higher = main_validation_metric(spec.task, metric_name)
        choice = choices.setdefault(sweep_key(spec), Choice(spec.task, spec.dataset, spec.optimizer, metric, higher))
        value = metrics.get(metric) if status in SUCCESS else None
        ok = isinstance(value, (int, float)) and math.isfinite(value)
        if spec.cell_hash() not in seeds:
            seeds[spec.cell_hash()] = []
            choice.candidates.append(Candidate(spec, status, None))
        seeds[spec.cell_hash()].append((spec, status, float(value) if ok else None))
    for choice in choices.values():
        for i, c in enumerate(choice.candidates):
            runs = sorted(seeds[c.spec.cell_hash()], key=lambda run: run[0].seed)
            values = tuple(v for _, _, v in runs if v is not None)
            status = next((st for _, st, v in runs if v is None), runs[0][1])
            mean = math.fsum(values) / len(values) if values and len(values) == len(runs) else None
            choice.candidates[i] = Candidate(runs[0][0], status, mean, values)
    for choice in choices.values():
        for c in choice.candidates:
            if c.value is None:
                continue
            b = choice.best
            if b is None or (c.value > b.value if choice.higher_is_better else c.value < b.value):
                choice.best = c
    return list(choices.values())


def choose_from_records(candidates: list[RunSpec], records: list[dict[str, Any]]) -> list[Choice]:
    """The choices for ``candidates`` from stored records (the newest finished record of each
    candidate; a candidate without one counts as failed)."""
    newest = {rec["spec_hash"]: rec for rec in newest_per_spec(records) if rec["status"] in FINISHED}
    outcomes = []
    for spec in candidates:
        rec = newest.get(spec.spec_hash())
        if rec is None:
            outcomes.append((spec, "failed", {}, None))
        else:
            outcomes.append((spec, rec["status"], rec.get("metrics") or {}, rec.get("metric_name")))
    return choose(outcomes)


@dataclass
class Protocol:
    """The three stages over a suite's specs; ``stages`` yields each one's specs when it is due."""

    candidates: list[RunSpec]
    seeds: list[int]
    choices: list[Choice] = field(default_factory=list)
    default_stage: bool = True  # False: no default stage (a preset that leaves it out, e.g. deepobs)

    @classmethod
    def from_specs(cls, specs: list[RunSpec], default_stage: bool = True, selection_seeds: int = 1) -> Protocol:
        seeds = sorted({s.seed for s in specs})
        return cls(candidate_specs(specs, selection_seeds), seeds, default_stage=default_stage)

    def stages(self) -> Iterator[tuple[str, list[RunSpec]]]:
        """(stage, specs) for sweep, final and (unless left out) default. The final stage is decided
        by ``decide``, which the caller calls with the sweep's records once it has run the sweep."""
        yield SWEEP, self.candidates
        yield FINAL, self.final_specs()
        if self.default_stage:
            yield DEFAULT, self.default_specs()

    def decide(self, records: list[dict[str, Any]]) -> None:
        """Choose each sweep's winner from the records of its candidates (new or resumed ones; a
        candidate without a finished record counts as failed). Never reads the store."""
        self.choices = choose_from_records(self.candidates, records)

    def final_specs(self) -> list[RunSpec]:
        return [replace(tuned, seed=seed) for c in self.choices if (tuned := c.tuned_spec()) is not None
                for seed in self.seeds]

    def default_specs(self) -> list[RunSpec]:
        """The default-hyperparameter runs, less those that are already final runs."""
        finals = {s.spec_hash() for s in self.final_specs()}
        specs = [replace(c.default_spec(), seed=seed) for c in self.choices for seed in self.seeds]
        return [s for s in specs if s.spec_hash() not in finals]
