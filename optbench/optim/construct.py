"""Building optimizers: the constructor call and the implementation policy (for-loop, foreach,
fused). The part of the optimizer registry that needs torch; ``optbench.optim.registry`` holds the
names, defaults and hyperparameter checks and never imports torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from optbench.errors import UserError, did_you_mean
from optbench.optim.muon import marked_hidden
from optbench.optim.registry import OptimizerDef, class_path, get_optimizer
from optbench.spec.vocabulary import IMPLS


def build_optimizer(name: str, params: Iterable[torch.nn.Parameter], hparams: Mapping[str, Any],
                    impl: str = "auto") -> torch.optim.Optimizer:
    """Construct the optimizer ``name`` over ``params`` with resolved ``hparams`` and implementation
    ``impl`` (see ``resolve_impl``; ``auto`` resolves for the device of the first parameter)."""
    opt = get_optimizer(name)
    params = list(params)
    impl = resolve_impl(name, impl, _device_of(params))
    if opt.matrix_groups and all(isinstance(p, torch.Tensor) for p in params):
        # Matrices by the roles the model marks (charlm: embeddings and output layer on AdamW), else by dimension.
        hidden = marked_hidden(params) or [p.ndim >= 2 for p in params]
        groups = ({"params": [p for p, h in zip(params, hidden) if h], "use_muon": True},
                  {"params": [p for p, h in zip(params, hidden) if not h], "use_muon": False})
        params = [g for g in groups if g["params"]]
    return opt.load_class()(params, **{**hparams, **opt.fixed, **_impl_arguments(opt, impl)})


_CLOSURE = "its step() needs a closure that re-evaluates the loss, which optbench's training loop does not pass"


def probe(name: str, hparams: Mapping[str, Any]) -> str | None:
    """Why ``name`` with ``hparams`` cannot train, found by building it over a tiny linear layer's
    weight matrix and bias and taking two steps the way the training loop does (plain
    ``loss.backward()`` then ``step()``); None when it can. Milliseconds, before any run starts."""
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(2, 3, generator=gen).requires_grad_()
    bias = torch.zeros(2, requires_grad=True)
    x = torch.randn(4, 3, generator=gen)
    try:
        optimizer = build_optimizer(name, [weight, bias], hparams)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin class may raise anything on bad input
        return _first_line(exc)
    try:
        for _ in range(2):
            optimizer.zero_grad()
            (x @ weight.T + bias).pow(2).mean().backward()
            optimizer.step()
    except Exception as exc:  # noqa: BLE001
        text = str(exc)
        if "closure" in text.lower():
            return _CLOSURE
        if "grad_fn" in text:
            return ("it needs second-order gradients (a backward pass with create_graph=True, for Hessian "
                    "estimates), which optbench's training loop does not take")
        return f"its step() fails on a small model ({_first_line(exc)})"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _device_of(params: list[Any]) -> torch.device:
    for entry in params:
        group = entry["params"] if isinstance(entry, dict) else [entry]
        for tensor in [group] if isinstance(group, torch.Tensor) else group:
            return tensor.device
    return torch.device("cpu")


# --- implementation policy -----------------------------------------------------------------------

def _foreach_devices() -> set[str]:
    """Device types with foreach kernels, as torch itself decides where foreach is its default."""
    try:
        from torch.utils._foreach_utils import _get_foreach_kernels_supported_devices
    except ImportError:  # a private helper: fall back to what it has said since torch 2.0
        return {"cuda"}
    return set(_get_foreach_kernels_supported_devices())


def resolve_impl(name: str, impl: str, device: str | torch.device) -> str:
    """The implementation optimizer ``name`` runs with on ``device``: ``forloop``, ``foreach``,
    ``fused``, or for a class without a foreach/fused switch its own (``forloop`` for the
    reference optimizers, ``native`` for plugins). Raises UserError where it lacks ``impl``.

    Policy for ``auto``: ``foreach`` on devices with foreach kernels (CUDA), the for-loop elsewhere
    (CPU), for every optimizer with a foreach switch; ``fused`` only when asked for. This is what
    torch picks by default for its own optimizers, but stated explicitly, so third-party classes
    with other defaults (pytorch_optimizer uses foreach on CPU too) run the same kind of code.
    Fused is never automatic: only SGD, Adam, AdamW and Adagrad have it, and picking it where it
    exists would make those look faster for a reason that is not the algorithm.
    """
    opt = get_optimizer(name)
    if impl not in (*IMPLS, "native"):  # "native": what resolve_impl returns for a class without a switch
        raise UserError(f"unknown implementation '{impl}'{did_you_mean(impl, IMPLS)}; choose from: {', '.join(IMPLS)}")
    switches = opt.impl_switches()
    device = torch.device(device)
    if not switches:
        if impl in ("auto", opt.native_impl):
            return opt.native_impl
        own = "a for-loop implementation" if opt.native_impl == "forloop" else "its own implementation"
        ok = "auto or forloop" if opt.native_impl == "forloop" else "auto"
        raise UserError(f"optimizer '{name}' has only {own} (no foreach/fused switch); use --impl {ok}")
    if impl == "auto":
        return "foreach" if "foreach" in switches and device.type in _foreach_devices() else "forloop"
    if impl != "forloop" and impl not in switches:
        choices = ", ".join(["auto", "forloop", *sorted(switches)])
        raise UserError(f"optimizer '{name}' ({class_path(opt.load_class())}) has no {impl} implementation; use --impl {choices}")
    if impl == "fused":
        probe = torch.zeros(1, device=device, requires_grad=True)
        try:
            opt.load_class()([probe], **{**opt.defaults, **opt.fixed, "fused": True})
        except (RuntimeError, ValueError, TypeError) as exc:
            raise UserError(
                f"optimizer '{name}' has no fused implementation for {device.type} in torch {torch.__version__} "
                f"({str(exc).splitlines()[0]}); use --impl foreach or forloop"
            ) from None
    return impl


def _impl_arguments(opt: OptimizerDef, impl: str) -> dict[str, bool]:
    """Constructor arguments that select ``impl``, always explicit so no class picks its own."""
    switches = opt.impl_switches()
    args = {"foreach": impl == "foreach"} if "foreach" in switches else {}
    if impl == "fused":
        args["fused"] = True
    return args
