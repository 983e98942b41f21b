"""The optimizer's own clock (optbench.engine.steptime): what a run records about its optimizer step,
and that the in-run reference step never touches training."""

from __future__ import annotations

import time

import pytest
import torch

from optbench.engine.eager import run
from optbench.engine.steptime import StepClock, StepTimes, gross_step_cost
from optbench.spec import RunSpec


def test_step_times_give_totals_share_and_the_median_per_step_ratio_net_of_the_empty_step():
    times = StepTimes(step=[2.0, 3.0, 100.0], zero_grad=[0.5, 0.5, 0.5], control=[1.0, 1.0, 1.0], empty=[0.5, 0.5, 0.5])
    m = times.metrics(train_seconds=210.0)
    assert m["optimizer_seconds"] == 106.5 and m["control_seconds"] == 3.0  # the reference steps
    assert m["optimizer_share"] == pytest.approx(106.5 / 210.0)
    assert m["step_cost"] == 2.5  # the median of (step - 0.5) / 1: one preempted step (100 s) does not move it
    assert StepTimes().metrics(0.0) == {"optimizer_seconds": 0, "control_seconds": 0, "optimizer_share": None, "step_cost": None}


def test_a_step_that_does_1_5x_the_work_costs_1_5x_net_of_the_fixed_overhead():
    """The fixed per-step overhead (the empty step: 1) does not grow with the optimizer's work (2 -> 3):
    the gross ratio reads 1.33x, the step cost 1.5x."""
    base = StepTimes(step=[3.0] * 5, control=[2.0] * 5, empty=[1.0] * 5)
    slower = StepTimes(step=[4.0] * 5, control=[2.0] * 5, empty=[1.0] * 5)
    assert gross_step_cost(slower.step, slower.control) / gross_step_cost(base.step, base.control) == pytest.approx(4 / 3)
    assert slower.metrics(1.0)["step_cost"] / base.metrics(1.0)["step_cost"] == pytest.approx(1.5)


def test_the_reference_and_empty_steps_never_touch_the_model():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in model.parameters()]
    clock = StepClock(list(model.parameters()), torch.device("cpu"))
    for _ in range(5):
        clock.control()
        clock.mark(), clock.mark()
    assert all(torch.equal(p, b) and p.grad is None for p, b in zip(model.parameters(), before))
    assert clock.end_epoch() >= 0 and len(clock.times.step) == len(clock.times.control) == len(clock.times.empty) == 5


def test_on_the_cpu_a_step_that_waits_costs_nothing():
    """CPU time: a step preempted by another process (here: asleep for 50 ms) does not count its wait."""
    clock = StepClock([torch.zeros(3)], torch.device("cpu"))
    clock.control()
    time.sleep(0.05)  # the "step"
    clock.mark(), clock.mark()
    clock.end_epoch()
    assert clock.times.step[0] < 0.025


@pytest.mark.parametrize("task", ["regression"])  # the CNN: tests/test_engine.py (one CIFAR-10 epoch for both)
def test_a_run_records_its_optimizer_step_apart_from_forward_and_backward(task):
    spec = RunSpec(task=task, dataset="synthetic", optimizer="adam", hparams={}, epochs=1, batch_size=256, seed=0, device="cpu")
    m = run(spec).metrics
    assert 0 < m["optimizer_seconds"] < m["train_seconds"]
    assert 0 < m["optimizer_share"] < 1 and m["optimizer_share"] == m["optimizer_seconds"] / m["train_seconds"]
    assert m["control_seconds"] > 0 and m["step_cost"] > 0
