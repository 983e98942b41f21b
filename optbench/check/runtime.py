"""Runtime verdicts: is the current code slower than the baseline, beyond the noise of a shared machine?

The method, and why:

- **What is compared.** ``step_cost``: the optimizer's ``step()`` net of the fixed per-step overhead
  (an empty step), in units of a reference SGD step measured just before it in the same run, in CPU
  time on CPU (``optbench.engine.steptime``), the median over the run's steps. A machine that is
  uniformly slower (another job beside it, a lower clock) slows both and cancels out; a preempted
  step does not count its wait, and a slow step is an outlier the median drops. Whole-run ``train_seconds``
  follows the machine's load (0.8x-4.3x between runs of unchanged code on a busy 2-core machine),
  so by default it only warns, at 2x.
- **Effect size.** The ratio of the geometric means, current over baseline, with a 95% confidence
  interval from Student's t on the log samples with pooled variance (the samples are runs of the
  same cell on the same machine, so they share one spread; pooling keeps the interval usable with
  two seeds a side). Per-run ``step_cost`` varies by 1-4% between runs, far less than a regression.
- **Deciding** (asv's rule: a factor *and* a significant difference). Beyond the fail level with the
  interval above 1x fails; beyond it but with the interval reaching 1x warns; beyond the warn level
  warns. With one run a side (no interval) the tolerance alone decides.
- **Confirming** (asv's re-run of suspects). ``optbench check`` re-measures a cell beyond the warn
  level (one that would fail, or a slowdown two noisy runs show a little under the fail level):
  it runs the cell's seeds again, ``confirm`` rounds, interleaved with the other suspects, and
  decides on the pooled samples (``optbench.check.confirm``).
- **Another machine.** When the runtime fingerprint differs (``RUNTIME_KEYS``), a slowdown only warns.

Rank tests are not used: a load change shifts every run of a job together, which a rank test
reads as significant (Mann-Whitney flagged unchanged code at p=0.004 with 5 seeds a side).
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass
from typing import Any

from scipy.stats import ttest_ind

from optbench.check.tolerance import Tolerance

CONFIDENCE = 0.95
# What makes timings comparable; optbench version and git commit are what is being tested, not the machine.
# Where a runtime was measured: a change of any of these makes a runtime verdict a warning. "executor"
# and "node" are set by the Ray executor (absent, so equal, for runs of this process).
RUNTIME_KEYS = ("cpu", "cpu_count", "torch_threads", "device_name", "torch", "cuda", "python", "executor", "node")


@dataclass(frozen=True)
class Effect:
    """Current over baseline: ``ratio`` of geometric means, ``low``/``high`` its confidence
    interval (None without one), and the sample counts."""

    baseline: float
    current: float
    low: float | None
    high: float | None
    n_baseline: int
    n_current: int

    @property
    def ratio(self) -> float:
        return self.current / self.baseline

    @property
    def interval(self) -> str:
        return f"{CONFIDENCE:.0%} CI {self.low:.2f}x-{self.high:.2f}x" if self.low is not None else "no CI"


def slowdown(baseline: list[float], current: list[float], confidence: float = CONFIDENCE) -> Effect:
    """The effect of going from ``baseline`` to ``current`` samples (positive values, seconds or
    ``step_cost``): geometric means and a Student-t interval of their ratio, pooled variance on the
    log scale. No interval with one sample a side."""
    lb, lc = [math.log(v) for v in baseline], [math.log(v) for v in current]
    mb, mc = statistics.fmean(lb), statistics.fmean(lc)
    low = high = None
    if len(lb) + len(lc) > 2:
        if len(set(lb)) == 1 and len(set(lc)) == 1:  # no spread at all: the interval is the point
            low = high = math.exp(mc - mb)
        else:
            with warnings.catch_warnings():  # scipy's "precision loss" on near-equal samples says nothing to a user
                warnings.simplefilter("ignore", RuntimeWarning)
                interval = ttest_ind(lc, lb, equal_var=True).confidence_interval(confidence)
            if math.isfinite(interval.low) and math.isfinite(interval.high):
                low, high = math.exp(interval.low), math.exp(interval.high)
    return Effect(math.exp(mb), math.exp(mc), low, high, len(lb), len(lc))


def runtime_verdict(effect: Effect, tol: Tolerance, env_change: str, remeasured: int = 0) -> tuple[str, str]:
    """``(verdict, note)`` for one runtime metric; see the module docstring for the rule."""
    how = f"{effect.interval}, {effect.n_baseline} vs {effect.n_current} runs"
    if remeasured:
        how += f", {remeasured} of them re-measured"
    if tol.fail.exceeded(effect.baseline, effect.current, False):
        if env_change:
            return "warn", f"slower beyond fail level {tol.fail}, but another environment ({env_change}): runtime only warns"
        if effect.low is None:
            return "fail", f"regression: slower beyond fail level {tol.fail} ({how}: too few runs for an interval)"
        if effect.low > 1:
            return "fail", f"regression: slower beyond fail level {tol.fail} ({how})"
        return "warn", f"slower beyond fail level {tol.fail}, but not significantly ({how})"
    if tol.warn.exceeded(effect.baseline, effect.current, False):
        return "warn", f"slower beyond warn level {tol.warn} ({how})" + (f"; another environment: {env_change}" if env_change else "")
    return "pass", ""


def fingerprint_change(base_env: dict[str, Any], cur_env: dict[str, Any], keys: tuple[str, ...] = RUNTIME_KEYS) -> str:
    """``torch 2.4.0 -> 2.5.1, cpu_count 16 -> 2``, or '' when the environments agree on ``keys``."""
    return ", ".join(f"{k} {base_env.get(k)} -> {cur_env.get(k)}" for k in keys if base_env.get(k) != cur_env.get(k))
