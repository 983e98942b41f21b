"""An optimizer's full, checked hyperparameters: its defaults with the user's typed overrides applied,
each value coerced to its default's type and checked before any run starts (torch is imported only
for the values only the class itself can judge, ``optbench.optim.construct.probe``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from optbench.errors import UserError
from optbench.optim.registry import (_OBJECT_ARGS, REFERENCE, REGISTRY, HParams, HParamValue, OptimizerDef, get_optimizer,
                                     lookup_optimizer)


def resolve_hparams(name: str, overrides: Mapping[str, Any]) -> HParams:
    """The full hyperparameters of a run: the optimizer's defaults with the typed overrides applied,
    coerced (``coerce_hparams``) and checked (``check_hparams``, which builds the optimizer once).

    Raises UserError naming the valid keys, the expected type or what the optimizer rejects.
    """
    hparams = coerce_hparams(name, overrides)
    check_hparams(name, hparams)
    return hparams


def coerce_hparams(name: str, overrides: Mapping[str, Any]) -> HParams:
    """The optimizer's defaults with ``overrides`` applied, each value coerced to its default's type
    (an int for a float default becomes a float, a list a tuple). Checks keys, types and that every
    required argument has a value; builds nothing."""
    opt = get_optimizer(name)
    if not overrides and _builtin(opt):
        # A built-in at its defaults: nothing to check against its class, so torch is not imported (a
        # resume that skips every run never imports it); tests/test_startup.py holds every built-in
        # to needing no argument beyond its declared defaults.
        return dict(opt.defaults)
    accepted = opt.accepted_keys()
    resolved: HParams = dict(opt.defaults)
    for key, value in overrides.items():
        if key in ("foreach", "fused"):
            raise UserError(f"'{key}' chooses an implementation, not a hyperparameter; use --impl {key} (impl = \"{key}\" in a suite file)")
        if key not in accepted:
            raise UserError(
                f"unknown hyperparameter '{key}' for optimizer '{name}'; valid keys: {', '.join(accepted)}"
            )
        resolved[key] = _coerce(name, key, value, opt.reference_value(key))
    missing = [k for k in opt.required_keys() if k not in resolved]
    objects = [k for k in missing if k in _OBJECT_ARGS]
    if objects:
        raise UserError(f"optimizer '{name}' cannot run in optbench: its constructor needs the {objects[0]} "
                        "(an object, not a value optbench can pass); choose another optimizer")
    if missing:
        raise UserError(
            f"optimizer '{name}' has no default for {', '.join(missing)}; give it inline, e.g. {name}:{missing[0]}=VALUE "
            f"(numbers, true/false, strings or tuples; optbench cannot pass objects such as the model)"
        )
    return resolved


def check_hparams(name: str, hparams: Mapping[str, Any]) -> None:
    """UserError for coerced ``hparams`` that optimizer ``name`` cannot train with: the ranges known
    here (a learning rate > 0, betas in [0, 1)), then the optimizer class itself, built once over a
    tiny layer (``optbench.optim.construct.probe``, torch). Call it once per distinct set."""
    _check_ranges(get_optimizer(name), hparams)


def default_hparams(name: str, load: bool = True) -> HParams:
    """``resolve_hparams(name, {})``: the optimizer at its defaults. With ``load=False`` (reading
    records) nothing is imported: built-ins answer from their declaration, other names only if
    their code is loaded already (``lookup_optimizer``); UserError where they cannot answer."""
    if load:
        return resolve_hparams(name, {})
    opt = lookup_optimizer(name, load=False)
    if opt is None:
        raise UserError(f"the defaults of optimizer '{name}' are unknown here (its code is not loaded)")
    return dict(opt.defaults)


def match_hparams(name: str, overrides: Mapping[str, Any]) -> HParams | None:
    """The hyperparameters ``name:overrides`` stands for, to find stored runs by (``report --opt``):
    the defaults with the overrides, as parsed, without importing any optimizer code or checking
    keys (a key the optimizer lacks matches no run). None where the defaults are unknown here."""
    opt = lookup_optimizer(name, load=False)
    return None if opt is None else {**opt.defaults, **overrides}


def _coerce(opt_name: str, key: str, value: Any, reference: Any) -> HParamValue:
    where = f"hyperparameter '{key}' of '{opt_name}'"
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(reference, bool):
        if not isinstance(value, bool):
            raise UserError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(reference, (int, float)) and not isinstance(reference, bool):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise UserError(f"{where} must be finite, got {value!r}")
        return float(value) if isinstance(reference, float) else value
    if isinstance(reference, tuple):
        if not isinstance(value, tuple) or len(value) != len(reference):
            example = "/".join(str(v) for v in reference)
            raise UserError(f"{where} must be {len(reference)} numbers separated by '/', e.g. {key}={example}")
        return tuple(_coerce(opt_name, key, v, r) for v, r in zip(value, reference))
    return value


def _builtin(opt: OptimizerDef) -> bool:
    """Whether ``opt`` is one of optbench's own definitions (torch's optimizers, the reference ones)."""
    return REGISTRY.get(opt.name) is opt or REFERENCE.get(opt.name) is opt


def _check_ranges(opt: OptimizerDef, hparams: Mapping[str, Any]) -> None:
    """Reject values torch would reject (and a zero learning rate), before any run starts."""
    name = opt.name
    lr = hparams.get("lr")
    if isinstance(lr, (int, float)) and lr <= 0:
        raise UserError(f"learning rate of '{name}' must be > 0, got {lr}")
    betas = hparams.get("betas")
    # Only for the built-ins: some third-party optimizers define a beta of 1 (PNM's default).
    if opt.source in ("torch", "reference") and isinstance(betas, tuple) and not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
        raise UserError(f"betas of '{name}' must each be in [0, 1), got {'/'.join(map(str, betas))}")
    if _builtin(opt) and dict(hparams) == dict(opt.defaults):
        return  # a built-in's defaults train (tests/test_startup.py): no class to build, no torch to import
    from optbench.optim.construct import probe  # torch: values only the class itself can judge

    if (problem := probe(name, hparams)) is None:
        return
    if probe(name, dict(opt.defaults)) is None:  # the defaults train: the user's values are at fault
        raise UserError(f"bad hyperparameters for '{name}': {problem}")
    raise UserError(f"optimizer '{name}' cannot run in optbench: {problem}")
