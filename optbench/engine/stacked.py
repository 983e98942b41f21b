"""K replicas of one model as one: the batched forward pass and loss the vectorized engine trains
and evaluates with (``optbench.engine.vectorized``).

Parameters are stacked over replicas (``[K, ...]``, as ``torch.func.stack_module_state`` makes
them), inputs are ``[K, B, ...]`` (replica k's own batch in row k), outputs ``[K, B, ...]`` and
losses ``[K]``, each replica's batch mean. Replica k's numbers are its model's on its batch; only
the reduction order of batched matrix products differs from K separate models (about 1e-7
relative per epoch; it compounds over training, see benchmarks/bench_equivalence.py).

Two forward passes, chosen once per model:

- a chain of ``nn.Linear`` layers and parameter-free elementwise activations (the regression and
  MLP tasks' models) runs as one ``baddbmm`` per layer: no per-step ``vmap`` dispatch, which on
  these tiny models costs more than the arithmetic;
- anything else runs as ``functional_call`` under ``torch.func.vmap``, which is right for any
  buffer-free module.

The loss is batched the same way: the built-in MSE and cross-entropy losses of
``RegressionTask``/``ClassificationTask`` directly with ``reduction="none"``, any other
``Task.loss`` under ``vmap``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, vmap

from optbench.tasks import Task
from optbench.tasks.base import ClassificationTask, RegressionTask

Params = dict[str, torch.Tensor]
Forward = Callable[[Params, torch.Tensor], torch.Tensor]
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# Parameter-free modules that act on each element (or each row's last dimension) alone, so they
# apply unchanged to [K, B, ...] activations.
ELEMENTWISE = (nn.Identity, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus)


def stacked_forward(base: nn.Module) -> Forward:
    """``forward(params, x)``: every replica's model (``base``'s architecture, ``params[name][k]``
    its parameters) on its own rows ``x[k]``; ``x`` is ``[K, B, in]``, the result ``[K, B, out]``."""
    chain = _linear_chain(base)
    if chain is not None:
        return chain

    def replica(params: Params, x: torch.Tensor) -> torch.Tensor:
        return functional_call(base, params, (x,))

    return vmap(replica)


def _linear_chain(base: nn.Module) -> Forward | None:
    """The ``baddbmm`` forward of an ``nn.Linear`` or an ``nn.Sequential`` of Linear layers and
    ``ELEMENTWISE`` activations; None for any other module."""
    layers = list(base.named_children()) if isinstance(base, nn.Sequential) else [("", base)]
    steps: list[tuple[str, str | None] | nn.Module] = []  # (weight name, bias name) or an activation
    for name, layer in layers:
        prefix = f"{name}." if name else ""
        if type(layer) is nn.Linear:
            steps.append((f"{prefix}weight", f"{prefix}bias" if layer.bias is not None else None))
        elif type(layer) in ELEMENTWISE:
            steps.append(layer)
        else:
            return None

    def forward(params: Params, x: torch.Tensor) -> torch.Tensor:
        for step in steps:
            if isinstance(step, tuple):
                weight = params[step[0]].transpose(1, 2)
                x = torch.bmm(x, weight) if step[1] is None else torch.baddbmm(params[step[1]].unsqueeze(1), x, weight)
            else:
                x = step(x)
        return x

    return forward


def stacked_loss(task: Task) -> Loss:
    """``loss(output, target) -> [K]``: each replica's ``task.loss`` over its batch."""
    loss = type(task).loss
    if loss is RegressionTask.loss:
        return lambda out, y: nn.functional.mse_loss(out.squeeze(-1), y, reduction="none").flatten(1).mean(dim=1)
    if loss is ClassificationTask.loss:
        return lambda out, y: nn.functional.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none").view(
            y.shape).mean(dim=1)
    return vmap(task.loss)
