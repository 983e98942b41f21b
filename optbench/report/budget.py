"""Tuning-budget curves: the expected best validation score after n = 1..N trials (Dodge et al.
2019, "Show your work"; Sivaprasad et al. 2020), with a bootstrap 95% band, and how many trials
each optimizer needs to come within ``REACH`` of the best.

**Trials.** A trial is one sweep candidate (a combination of ``--select``/``--protocol`` values,
or one ``optbench tune`` trial): records of stage ``sweep``. Its score is the one
``optbench.execution.selection`` chooses by: the mean main validation metric over its selection
seeds (``Candidate.value``). A trial any of whose seeds diverged or failed is a trial spent for
nothing: it counts with the worst possible score, +inf for a lower-is-better metric (RMSE, bpc)
and 0 for an accuracy (``worst_score``). The expected best after n trials is then +inf as long as
n trials could all have failed (n <= the failed trials); those points are not drawn.

**Estimator.** Exact, without replacement: the expected best of n trials drawn at random, without
replacement, from the N observed ones. With the scores sorted best last, v_(1) <= ... <= v_(N)
(in "higher is better" order), the best of n is v_(i) with probability
[C(i, n) - C(i-1, n)] / C(N, n) = C(i-1, n-1) / C(N, n). Dodge et al. draw with replacement
(P = (i/N)^n - ((i-1)/N)^n); we do not, because a tuning run never repeats a trial: without
replacement the curve ends at n = N exactly at the best trial found, as the selection did, while
with replacement it stays below it. Trials are taken as exchangeable (in random order), which for
a grid means "n grid points picked at random", for quasi-random search what it says.

**Band.** The N trials resampled with replacement ``BOOTSTRAP`` times (a seeded numpy
``Generator``, so a report is the same file every time), the estimator applied to each resample,
and the 2.5 and 97.5 percentiles of those (actual resample values: no interpolation, so infinite
scores never make a NaN). The band is widened, where resampling noise leaves it just short, to
contain the estimate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import gammaln

from optbench.execution.selection import Choice, choose
from optbench.metrics import metric as registry_metric
from optbench.report.fair import sweep_names
from optbench.report.naming import budget_text
from optbench.spec import RunSpec
from optbench.spec.vocabulary import SWEEP
from optbench.store.records import newest_per_spec

# Bootstrap resamples for the band, and the seed of their generator.
BOOTSTRAP = 1000
SEED = 0
BAND = (0.025, 0.975)
# "Trials needed to reach X% of the best": within 5% of the best optimizer's expected best at its
# full budget (see ``reach_threshold``).
REACH = 0.95


@dataclass(frozen=True)
class BudgetCurve:
    """One sweep's tuning-budget curve. ``group`` is the report's budget text of its comparable group
    (``20 epochs, batch 64``: with ``task`` and ``dataset``, the key the report's other tables and
    charts of the group use); ``name`` the sweep's display name within its group (``adam``, or
    ``adam · 5 ep`` where sweeps of one optimizer differ); ``failed`` the trials that diverged or
    failed (counted as the worst score)."""

    task: str
    dataset: str
    optimizer: str          # the optimizer's name (e.g. "adam"), one curve per task x dataset x optimizer (x other training options)
    group: str              # the report group it belongs to (same text the other charts use for task x dataset x budget)
    metric: str             # the validation metric, e.g. "val_rmse", "val_accuracy", "val_bpc"
    higher_is_better: bool
    expected: tuple[float, ...]   # expected[n-1] = expected best validation score after n trials, n = 1..N
    low: tuple[float, ...]        # bootstrap 95% band, same length
    high: tuple[float, ...]
    name: str = ""
    failed: int = 0

    @property
    def trials(self) -> int:
        return len(self.expected)


def budget_curves(records: list[dict[str, Any]]) -> list[BudgetCurve]:
    """Curves for every sweep (records of stage "sweep": the trials of `optbench tune`, or the
    candidates of `--select`/`--protocol`), [] when there are none."""
    sweep = [r for r in newest_per_spec(records) if r.get("stage", SWEEP) == SWEEP]
    sweep.sort(key=lambda r: str(r.get("started_at") or ""))
    outcomes = [(RunSpec.from_dict(r["spec"]), r["status"], r.get("metrics") or {}, r.get("metric_name"))
                for r in sweep]
    return curves_of(choose(outcomes))


def curves_of(choices: Iterable[Choice], seed: int = SEED) -> list[BudgetCurve]:
    """A curve per sweep with at least one candidate, named as the report names sweeps."""
    out = []
    choices = [c for c in choices if c.candidates]
    groups: dict[tuple[str, str, str], list[Choice]] = {}
    for c in choices:
        spec = c.candidates[0].spec
        groups.setdefault((c.task, c.dataset, budget_text(spec.epochs, spec.batch_size, spec.training.text())),
                          []).append(c)
    for (task, dataset, group), sweeps in groups.items():
        for c, name in zip(sweeps, sweep_names(sweeps)):
            scores = trial_scores(c)
            expected, low, high = curve_with_band(scores, c.higher_is_better, seed=seed)
            out.append(BudgetCurve(task, dataset, c.optimizer, group, c.metric, c.higher_is_better,
                                   tuple(expected), tuple(low), tuple(high), name,
                                   sum(v is None for v in (x.value for x in c.candidates))))
    return out


def worst_score(metric: str, higher_is_better: bool) -> float:
    """The score of a trial that diverged or failed: 0 for an accuracy (a fraction), else infinitely bad."""
    if higher_is_better:
        return 0.0 if registry_metric(metric).unit == "fraction" else -math.inf
    return math.inf


def trial_scores(choice: Choice) -> list[float]:
    """Each candidate's score in candidate order: its mean validation metric, the worst where it failed."""
    worst = worst_score(choice.metric, choice.higher_is_better)
    return [worst if c.value is None else float(c.value) for c in choice.candidates]


