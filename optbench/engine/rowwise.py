"""One optimizer step for a whole vectorized group whose replicas have their own hyperparameters
(a learning-rate grid, a random search): parameters stacked ``[K, ...]``, replica k's learning rate,
betas, eps, momentum, dampening and weight decay in row k.

``torch.optim`` takes one learning rate per parameter group, so without this a grid of V values
needs V stacked leaves and V optimizers, each stepping its own slice (``optbench.engine.vectorized``
keeps that path for every optimizer not covered here). ``RowwiseOptimizer`` is the engine's own
step for the built-in SGD (sgd, momentum, nesterov), Adam (adam, amsgrad), AdamW, RMSprop and
Adagrad: the same operations as torch's single-tensor step (``torch.optim.sgd._single_tensor_sgd``,
``torch.optim.adam._single_tensor_adam``, ...; the foreach step runs the same arithmetic), with each
scalar torch takes as a Python number given instead as a ``[K, 1, ...]`` tensor of the rows' values:

- every scalar is computed as torch computes it, in double precision (``lr / (1 - beta1 ** step)``,
  ``1 - lr * weight_decay``), per row as float64 tensors (IEEE +, -, *, / equal Python's) or, for
  powers (``beta ** step``, ``** 0.5``: libm and torch's pow may differ in the last bit), in Python
  per distinct value; then rounded to the parameters' dtype, as torch's kernels round a scalar;
- a scalar torch passes as ``value=`` or ``alpha=`` (``addcdiv_``, ``addcmul_``, ``add_(alpha=)``)
  multiplies one operand first, which is what those kernels compute first
  (``self + value * t1 / t2``; ``add(a, b, alpha)`` as ``addcmul(a, b, alpha)``, the same fused
  multiply-add), so each row's arithmetic is torch's, operation for operation;
- a hyperparameter equal on every row stays a Python number, passed exactly as torch passes it.

So each row is bit-identical to torch.optim stepping that replica alone
(tests/test_vectorized.py checks every covered optimizer over several steps, with a schedule),
except the sign of a zero: a row with weight decay 0 among rows without adds ``param * 0``, where
torch skips the addition (-0.0 may become +0.0; equal as numbers). The state is torch's (``step``
per parameter as a float32 scalar, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``,
``momentum_buffer``, ``square_avg``, ``grad_avg``, ``sum``), so ``optbench.engine.memory`` counts each replica what its eager run holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from optbench.optim.registry import get_optimizer, signature_defaults

# Per class: the hyperparameters a row may set to its own value, and those every row must share.
_ROW_KEYS = {
    "SGD": frozenset({"lr", "momentum", "dampening", "weight_decay"}),
    "Adam": frozenset({"lr", "beta1", "beta2", "eps", "weight_decay"}),
    "AdamW": frozenset({"lr", "beta1", "beta2", "eps", "weight_decay"}),
    "RMSprop": frozenset({"lr", "alpha", "eps", "weight_decay", "momentum"}),
    "Adagrad": frozenset({"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"}),
}
_SHARED_KEYS = {
    "SGD": frozenset({"nesterov", "maximize"}),
    "Adam": frozenset({"amsgrad", "maximize", "decoupled_weight_decay"}),
    "AdamW": frozenset({"amsgrad", "maximize", "decoupled_weight_decay"}),
    "RMSprop": frozenset({"centered", "maximize"}),
    "Adagrad": frozenset({"maximize"}),
}


def _class_name(name: str) -> str | None:
    """``SGD``, ``Adam``, ``AdamW``, ``RMSprop`` or ``Adagrad`` where optimizer ``name`` is that
    torch.optim class, else None."""
    cls = get_optimizer(name).load_class()
    for candidate in _ROW_KEYS:
        if cls is getattr(torch.optim, candidate):
            return candidate
    return None


def _full_hparams(name: str, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """What the constructor runs with: the class's defaults, the run's values, the variant's fixed
    arguments; ``betas`` split into ``beta1`` and ``beta2``."""
    opt = get_optimizer(name)
    full = {**signature_defaults(opt.load_class()), **hparams, **opt.fixed}
    if "betas" in full:
        full["beta1"], full["beta2"] = (float(b) for b in full.pop("betas"))
    return full


# The classes whose row-wise step is bit-identical to torch's on CUDA too (tests/test_vectorized.py,
# run on an NVIDIA H200 with torch 2.11: sgd, momentum and nesterov equal; adam, adamw, amsgrad,
# rmsprop and adagrad differ in the last bits, where torch's CUDA kernels for a Python-number
# operand round otherwise than the same operation with a tensor of per-row values).
CUDA_EXACT = ("SGD",)


def unsupported(name: str, rows: Sequence[Mapping[str, Any]], impl: str,
                device: torch.device | str = "cpu") -> str | None:
    """Why ``RowwiseOptimizer`` cannot step replicas with hyperparameters ``rows`` of optimizer
    ``name`` on ``device``, or None when it can (then it is bit-identical to torch's step on every row)."""
    if impl not in ("forloop", "foreach"):
        return f"implementation {impl}"
    kind = _class_name(name)
    if kind is None:
        return "not a torch SGD, Adam, AdamW, RMSprop or Adagrad"
    if torch.device(device).type != "cpu" and kind not in CUDA_EXACT:
        return f"torch's {kind} step on {torch.device(device).type} rounds otherwise than the row-wise arithmetic"
    fulls = [_full_hparams(name, h) for h in rows]
    for key in fulls[0]:
        values = {repr(f.get(key)) for f in fulls}
        if key in _ROW_KEYS[kind]:
            if any(isinstance(f.get(key), bool) or not isinstance(f.get(key), (int, float)) for f in fulls):
                return f"'{key}' is not a number"
            continue
        if key in _SHARED_KEYS[kind]:
            if len(values) > 1:
                return f"'{key}' differs between replicas"
            continue
        return f"hyperparameter '{key}'"
    if any(f.get("maximize") for f in fulls):
        return "maximize"
    if kind in ("SGD", "RMSprop"):
        momenta = {f.get("momentum", 0) != 0 for f in fulls}
        if len(momenta) > 1:
            return "momentum 0 on some replicas only (they would hold a momentum buffer their eager runs lack)"
    return None


class _Rows:
    """One hyperparameter over the rows: ``shared``, a Python float where every row has the same
    value (else None); ``rows``, the values as a float64 ``[K]`` tensor on the parameters' device;
    ``distinct`` and ``which``, the distinct values (Python floats) and each row's index into them."""

    def __init__(self, values: Sequence[float], device: torch.device) -> None:
        values = [float(v) for v in values]
        self.shared: float | None = values[0] if len(set(values)) == 1 else None
        self.rows = torch.tensor(values, dtype=torch.float64, device=device)
        self.distinct = sorted(set(values))
        self.which = torch.tensor([self.distinct.index(v) for v in values], device=device)

    @classmethod
    def of(cls, shared: float | None, rows: torch.Tensor) -> _Rows:
        """Rows computed from others (a scaled learning rate): no distinct values kept."""
        made = cls.__new__(cls)
        made.shared, made.rows, made.distinct, made.which = shared, rows, [], rows.new_zeros(0, dtype=torch.long)
        return made

    def map(self, fn: Callable[[Any], Any]) -> Any:
        """``fn`` of the Python float if shared, else of the float64 rows (exact IEEE arithmetic only)."""
        return fn(self.shared) if self.shared is not None else fn(self.rows)

    def keep(self, index: torch.Tensor) -> None:
        self.rows = self.rows.index_select(0, index)
        if len(self.which):
            self.which = self.which.index_select(0, index)


def _shaped(value: float | torch.Tensor, param: torch.Tensor) -> float | torch.Tensor:
    """A Python float as it is; rows ``[K]`` (float64) rounded to ``param``'s dtype, ``[K, 1, ...]``."""
    if not isinstance(value, torch.Tensor):
        return value
    return value.to(param.dtype).view(-1, *([1] * (param.dim() - 1)))


class RowwiseOptimizer:
    """Steps stacked leaves ``[K, ...]`` where row k follows hyperparameters ``rows[k]``; what the
    vectorized engine uses of ``torch.optim.Optimizer``: ``param_groups`` (the leaves), ``state``,
    ``step``, ``zero_grad``, plus ``set_lr_factor`` (a schedule), ``lrs`` and ``keep`` (drop rows)."""

    def __init__(self, name: str, params: Sequence[torch.Tensor], rows: Sequence[Mapping[str, Any]],
                 impl: str = "forloop") -> None:
        why = unsupported(name, rows, impl, params[0].device)
        if why is not None:
            raise ValueError(f"optimizer '{name}' cannot step rows with their own hyperparameters: {why}")
        self.kind = _class_name(name)
        fulls = [_full_hparams(name, h) for h in rows]
        device = params[0].device
        self.param_groups: list[dict[str, Any]] = [{"params": list(params)}]
        self.state: dict[torch.Tensor, dict[str, Any]] = {}
        self.h = {key: _Rows([f[key] for f in fulls], device) for key in _ROW_KEYS[self.kind] if key in fulls[0]}
        first = fulls[0]
        self.nesterov = bool(first.get("nesterov", False))
        self.centered = bool(first.get("centered", False))
        self.amsgrad = bool(first.get("amsgrad", False))
        self.decoupled = bool(first.get("decoupled_weight_decay", self.kind == "AdamW"))
        self.base_lr = self.h["lr"]
        self.lr = self.base_lr
        self.steps = 0

    # --- what the engine calls ---------------------------------------------------------------

    def set_lr_factor(self, factor: float) -> None:
        """Every row at its base learning rate times ``factor`` (``lr * factor`` in double, as the
        engine sets a torch optimizer's ``param_groups[...]["lr"]``)."""
        self.lr = _Rows.of(None if self.base_lr.shared is None else self.base_lr.shared * factor,
                           self.base_lr.rows * factor)

    def lrs(self) -> list[float]:
        """Each row's learning rate now."""
        return self.lr.rows.tolist() if self.lr.shared is None else [self.lr.shared] * len(self.lr.rows)

    def keep(self, index: torch.Tensor) -> None:
        """Keep only rows ``index`` of the hyperparameters (the engine slices leaves and state)."""
        for rows in {id(r): r for r in (*self.h.values(), self.base_lr, self.lr)}.values():
            rows.keep(index)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.param_groups[0]["params"]:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        params = [p for p in self.param_groups[0]["params"] if p.grad is not None]
        {"SGD": self._sgd, "RMSprop": self._rmsprop, "Adagrad": self._adagrad}.get(self.kind, self._adam)(params)

    # --- the steps: torch's single-tensor arithmetic, row by row ------------------------------

    def _sgd(self, params: list[torch.Tensor]) -> None:
        h = self.h
        wd, momentum, dampening = h["weight_decay"], h["momentum"], h["dampening"]
        neg_lr = self.lr.map(lambda v: -v)
        keep_ratio = dampening.map(lambda v: 1 - v)
        for p in params:
            grad = p.grad
            if wd.shared != 0:
                grad = _add(grad, p, _shaped(wd.map(_same), p))
            if momentum.shared != 0:
                state = self.state.setdefault(p, {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = grad.detach().clone()
                else:
                    _mul_(buf, _shaped(momentum.map(_same), p))
                    _add_(buf, grad, _shaped(keep_ratio, p))
                grad = _add(grad, buf, _shaped(momentum.map(_same), p)) if self.nesterov else buf
            _add_(p, grad, _shaped(neg_lr, p))

    def _adam(self, params: list[torch.Tensor]) -> None:
        h = self.h
        step = float(self.steps)
        wd, eps = h["weight_decay"], h["eps"]
        beta1, beta2 = h["beta1"], h["beta2"]
        # Powers in Python, once per distinct beta (as torch computes them); the rest as float64 rows.
        bc1 = _per_value(beta1, lambda b: 1 - b**step)
        bc2_sqrt = _per_value(beta2, lambda b: (1 - b**step) ** 0.5)
        neg_step_size = _neg(_div(self.lr, bc1))
        decay = None
        if wd.shared != 0 and self.decoupled:
            decay = _sub_from_one(_mul(self.lr, wd))
        for p in params:
            grad = p.grad
            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {
                    "step": torch.tensor(0.0, dtype=torch.float32),
                    "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                    "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
                }
                if self.amsgrad:
                    state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["step"] += 1
            if wd.shared != 0:
                if self.decoupled:
                    _mul_(p, _shaped(decay, p))
                else:
                    grad = _add(grad, p, _shaped(wd.map(_same), p))
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.lerp_(grad, _shaped(beta1.map(lambda b: 1 - b), p))
            _mul_(exp_avg_sq, _shaped(beta2.map(_same), p))
            _addcmul_(exp_avg_sq, grad, grad, _shaped(beta2.map(lambda b: 1 - b), p))
            if self.amsgrad:
                torch.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                denom = state["max_exp_avg_sq"].sqrt()
            else:
                denom = exp_avg_sq.sqrt()
            denom = (denom / _shaped(bc2_sqrt, p)).add_(_shaped(eps.map(_same), p))
            _addcdiv_(p, exp_avg, denom, _shaped(neg_step_size, p))


    def _rmsprop(self, params: list[torch.Tensor]) -> None:
        h = self.h
        wd, alpha, eps, momentum = h["weight_decay"], h["alpha"], h["eps"], h["momentum"]
        neg_lr = self.lr.map(lambda v: -v)
        for p in params:
            grad = p.grad
            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {"step": torch.zeros((), dtype=torch.float32),
                                         "square_avg": torch.zeros_like(p, memory_format=torch.preserve_format)}
                if momentum.shared != 0:
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if self.centered:
                    state["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["step"] += 1
            if wd.shared != 0:
                grad = _add(grad, p, _shaped(wd.map(_same), p))
            square_avg = state["square_avg"]
            _mul_(square_avg, _shaped(alpha.map(_same), p))
            _addcmul_(square_avg, grad, grad, _shaped(alpha.map(lambda a: 1 - a), p))
            if self.centered:
                grad_avg = state["grad_avg"]
                grad_avg.lerp_(grad, _shaped(alpha.map(lambda a: 1 - a), p))
                avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
            else:
                avg = square_avg.sqrt()
            avg = avg.add_(_shaped(eps.map(_same), p))
            if momentum.shared != 0:
                buf = state["momentum_buffer"]
                _mul_(buf, _shaped(momentum.map(_same), p))
                buf.addcdiv_(grad, avg)
                _add_(p, buf, _shaped(neg_lr, p))
            else:
                _addcdiv_(p, grad, avg, _shaped(neg_lr, p))

    def _adagrad(self, params: list[torch.Tensor]) -> None:
        h = self.h
        step = float(self.steps)
        wd, eps, decay = h["weight_decay"], h["eps"], h["lr_decay"]
        neg_clr = _neg(_div(self.lr, decay.map(lambda d: 1 + (step - 1) * d)))
        for p in params:
            grad = p.grad
            state = self.state.get(p)
            if state is None:
                init = _shaped(h["initial_accumulator_value"].map(_same), p)
                state = self.state[p] = {"step": torch.tensor(0.0, dtype=torch.float32),
                                         "sum": torch.full_like(p, init, memory_format=torch.preserve_format)
                                         if not isinstance(init, torch.Tensor) else init.expand_as(p).clone()}
            state["step"] += 1
            if wd.shared != 0:
                grad = _add(grad, p, _shaped(wd.map(_same), p))
            state_sum = state["sum"]
            state_sum.addcmul_(grad, grad, value=1)
            std = state_sum.sqrt().add_(_shaped(eps.map(_same), p))
            _addcdiv_(p, grad, std, _shaped(neg_clr, p))


def _addcmul_(t: torch.Tensor, a: torch.Tensor, b: torch.Tensor, value: Scalar) -> None:
    """``t.addcmul_(a, b, value=value)``; for rows ``value`` multiplies ``a`` first, as the kernel does."""
    if isinstance(value, torch.Tensor):
        t.addcmul_(a * value, b)
    else:
        t.addcmul_(a, b, value=value)


def _addcdiv_(t: torch.Tensor, a: torch.Tensor, b: torch.Tensor, value: Scalar) -> None:
    """``t.addcdiv_(a, b, value=value)``; for rows ``value`` multiplies ``a`` first, as the kernel does."""
    if isinstance(value, torch.Tensor):
        t.addcdiv_(a * value, b)
    else:
        t.addcdiv_(a, b, value=value)


def _same(v: Any) -> Any:
    return v


Scalar = float | torch.Tensor


def _per_value(rows: _Rows, fn: Callable[[float], float]) -> Scalar:
    """``fn`` of each row's value, computed in Python once per distinct value (exactly as torch
    computes it from a Python float); a float where every row shares the value. Reads nothing
    from the device (no host sync on CUDA)."""
    if rows.shared is not None:
        return fn(rows.shared)
    per_value = torch.tensor([fn(v) for v in rows.distinct], dtype=torch.float64)
    return per_value.to(rows.rows.device, non_blocking=True)[rows.which]


def _lift(x: _Rows | Scalar) -> Scalar:
    return x.map(_same) if isinstance(x, _Rows) else x


def _div(a: _Rows | Scalar, b: _Rows | Scalar) -> Scalar:
    return _lift(a) / _lift(b)


def _mul(a: _Rows | Scalar, b: _Rows | Scalar) -> Scalar:
    return _lift(a) * _lift(b)


def _neg(a: Scalar) -> Scalar:
    return -a


def _sub_from_one(a: Scalar) -> Scalar:
    return 1 - a


def _mul_(t: torch.Tensor, s: Scalar) -> None:
    t.mul_(s)


def _add(a: torch.Tensor, b: torch.Tensor, alpha: Scalar) -> torch.Tensor:
    """``a.add(b, alpha=alpha)``; for rows ``torch.addcmul(a, b, alpha)``, the same fused multiply-add."""
    return torch.addcmul(a, b, alpha) if isinstance(alpha, torch.Tensor) else a.add(b, alpha=alpha)


def _add_(a: torch.Tensor, b: torch.Tensor, alpha: Scalar) -> None:
    if isinstance(alpha, torch.Tensor):
        a.addcmul_(b, alpha)
    else:
        a.add_(b, alpha=alpha)


def covered(names: Sequence[str]) -> list[str]:
    """Those of optimizer ``names`` whose replicas this step can give their own hyperparameters."""
    return [name for name in names if _class_name(name) is not None]
