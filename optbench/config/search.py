"""``optbench tune``: a suite whose ``--select`` sweep is N trials drawn from each optimizer's search space.

``tune_suite`` turns a loaded suite into the ``--select`` protocol (optbench.execution.selection)
whose candidates are, per optimizer, exactly ``trials`` points of its space (optbench.spec.search):

- the space: the one given inline (``--space adam:...``), else the suite file's ``[search.adam]``,
  else the registry's default (``optbench.optim.registry.default_space``); each replaces the
  one below it whole. Keys an entry fixes (``--opt adam:eps=1e-6``) leave a default space; in a
  given space they are a contradiction.
- the points: scrambled Halton (default) or Sobol from ``scipy.stats.qmc``, or numpy's random
  Generator, all seeded by ``search_seed`` and generated here, once, from (seed, dimensions): the
  trials are the same on every machine and for every worker count or executor.
- equal budgets: every optimizer gets exactly ``trials`` distinct trials. Rounding to 6
  significant digits (or a choice) can make two points one trial; the sequence is then continued
  until ``trials`` distinct ones are found, deterministically, and a space too small for the
  budget is refused before anything runs.

Each trial is an ordinary optimizer entry with one value per key, so the trials are ordinary
specs of the sweep stage: their own spec hashes, skipped on resume, vectorized (one group per
task x optimizer) with ``--engine auto``. Everything is checked here, before any run: the keys
against the optimizer, each dimension's ends (or values) by building the optimizer with them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from optbench.config.hparams import Listed, OptimizerSweep
from optbench.errors import UserError
from optbench.limits import MAX_TRIALS
from optbench.optim.hparams import resolve_hparams
from optbench.optim.registry import default_space, get_optimizer
from optbench.spec.search import (
    DERIVED_KEYS,
    ONE_MINUS_BETA1,
    Dimension,
    Space,
    describe,
    finite_size,
    parse_inline_space,
    parse_table,
    round6,
    sampled,
)
from optbench.spec.vocabulary import SEARCH_METHODS, TUNE

DEFAULT_TRIALS = 20
DEFAULT_METHOD = SEARCH_METHODS[0]  # halton
# Draws (times the budget) tried before a space is declared too small for it: a continuous
# dimension gives a new value on nearly every draw, so only a space that rounds onto a few
# values ever gets here.
_DRAWS_PER_TRIAL = 50


class Study:
    """One optimizer's search: its entry's fixed values, its space and where the space comes from."""

    def __init__(self, name: str, fixed: dict[str, Any], space: Space, source: str) -> None:
        self.name, self.fixed, self.space, self.source = name, fixed, space, source

    def describe(self) -> str:
        return f"{self.name}: {describe(self.space)} ({self.source})"


def tune_suite(suite: Any, inline: Sequence[str] = ()) -> Any:
    """``suite`` (a SuiteConfig) as the tuning protocol: its optimizers replaced by their trials,
    ``select`` on, ``protocol`` the tuning protocol's name. UserError for anything wrong."""
    if suite.protocol is not None:
        raise UserError(f"optbench tune is a protocol of its own; leave out protocol = \"{suite.protocol}\" "
                        "(or run the preset with optbench run --protocol)")
    if suite.split is not None:
        raise UserError("optbench tune runs the trials on the validation split and the winners on test itself; "
                        "leave out split")
    trials = suite.trials if suite.trials is not None else DEFAULT_TRIALS
    method = suite.method or DEFAULT_METHOD
    studies = plan_studies(suite.optimizers, suite.search, inline)
    entries = []
    for study in studies:
        entries += [OptimizerSweep(study.name, {k: (v,) for k, v in hparams.items()}, f"{study.name} (trial {i + 1})")
                    for i, hparams in enumerate(trial_hparams(study, trials, method, suite.search_seed or 0))]
    return suite.model_copy(update={"optimizers": entries, "select": True, "protocol": TUNE})


