"""The optimizer's own clock (optbench.engine.steptime): what a run records about its optimizer step,
and that the in-run reference step never touches training."""

from __future__ import annotations

import pytest
import torch

from optbench.engine.eager import run
from optbench.engine.steptime import StepClock, StepTimes
from optbench.spec import RunSpec


def test_step_times_give_totals_share_and_the_median_per_step_ratio():
    times = StepTimes(step=[2.0, 3.0, 100.0], zero_grad=[0.5, 0.5, 0.5], control=[1.0, 1.0, 1.0])
    m = times.metrics(train_seconds=210.0)
    assert m["optimizer_seconds"] == 106.5 and m["control_seconds"] == 3.0
    assert m["optimizer_share"] == pytest.approx(106.5 / 210.0)
    assert m["step_cost"] == 3.0  # the median ratio: one preempted step (100 s) does not move it
    assert StepTimes().metrics(0.0) == {"optimizer_seconds": 0, "control_seconds": 0, "optimizer_share": None, "step_cost": None}


def test_the_reference_step_never_touches_the_model():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in model.parameters()]
    clock = StepClock(list(model.parameters()), torch.device("cpu"))
    for _ in range(5):
        clock.mark(), clock.mark(), clock.mark()
        clock.control()
    assert all(torch.equal(p, b) and p.grad is None for p, b in zip(model.parameters(), before))
    assert clock.end_epoch() >= 0 and len(clock.times.step) == len(clock.times.control) == 5


@pytest.mark.parametrize("task", ["regression"])  # the CNN: tests/test_engine.py (one CIFAR-10 epoch for both)
def test_a_run_records_its_optimizer_step_apart_from_forward_and_backward(task):
    spec = RunSpec(task=task, dataset="synthetic", optimizer="adam", hparams={}, epochs=1, batch_size=256, seed=0, device="cpu")
    m = run(spec).metrics
    assert 0 < m["optimizer_seconds"] < m["train_seconds"]
    assert 0 < m["optimizer_share"] < 1 and m["optimizer_share"] == m["optimizer_seconds"] / m["train_seconds"]
    assert m["control_seconds"] > 0 and m["step_cost"] > 0
