"""The allowed values of a run's fields, declared once. The spec, the record schema
(optbench.store.schema), the suite-file schema (optbench.config.suite), the baseline and the CLI
all read these tuples; a test checks that no other module spells them again.
"""

from __future__ import annotations

from typing import Literal

# How a run ended. converged: stopped early by early_stop_delta; budget: stopped by time_budget_s
# (optbench.spec.training); diverged: a non-finite training loss; failed: the run raised (its
# error is in the record).
Status = Literal["ok", "converged", "budget", "diverged", "failed"]
STATUSES: tuple[str, ...] = ("ok", "converged", "budget", "diverged", "failed")
# Runs that finished training normally: they enter the statistics.
SUCCESS: tuple[str, ...] = ("ok", "converged", "budget")
# Runs that are done: not repeated on resume. A failed one is (its cause may have been transient).
FINISHED: tuple[str, ...] = (*SUCCESS, "diverged")

# The engines that train a spec (optbench.engine): eager trains one run at a time; vectorized
# trains the seeds and values of a group in one pass. "auto" is a routing choice, never stored.
Engine = Literal["eager", "vectorized"]
ENGINES: tuple[str, ...] = ("eager", "vectorized")
ENGINE_CHOICES: tuple[str, ...] = ("auto", *ENGINES)

# The optimizer implementation asked for (optbench.optim.construct.resolve_impl); "native" is what
# runs for a class without a switch, recorded as ``optimizer_impl`` but never asked for.
Impl = Literal["auto", "forloop", "foreach", "fused"]
IMPLS: tuple[str, ...] = ("auto", "forloop", "foreach", "fused")

# The protocol stage of a run under --select (optbench.execution.selection).
Stage = Literal["sweep", "final", "default"]
SWEEP, FINAL, DEFAULT = "sweep", "final", "default"
STAGES: tuple[str, ...] = (SWEEP, FINAL, DEFAULT)
# The protocol name ``optbench tune`` stores in every record of its runs (the presets of
# optbench.config.presets store theirs): its sweep's candidates are the trials of a search space.
TUNE = "tune"
# How ``optbench tune`` draws its trials (optbench.config.search): scrambled Halton or Sobol
# (quasi-random, scipy.stats.qmc) or plain random (numpy), each seeded by --search-seed.
SearchMethod = Literal["halton", "sobol", "random"]
SEARCH_METHODS: tuple[str, ...] = ("halton", "sobol", "random")

# Learning-rate schedules (optbench.engine.schedules) and evaluation splits (optbench.spec.training).
Schedule = Literal["none", "step", "cosine", "plateau"]
SCHEDULES: tuple[str, ...] = ("none", "step", "cosine", "plateau")
Split = Literal["test", "validation"]
SPLITS: tuple[str, ...] = ("test", "validation")
# The arithmetic of a run's forward passes (optbench.spec.training): float32, or bf16 (torch.autocast
# with bfloat16 on CPU or CUDA; the parameters, the gradients and the optimizer stay float32).
Precision = Literal["float32", "bf16"]
PRECISIONS: tuple[str, ...] = ("float32", "bf16")
FLOAT32, BF16 = PRECISIONS

# The metrics a time-to-target goal can name (optbench.spec.targets).
TargetMetric = Literal["loss", "rmse", "accuracy", "bpc"]
TARGET_METRICS: tuple[str, ...] = ("loss", "rmse", "accuracy", "bpc")
# What the report's performance profile and time-to-target ranking count to the target
# (optbench.report.fair, ``optbench report --profile-on``): optimizer steps (the default: the machine's
# load cannot change them), wall seconds (follow the load), or steps weighted by each step's measured
# cost against the in-run reference step (forward and backward plus the optimizer's ``step_cost``).
ProgressMeasure = Literal["steps", "seconds", "step-cost-adjusted"]
PROGRESS_MEASURES: tuple[str, ...] = ("steps", "seconds", "step-cost-adjusted")

# What a model parameter is, for optimizers that treat hidden weight matrices apart from the rest
# (Muon: optbench.optim.muon): a task sets the attribute ``PARAM_ROLE`` on a parameter, e.g. "embedding"
# or "head" (the roles that are not hidden matrices); see optbench.tasks.charlm.
PARAM_ROLE = "optbench_role"
NOT_HIDDEN_ROLES: tuple[str, ...] = ("embedding", "head")
