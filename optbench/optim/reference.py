"""Reference optimizers: the classics written from scratch, for reading rather than speed.

Each class is a plain ``torch.optim.Optimizer``: a loop over parameters applying the update rule
its docstring states. Notation: ``p`` a parameter, ``g`` its gradient, ``t`` the step count
(1 on the first step), ``lr`` the learning rate; all arithmetic is elementwise. They match
their ``torch.optim`` counterparts (the for-loop implementation) to float rounding: that is
tested, so reading one of these is reading what torch computes.

Registered as ``ref-sgd``, ``ref-momentum``, ``ref-rmsprop``, ``ref-adam`` and ``ref-adamw``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

Params = Iterable[torch.Tensor] | Iterable[dict[str, Any]]
Closure = Callable[[], torch.Tensor] | None


class _Reference(torch.optim.Optimizer):
    """The shared loop: subclasses implement ``update`` for one parameter."""

    def __init__(self, params: Params, **defaults: Any) -> None:
        if defaults["lr"] <= 0:
            raise ValueError(f"learning rate must be > 0, got {defaults['lr']}")
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Closure = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.update(p, p.grad, self.state[p], group)
        return loss

    def update(self, p: torch.Tensor, g: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError


class SGD(_Reference):
    """Stochastic gradient descent.

    ``g = g + weight_decay * p`` (L2 penalty, when weight_decay > 0), then ``p = p - lr * g``.
    """

    def __init__(self, params: Params, lr: float = 0.01, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, weight_decay=weight_decay)

    def update(self, p, g, state, group):
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        p.sub_(group["lr"] * g)


class MomentumSGD(_Reference):
    """SGD with heavy-ball momentum (the PyTorch form, without dampening).

    ``g = g + weight_decay * p``; ``b = g`` on the first step, then ``b = momentum * b + g``;
    ``p = p - lr * b``. The buffer ``b`` is a running sum of past gradients, so the effective
    step on a constant gradient grows to ``lr / (1 - momentum)``.
    """

    def __init__(self, params: Params, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay)

    def update(self, p, g, state, group):
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        if "buffer" not in state:
            state["buffer"] = g.clone()
        else:
            state["buffer"].mul_(group["momentum"]).add_(g)
        p.sub_(group["lr"] * state["buffer"])


class RMSprop(_Reference):
    """RMSprop: divide the gradient by a running root-mean-square of recent gradients.

    ``g = g + weight_decay * p``; ``v = alpha * v + (1 - alpha) * g^2`` (``v`` starts at 0);
    ``p = p - lr * g / (sqrt(v) + eps)``.
    """

    def __init__(self, params: Params, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay)

    def update(self, p, g, state, group):
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        v = state.setdefault("square_avg", torch.zeros_like(p))
        v.mul_(group["alpha"]).addcmul_(g, g, value=1 - group["alpha"])
        p.addcdiv_(g, v.sqrt() + group["eps"], value=-group["lr"])


class Adam(_Reference):
    """Adam (Kingma & Ba 2015) with bias correction; weight decay is an L2 penalty on the gradient.

    ``g = g + weight_decay * p``;
    ``m = beta1 * m + (1 - beta1) * g`` and ``v = beta2 * v + (1 - beta2) * g^2`` (both start at 0);
    bias correction, because both averages start at 0: ``m_hat = m / (1 - beta1^t)``,
    ``v_hat = v / (1 - beta2^t)``; ``p = p - lr * m_hat / (sqrt(v_hat) + eps)``.
    """

    decoupled_weight_decay = False

    def __init__(self, params: Params, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)

    def update(self, p, g, state, group):
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if wd and self.decoupled_weight_decay:
            p.mul_(1 - lr * wd)
        elif wd:
            g = g + wd * p
        if not state:
            state.update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
        state["step"] += 1
        t, m, v = state["step"], state["m"], state["v"]
        m.mul_(beta1).add_(g, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        p.sub_(lr * m_hat / (v_hat.sqrt() + eps))


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay.

    The decay shrinks the parameter directly, ``p = p * (1 - lr * weight_decay)``, before the
    Adam step on the raw gradient; unlike Adam's L2 penalty it is not rescaled by ``sqrt(v_hat)``.
    """

    decoupled_weight_decay = True

    def __init__(self, params: Params, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