def _weights(n_trials: int) -> np.ndarray:
    """W[n-1, i-1] = P(the best of n trials drawn without replacement is the i-th smallest of N) =
    C(i-1, n-1) / C(N, n), zero where i < n (log-gamma: no overflow for any N)."""
    n = np.arange(1, n_trials + 1)[:, None]
    i = np.arange(1, n_trials + 1)[None, :]
    valid = i >= n
    ni, nn = np.where(valid, i, n), n
    log_w = (gammaln(ni) - gammaln(nn) - gammaln(ni - nn + 1)
             - (gammaln(n_trials + 1) - gammaln(nn + 1) - gammaln(n_trials - nn + 1)))
    return np.where(valid, np.exp(log_w), 0.0)


def _expected_sorted(sorted_scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Expected best of n = 1..N for each row of ascending scores (higher is better; -inf allowed
    first): -inf where n trials could all be -inf, else the weighted sum over the finite ones."""
    worst = np.isneginf(sorted_scores)
    finite = np.where(worst, 0.0, sorted_scores)
    expected = finite @ weights.T
    n = np.arange(1, sorted_scores.shape[-1] + 1)
    return np.where(n[None, :] <= worst.sum(axis=-1, keepdims=True), -np.inf, expected)


def expected_best(scores: Iterable[float], higher_is_better: bool) -> np.ndarray:
    """The exact expected best score of n = 1..N trials drawn without replacement from ``scores``
    (the module's estimator); failed trials as ``worst_score``."""
    values = np.asarray(list(scores), dtype=float)
    sign = 1.0 if higher_is_better else -1.0
    internal = np.sort(sign * values)[None, :]
    return sign * _expected_sorted(internal, _weights(len(values)))[0]


def curve_with_band(scores: Iterable[float], higher_is_better: bool, resamples: int = BOOTSTRAP,
                    seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(expected, low, high) for n = 1..N: the estimate and its bootstrap 95% band (module docstring)."""
    values = np.asarray(list(scores), dtype=float)
    n_trials = len(values)
    if n_trials == 0:
        return np.array([]), np.array([]), np.array([])
    sign = 1.0 if higher_is_better else -1.0
    internal = sign * values
    weights = _weights(n_trials)
    estimate = _expected_sorted(np.sort(internal)[None, :], weights)[0]
    rng = np.random.default_rng(seed)
    samples = np.sort(internal[rng.integers(0, n_trials, size=(resamples, n_trials))], axis=1)
    boot = _expected_sorted(samples, weights)
    low, high = np.quantile(boot, BAND, axis=0, method="inverted_cdf")
    low, high = np.minimum(low, estimate), np.maximum(high, estimate)
    if sign < 0:
        return -estimate, -high, -low
    return estimate, low, high


# --- trials needed --------------------------------------------------------------------------------

def reach_threshold(best: float, higher_is_better: bool, reach: float = REACH) -> float:
    """The score counted as reaching ``reach`` of ``best``: for a higher-is-better metric (accuracy)
    ``reach`` x best (95% of it); for a lower-is-better one (RMSE, bpc) within (1 - ``reach``) of
    it above it (1.05 x the best RMSE). Sizes are taken as absolute values, so a negative score
    moves the same way."""
    margin = (1 - reach) * abs(best)
    return best - margin if higher_is_better else best + margin


def reference(curves: list[BudgetCurve]) -> float | None:
    """The best expected best at full budget among ``curves`` (one comparable group), None if none is finite."""
    ends = [c.expected[-1] for c in curves if c.expected and math.isfinite(c.expected[-1])]
    if not ends:
        return None
    return max(ends) if curves[0].higher_is_better else min(ends)


def trials_needed(curve: BudgetCurve, target: float) -> int | None:
    """The smallest n whose expected best reaches ``target`` (at or past it), None when no n <= N does."""
    for n, value in enumerate(curve.expected, start=1):
        if math.isfinite(value) and (value >= target if curve.higher_is_better else value <= target):
            return n
    return None