def plan_studies(optimizers: Sequence[OptimizerSweep], tables: Mapping[str, Any],
                 inline: Sequence[str] = ()) -> list[Study]:
    """Each optimizer's study, checked: one entry per optimizer with one value per key, spaces only
    for optimizers in the run, keys the optimizer takes, ends it accepts."""
    names = [entry.name for entry in optimizers]
    given: dict[str, tuple[dict[str, Dimension], str]] = {}
    for name, table in (tables or {}).items():
        given[name] = (parse_table(name, table), "suite file")
    seen_inline: set[str] = set()
    for text in inline:
        name, space = parse_inline_space(text)
        if name in seen_inline:
            raise UserError(f"--space gives '{name}' twice; write all its keys in one: {name}:key=dim,key=dim")
        seen_inline.add(name)
        given[name] = (space, "--space")
    for name, (_, where) in given.items():
        if name not in names:
            raise UserError(f"{where} gives a search space for '{name}', which is not in the run "
                            f"(--opt {' '.join(names)}); add it to --opt or drop its space")
    studies = []
    for entry in optimizers:
        if names.count(entry.name) > 1:
            raise UserError(f"optimizer '{entry.name}' is given twice; optbench tune gives each optimizer one space "
                            "and the same number of trials: name it once")
        fixed = _fixed_values(entry)
        opt = get_optimizer(entry.name)
        if entry.name in given:
            space, source = given[entry.name]
            for key in space:
                if _target(key, opt) in fixed:
                    raise UserError(f"'{_target(key, opt)}' of '{entry.name}' is both fixed in --opt and searched in "
                                    f"its space ({source}); keep one")
        else:
            space, source = default_space(opt)
            space = {k: d for k, d in space.items() if _target(k, opt) not in fixed}
            source = f"default: {source}"
        _check_space(entry.name, space, fixed)
        studies.append(Study(entry.name, fixed, space, source))
    return studies


def trial_hparams(study: Study, trials: int, method: str, seed: int) -> list[dict[str, Any]]:
    """The overrides of the study's ``trials`` trials, distinct, in the sequence's order."""
    if not 1 <= trials <= MAX_TRIALS:
        raise UserError(f"trials must be 1 to {MAX_TRIALS:,}, got {trials}; that is optbench's limit (docs/limits.md)")
    if method not in SEARCH_METHODS:
        from optbench.errors import unknown

        raise unknown("search method", method, SEARCH_METHODS)
    size = finite_size(study.space)
    if size is not None and size < trials:
        raise UserError(f"the search space of '{study.name}' holds only {size} distinct point(s), fewer than "
                        f"--trials {trials}: every optimizer gets the same budget, so ask for at most {size} trials or widen the space")
    keys = sampled(study.space)
    opt = get_optimizer(study.name)
    draw = _sampler(method, len(keys), seed)
    out: dict[str, dict[str, Any]] = {}
    drawn = 0
    while len(out) < trials and drawn < _DRAWS_PER_TRIAL * trials:
        for row in draw(trials - len(out)):
            point = {key: dim.at(row[keys.index(key)]) if key in keys else dim.at(0.0) for key, dim in study.space.items()}
            hparams = {**study.fixed, **_apply_derived(point, opt, study.fixed)}
            out.setdefault(repr(sorted(hparams.items())), hparams)
            if len(out) == trials:
                break
        drawn += trials
    if len(out) < trials:
        raise UserError(f"the search space of '{study.name}' ({describe(study.space)}) gives only {len(out)} distinct trial(s) "
                        f"after rounding to 6 significant digits, fewer than --trials {trials}; widen it or ask for fewer trials")
    return list(out.values())


def _sampler(method: str, dims: int, seed: int) -> Any:
    """``draw(n)`` -> n points in [0, 1)^dims, continuing one seeded sequence call after call."""
    import numpy as np

    if dims == 0:
        return lambda n: [[] for _ in range(n)]
    rng = np.random.default_rng(seed)
    if method == "random":
        return lambda n: rng.random((n, dims)).tolist()
    from scipy.stats import qmc

    engine_cls = qmc.Halton if method == "halton" else qmc.Sobol
    try:
        engine = engine_cls(dims, scramble=True, rng=rng)
    except TypeError:  # scipy < 1.15 names it seed
        engine = engine_cls(dims, scramble=True, seed=rng)

    def draw(n: int) -> list[list[float]]:
        with warnings.catch_warnings():  # Sobol's balance warning for n not a power of 2
            warnings.simplefilter("ignore", UserWarning)
            return engine.random(n).tolist()

    return draw


