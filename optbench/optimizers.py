"""The optimizer registry: names, documented default hyperparameters, parsing and construction.

An honest comparison does not give SGD and Adam the same learning rate, so every name carries
its own defaults (the values the PyTorch docs and the classic papers recommend). Users override
any constructor argument inline: ``adam:lr=3e-4,betas=0.9/0.98,weight_decay=1e-4``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from optbench.errors import UserError, unknown

HParamValue = bool | int | float | str | tuple
HParams = dict[str, HParamValue]

# Constructor arguments that choose an implementation, not the maths; they are not
# hyperparameters of the comparison.
_IMPLEMENTATION_ARGS = frozenset({"params", "foreach", "fused", "capturable", "differentiable"})


@dataclass(frozen=True)
class OptimizerDef:
    """One registered optimizer: a torch.optim class plus the defaults that define it."""

    name: str
    cls: type[torch.optim.Optimizer]
    defaults: Mapping[str, HParamValue]
    summary: str
    # Arguments that make the variant what it is (nesterov=True for 'nesterov'); not overridable.
    fixed: Mapping[str, HParamValue] = field(default_factory=dict)

    def accepted_keys(self) -> list[str]:
        params = inspect.signature(self.cls.__init__).parameters
        return sorted(
            k for k in params
            if k not in _IMPLEMENTATION_ARGS and k != "self" and k not in self.fixed
            and params[k].kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        )

    def reference_value(self, key: str) -> Any:
        """The value whose type an override of ``key`` must match."""
        if key in self.defaults:
            return self.defaults[key]
        default = inspect.signature(self.cls.__init__).parameters[key].default
        return None if default is inspect.Parameter.empty else default


O = torch.optim
REGISTRY: dict[str, OptimizerDef] = {
    d.name: d
    for d in [
        OptimizerDef("sgd", O.SGD, {"lr": 0.01}, "plain stochastic gradient descent"),
        OptimizerDef("momentum", O.SGD, {"lr": 0.01, "momentum": 0.9}, "SGD with heavy-ball momentum 0.9"),
        OptimizerDef("nesterov", O.SGD, {"lr": 0.01, "momentum": 0.9}, "SGD with Nesterov momentum 0.9",
                     fixed={"nesterov": True}),
        OptimizerDef("rmsprop", O.RMSprop, {"lr": 0.001, "alpha": 0.99, "eps": 1e-8},
                     "RMSprop (Hinton's lecture 6e; lr 1e-3 as in Keras)"),
        OptimizerDef("adagrad", O.Adagrad, {"lr": 0.01}, "Adagrad (Duchi et al. 2011)"),
        OptimizerDef("adadelta", O.Adadelta, {"lr": 1.0, "rho": 0.9}, "Adadelta (Zeiler 2012)"),
        OptimizerDef("adam", O.Adam, {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8},
                     "Adam (Kingma & Ba 2015)"),
        OptimizerDef("adamw", O.AdamW, {"lr": 0.001, "betas": (0.9, 0.999), "weight_decay": 0.01},
                     "Adam with decoupled weight decay (Loshchilov & Hutter 2019)"),
        OptimizerDef("amsgrad", O.Adam, {"lr": 0.001, "betas": (0.9, 0.999)},
                     "Adam with the AMSGrad max of second moments (Reddi et al. 2018)",
                     fixed={"amsgrad": True}),
        OptimizerDef("nadam", O.NAdam, {"lr": 0.002, "betas": (0.9, 0.999)}, "Adam with Nesterov momentum (Dozat 2016)"),
        OptimizerDef("radam", O.RAdam, {"lr": 0.001, "betas": (0.9, 0.999)}, "rectified Adam (Liu et al. 2020)"),
        OptimizerDef("adamax", O.Adamax, {"lr": 0.002, "betas": (0.9, 0.999)}, "Adam with the infinity norm"),
    ]
}


def get_optimizer(name: str) -> OptimizerDef:
    try:
        return REGISTRY[name]
    except KeyError:
        raise unknown("optimizer", name, REGISTRY) from None


def parse_optimizer_arg(text: str) -> tuple[str, HParams]:
    """Split ``name[:key=value,key=value]`` into the name and raw parsed hyperparameters.

    Values: ``true``/``false``, ints, floats, and tuples written with ``/`` (``betas=0.9/0.98``).
    """
    text = text.strip()
    name, _, rest = text.partition(":")
    if not name:
        raise UserError(f"empty optimizer name in '{text}'; write NAME or NAME:key=value,...")
    hparams: HParams = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise UserError(f"bad hyperparameter '{item}' in '{text}'; write key=value, e.g. {name}:lr=0.01")
        if key in hparams:
            raise UserError(f"hyperparameter '{key}' given twice in '{text}'")
        hparams[key] = _parse_value(raw.strip())
    return name, hparams


def _parse_value(raw: str) -> HParamValue:
    if "/" in raw:
        return tuple(_parse_scalar(part.strip()) for part in raw.split("/"))
    return _parse_scalar(raw)


def _parse_scalar(raw: str) -> bool | int | float | str:
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    return raw


def resolve_hparams(name: str, overrides: Mapping[str, Any]) -> HParams:
    """The full hyperparameters of a run: the optimizer's defaults with the overrides applied.

    Checks keys and value types; raises UserError naming the valid keys.
    """
    opt = get_optimizer(name)
    accepted = opt.accepted_keys()
    resolved: HParams = dict(opt.defaults)
    for key, value in overrides.items():
        if key not in accepted:
            raise UserError(
                f"unknown hyperparameter '{key}' for optimizer '{name}'; valid keys: {', '.join(accepted)}"
            )
        resolved[key] = _coerce(name, key, value, opt.reference_value(key))
    _check_ranges(name, resolved)
    return resolved


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


def _check_ranges(name: str, hparams: Mapping[str, Any]) -> None:
    """Reject values torch would reject (and a zero learning rate), before any run starts."""
    lr = hparams.get("lr")
    if isinstance(lr, (int, float)) and lr <= 0:
        raise UserError(f"learning rate of '{name}' must be > 0, got {lr}")
    betas = hparams.get("betas")
    if isinstance(betas, tuple) and not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
        raise UserError(f"betas of '{name}' must each be in [0, 1), got {'/'.join(map(str, betas))}")
    probe = torch.zeros(1, requires_grad=True)
    try:
        build_optimizer(name, [probe], hparams)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise UserError(f"bad hyperparameters for '{name}': {exc}") from None


def build_optimizer(name: str, params: Iterable[torch.nn.Parameter], hparams: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Construct the optimizer ``name`` over ``params`` with resolved ``hparams``."""
    opt = get_optimizer(name)
    return opt.cls(params, **{**hparams, **opt.fixed})


def format_hparams(hparams: Mapping[str, Any]) -> str:
    """``lr=0.001,betas=0.9/0.999``: the inline syntax, so a label can be pasted back into --opt."""
    def fmt(v: Any) -> str:
        if isinstance(v, (tuple, list)):
            return "/".join(fmt(x) for x in v)
        if isinstance(v, bool):
            return str(v).lower()
        return f"{v:g}" if isinstance(v, float) else str(v)

    return ",".join(f"{k}={fmt(v)}" for k, v in sorted(hparams.items()))
