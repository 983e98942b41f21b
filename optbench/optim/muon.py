"""Muon for a model's hidden weight matrices, AdamW for every other parameter: one optimizer.

Muon (Keller Jordan, 2024: https://kellerjordan.github.io/posts/muon/; code
https://github.com/KellerJordan/Muon, ``muon.py``, MIT licence) replaces a matrix's momentum update by
its nearest semi-orthogonal matrix (five Newton-Schulz iterations), scaled by
``sqrt(max(1, rows / cols))``. It is meant for the weight matrices of hidden layers only; the input
embedding, the output head and every scalar or vector parameter (biases, LayerNorm gains) stay on
AdamW, as in Keller Jordan's ``MuonWithAuxAdam`` and modded-nanogpt. The defaults are that class's:
Muon lr 0.02, momentum 0.95 (Nesterov), no weight decay; AdamW lr 3e-4, betas (0.9, 0.95), eps 1e-10,
no weight decay (``torch.optim.Muon``'s documentation pairs Muon at lr 0.02 with AdamW at 3e-4 too).

Which parameters are hidden matrices (``hidden_matrices``): a model may say what each parameter is
by setting ``PARAM_ROLE`` (``optbench.spec.vocabulary``) on it: ``"embedding"`` and ``"head"`` go to
AdamW, the task ``charlm`` marks its token and position embeddings and its output layer so. Once a
model marks any parameter, its unmarked parameters of two or more dimensions are hidden matrices.
A model that marks none gets Keller Jordan's rule by position: of its parameters with two or more
dimensions, the first (the input layer) and the last (the output layer) go to AdamW, the ones between
to Muon (the MLP's 64x64 layer; the CNN's second convolution and first fully connected layer).
Convolution filters are updated as matrices ``(out, in * kh * kw)``, as in Keller Jordan's code.

Differences from ``torch.optim.Muon`` (which takes 2-D parameters only): the same update
(momentum by ``lerp``, Nesterov, the same Newton-Schulz coefficients and ``original`` scaling), but the
iteration runs in bfloat16 on CUDA only and in float32 elsewhere: on this CPU bfloat16 matrix
products are 5-15x slower than float32 ones (64x64 to 512x128), which would make a CPU step mostly
orthogonalisation. ``foreach`` chooses the AdamW part's implementation; the Muon part is a loop over
matrices either way (as torch's).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from optbench.spec.vocabulary import NOT_HIDDEN_ROLES, PARAM_ROLE

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS_EPS = 1e-7


def role(param: torch.Tensor) -> str | None:
    """What the model says ``param`` is (``PARAM_ROLE``), or None."""
    return getattr(param, PARAM_ROLE, None)


def marked_hidden(params: list[torch.Tensor]) -> list[bool] | None:
    """Per parameter, whether it is a hidden matrix by the roles the model marks (its unmarked
    parameters of two or more dimensions are); None when the model marks none."""
    if not any(role(p) is not None for p in params):
        return None
    return [p.ndim >= 2 and role(p) not in NOT_HIDDEN_ROLES for p in params]


def hidden_matrices(params: Iterable[torch.Tensor]) -> list[bool]:
    """Per parameter, in order: whether Muon updates it (see the module's docstring)."""
    params = list(params)
    marked = marked_hidden(params)
    if marked is not None:
        return marked
    matrices = [i for i, p in enumerate(params) if p.ndim >= 2]
    between = set(matrices[1:-1])
    return [i in between for i in range(len(params))]


def orthogonalise(update: torch.Tensor, steps: int) -> torch.Tensor:
    """Keller Jordan's quintic Newton-Schulz iteration: about ``U V^T`` of ``update = U S V^T``
    (singular values end near 1, within about 0.7-1.2), for a 2-D ``update``."""
    a, b, c = NS_COEFFICIENTS
    x = update.bfloat16() if update.is_cuda else update.float()
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    x = x / (x.norm() + NS_EPS)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x.T if tall else x).to(update.dtype)


class MuonAdamW(torch.optim.Optimizer):
    """Muon on the hidden weight matrices, AdamW on the rest (embeddings, output layer, biases,
    norms): two parameter groups, ``use_muon`` True and False, in that order (a group without
    parameters is left out). A learning-rate schedule scales both groups' ``lr``."""

    def __init__(self, params: Iterable[Any], lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True,
                 weight_decay: float = 0.0, ns_steps: int = 5, adamw_lr: float = 3e-4,
                 adamw_betas: tuple[float, float] = (0.9, 0.95), adamw_eps: float = 1e-10,
                 adamw_weight_decay: float = 0.0, foreach: bool | None = None) -> None:
        for name, value in (("lr", lr), ("adamw_lr", adamw_lr)):
            if not value > 0:
                raise ValueError(f"Invalid learning rate {name}: {value}")
        if not 0 <= momentum < 1:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0 <= weight_decay or not 0 <= adamw_weight_decay:
            raise ValueError("Invalid weight_decay value: weight decay must be >= 0")
        if not (isinstance(ns_steps, int) and 1 <= ns_steps <= 100):
            raise ValueError(f"Invalid ns_steps value: {ns_steps} (a whole number of Newton-Schulz steps, 1 to 100)")
        params = list(params)
        if any(isinstance(p, dict) for p in params):
            raise ValueError("MuonAdamW takes the model's parameters and splits them itself, not parameter groups")
        hidden = hidden_matrices(params)
        groups = [
            {"params": [p for p, h in zip(params, hidden) if h], "use_muon": True, "lr": lr, "momentum": momentum,
             "nesterov": nesterov, "weight_decay": weight_decay, "ns_steps": ns_steps},
            {"params": [p for p, h in zip(params, hidden) if not h], "use_muon": False, "lr": adamw_lr,
             "betas": adamw_betas, "eps": adamw_eps, "weight_decay": adamw_weight_decay},
        ]
        super().__init__([g for g in groups if g["params"]], {})
        self._foreach = foreach
        self._bind_adamw()

    def _bind_adamw(self) -> None:
        """A torch AdamW over this optimizer's AdamW group (the same dict: a schedule's ``lr`` reaches
        it) and sharing its state, so ``state_dict`` holds both parts."""
        groups = [g for g in self.param_groups if not g["use_muon"]]
        self._adamw = torch.optim.AdamW(groups, foreach=self._foreach) if groups else None
        if self._adamw is not None:
            self._adamw.state = self.state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self._bind_adamw()

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["use_muon"]:
                self._muon_step(group)
        if self._adamw is not None:
            self._adamw.step()
        return loss

    def _muon_step(self, group: dict[str, Any]) -> None:
        lr, beta, decay = group["lr"], group["momentum"], group["weight_decay"]
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = p.grad
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(grad)
            buf = state["momentum_buffer"]
            buf.lerp_(grad, 1 - beta)
            update = grad.lerp(buf, beta) if group["nesterov"] else buf
            matrix = update.reshape(len(update), -1)
            rows, cols = matrix.shape
            update = orthogonalise(matrix, group["ns_steps"]).view_as(p)
            if decay:
                p.mul_(1 - lr * decay)
            p.add_(update, alpha=-lr * max(1.0, rows / cols) ** 0.5)