def _fixed_values(entry: OptimizerSweep) -> dict[str, Any]:
    """An entry's values, one per key; a sweep (``adam:lr=1e-3|1e-2``, a range) is refused."""
    fixed: dict[str, Any] = {}
    for key, alts in entry.values.items():
        if isinstance(alts, Listed):
            fixed[key] = alts.items  # a tuple value written as a list
        elif isinstance(alts, tuple) and len(alts) == 1:
            fixed[key] = alts[0]
        else:
            raise UserError(f"optbench tune draws each optimizer's values from its search space; '{entry.written(key)}' "
                            f"sweeps {key}: give one value (fixed) or search it with --space {entry.name}:{key}=log(lo,hi)")
    return fixed


def _target(key: str, opt: Any) -> str:
    """The constructor argument a space key sets: itself, or for ``one_minus_beta1`` betas or momentum."""
    if key != ONE_MINUS_BETA1:
        return key
    return "betas" if isinstance(opt.reference_value("betas") if "betas" in opt.accepted_keys() else None, tuple) else "momentum"


def _apply_derived(point: dict[str, Any], opt: Any, fixed: Mapping[str, Any]) -> dict[str, Any]:
    """``one_minus_beta1`` -> ``betas = (1 - x, beta2)`` (beta2 from the entry or the defaults) or ``momentum = 1 - x``."""
    if ONE_MINUS_BETA1 not in point:
        return point
    point = dict(point)
    x = point.pop(ONE_MINUS_BETA1)
    target = _target(ONE_MINUS_BETA1, opt)
    if target == "betas":
        betas = tuple(fixed.get("betas", opt.reference_value("betas")))
        point["betas"] = (round6(1 - x), *betas[1:])
    else:
        point["momentum"] = round6(1 - x)
    return point


def _check_space(name: str, space: Space, fixed: Mapping[str, Any]) -> None:
    """UserError, before anything runs, for a key the optimizer lacks or a dimension's end (each
    value of a choice, a fixed value) that it refuses."""
    opt = get_optimizer(name)
    accepted = opt.accepted_keys()
    for key, dim in space.items():
        if key in DERIVED_KEYS:
            if not ("betas" in accepted and isinstance(opt.reference_value("betas"), tuple)) and "momentum" not in accepted:
                raise UserError(f"search space of '{name}': {key} sets betas[0] or momentum, and '{name}' has neither")
            if _target(key, opt) in space:
                raise UserError(f"search space of '{name}': {key} sets {_target(key, opt)}, which the space searches too; keep one")
        elif key not in accepted:
            raise UserError(f"search space of '{name}': unknown hyperparameter '{key}'; valid keys: "
                            f"{', '.join([*accepted, *DERIVED_KEYS])}")
        for value in dim.extremes():
            if key == ONE_MINUS_BETA1 and not (isinstance(value, (int, float)) and 0 < value <= 1):
                raise UserError(f"search space of '{name}': {key}={dim.describe()} must lie in (0, 1], as 1 - beta1")
            try:
                resolve_hparams(name, {**fixed, **_apply_derived({key: value}, opt, fixed)})
            except UserError as exc:
                raise UserError(f"search space of '{name}': {key}={dim.describe()}: {exc}") from None



def refuse_search(suite: Any, config: Any) -> None:
    """UserError where ``optbench run`` is given a suite file's tuning keys (they are ``optbench tune``'s)."""
    keys = [key for key in ("search", "trials", "method", "search_seed") if getattr(suite, key) not in (None, {})]
    if keys:
        raise UserError(f"{config}: {', '.join(keys)} are for optbench tune; run optbench tune --config {config}, "
                        "or take them out of the file")
