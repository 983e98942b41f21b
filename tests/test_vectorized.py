"""The vectorized engine trains what the eager engine trains, run by run (its optimizer step
bit-identical, whole runs to the float rounding stated per task below), and refuses what it cannot
stack."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from optbench.engine.eager import run
from optbench.engine.vectorized import VectorizedEngine, train_group
from optbench.engine.base import RunEvents
from optbench.engine.memory import optimizer_state_bytes
from optbench.engine.rowwise import RowwiseOptimizer, covered, unsupported
from optbench.errors import UserError
from optbench.optim.construct import build_optimizer
from optbench.optim.registry import REFERENCE, REGISTRY
from optbench.spec import RunSpec
from optbench.optim.registry import spec_label

ELIGIBLE = sorted(name for name, opt in REGISTRY.items() if opt.elementwise) + sorted(REFERENCE)  # not muon


def defaults(name: str) -> dict:
    return dict(REGISTRY.get(name, REFERENCE.get(name)).defaults)


def spec(**kw) -> RunSpec:
    base = dict(task="regression", dataset="synthetic", optimizer="adam", hparams={"lr": 1e-2}, epochs=2,
                batch_size=256, seed=0, device="cpu", engine="vectorized")
    return RunSpec(**{**base, **kw})


def eager_twin(s: RunSpec) -> RunSpec:
    return dataclasses.replace(s, engine="eager")


# How far a vectorized run may be from its eager twin, relative, on any curve point's train and
# test loss and the final test metric. Measured by `python benchmarks/bench_equivalence.py` (every
# built-in elementwise optimizer at the task's default budget, seeds 0-4, 1 thread; docs/fair-comparisons.md, "Engines"):
# - regression: the parameters stay bit-identical (final test RMSE equal); only each epoch's mean
#   train loss is summed in another order: at most 2.6e-7 over the 50 default epochs;
# - mlp: the batched matmuls round differently and the gap grows with training: at the default 20
#   epochs up to 1.4e-2 on the final test RMSE and 4.3e-2 on a curve point (adadelta).
# Each bound is its task's measured worst, rounded up; the tests train a small budget, within it.
RUN_RTOL = {"regression": 1e-6, "mlp": 1e-1}
# The first epoch, before rounding differences compound: at most 2.5e-6 (mlp, nadam; regression
# 1.6e-7). The sharp check: after one epoch of adam at batch 512, a learning rate 0.1% higher moves
# the test loss by 2.8e-5 (regression) and 8.9e-4 (mlp); the test below checks 1% is caught.
EPOCH1_RTOL = 1e-5


def close(a, b, rel) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def assert_same_run(s: RunSpec, v, e) -> None:
    """Vectorized result ``v`` of ``s`` against its eager twin's ``e``: the same status and epochs,
    epoch 1 to ``EPOCH1_RTOL``, every other epoch and the final test metric to the task's ``RUN_RTOL``."""
    rtol = RUN_RTOL[s.task]
    assert v.spec == s and v.status == e.status
    assert len(v.curve) == len(e.curve)
    for pv, pe in zip(v.curve, e.curve):
        rel = EPOCH1_RTOL if pv.epoch == 1 else rtol
        assert close(pv.train_loss, pe.train_loss, rel), (spec_label(s), pv, pe)
        assert close(pv.test_loss, pe.test_loss, rel), (spec_label(s), pv, pe)
    metric = f"test_{e.metric_name}"
    assert close(v.metrics.get(metric), e.metrics.get(metric), rtol), (spec_label(s), metric)


def assert_same_runs(group: list[RunSpec]) -> None:
    vec = train_group(group, "data")
    for s, v in zip(group, vec):
        assert_same_run(s, v, run(eager_twin(s)))
        assert v.metrics["group_size"] == len(group)


@pytest.mark.parametrize("name", ELIGIBLE)
def test_every_eligible_optimizer_matches_eager_on_regression_over_seeds_and_learning_rates(name):
    lr = defaults(name)["lr"]
    group = [spec(optimizer=name, hparams={**defaults(name), "lr": value}, seed=seed) for value in (lr, lr * 3) for seed in (0, 1)]
    assert_same_runs(group)


# adadelta and nadam drift furthest from eager on the mlp (benchmarks/bench_equivalence.py).
@pytest.mark.parametrize("name", ["sgd", "nesterov", "adam", "amsgrad", "adamw", "rmsprop", "adadelta", "nadam",
                                  "ref-adam"])
def test_mlp_matches_eager_over_seeds_and_learning_rates(name):
    lr = defaults(name)["lr"]
    group = [spec(task="mlp", optimizer=name, hparams={**defaults(name), "lr": value}, seed=seed, batch_size=512, epochs=2)
             for value in (lr, lr / 2) for seed in (3, 7)]
    assert_same_runs(group)


@pytest.mark.parametrize("name", ELIGIBLE)
def test_optimizer_step_on_stacked_parameters_is_bit_identical_to_separate_steps(name):
    hparams = defaults(name)
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(4, 3, 5, generator=gen) for _ in range(2)]
    grads = [[torch.randn(4, 3, 5, generator=gen) for _ in range(2)] for _ in range(3)]
    stacked = [p.clone().requires_grad_(True) for p in params]
    separate = [[p[i].clone().requires_grad_(True) for p in params] for i in range(4)]
    opt = build_optimizer(name, stacked, hparams)
    opts = [build_optimizer(name, ps, hparams) for ps in separate]
    for step in grads:
        for p, g in zip(stacked, step):
            p.grad = g.clone()
        opt.step()
        for i, (ps, o) in enumerate(zip(separate, opts)):
            for p, g in zip(ps, step):
                p.grad = g[i].clone()
            o.step()
    for j, p in enumerate(stacked):
        assert torch.equal(p.detach(), torch.stack([separate[i][j].detach() for i in range(4)]))


@pytest.mark.parametrize("path", ["one optimizer per value", "rowwise"])
def test_the_comparison_fails_for_a_replica_trained_at_another_learning_rate(monkeypatch, path):
    """The tolerances are tight enough to matter: one replica whose optimizer runs at 1.01 times its
    learning rate (one value of three) is caught, on each task, in both ways of stepping a grid."""
    from optbench.engine import vectorized

    def off(hparams):
        return {**hparams, "lr": hparams["lr"] * 1.01} if hparams["lr"] == 3e-3 else hparams

    def off_by_one_percent(name, params, hparams, impl="auto"):
        return build_optimizer(name, params, off(hparams), impl)

    class RowwiseOffByOnePercent(RowwiseOptimizer):
        def __init__(self, name, params, rows, impl="forloop"):
            super().__init__(name, params, [off(h) for h in rows], impl)

    if path == "rowwise":
        monkeypatch.setattr(vectorized, "RowwiseOptimizer", RowwiseOffByOnePercent)
    else:
        monkeypatch.setattr(vectorized, "unsupported", lambda *args: "one optimizer per value")
        monkeypatch.setattr(vectorized, "build_optimizer", off_by_one_percent)
    for task in ("regression", "mlp"):
        group = [spec(task=task, hparams={**defaults("adam"), "lr": lr}, seed=seed, epochs=1, batch_size=512)
                 for lr, seed in ((1e-3, 0), (1e-3, 1), (3e-3, 0))]
        vec = train_group(group, "data")
        for s, v in zip(group[:2], vec[:2]):
            assert_same_run(s, v, run(eager_twin(s)))
        with pytest.raises(AssertionError):
            assert_same_run(group[2], vec[2], run(eager_twin(group[2])))


def test_a_diverging_replica_is_frozen_and_does_not_disturb_the_others():
    calm = [spec(optimizer="sgd", hparams={"lr": 0.01}, seed=s, epochs=3) for s in (0, 1)]
    wild = spec(optimizer="sgd", hparams={"lr": 1e6}, seed=0, epochs=3)
    results = train_group([calm[0], wild, calm[1]], "data")
    assert [r.status for r in results] == ["ok", "diverged", "ok"]
    assert results[1].metrics["epochs_completed"] == 0 and len(results[1].curve) == 1
    alone = train_group(calm, "data")
    for together, by_itself in zip([results[0], results[2]], alone):
        assert [p.train_loss for p in together.curve] == pytest.approx([p.train_loss for p in by_itself.curve],
                                                                        rel=1e-6)


def test_early_stop_freezes_a_replica_at_its_own_epoch_as_eager_does():
    from optbench.spec.training import TrainingOptions

    options = TrainingOptions(early_stop_delta=0.5)
    group = [spec(optimizer="sgd", hparams={"lr": lr}, epochs=6, training=options) for lr in (0.3, 1e-4)]
    vec = train_group(group, "data")
    for s, v in zip(group, vec):
        e = run(eager_twin(s))
        assert (v.status, v.metrics.get("stopped_epoch")) == (e.status, e.metrics.get("stopped_epoch"))


@pytest.mark.parametrize(("change", "why"), [
    (dict(optimizer="torch.optim:LBFGS"), "not declared elementwise"),
    (dict(task="cifar10"), "not vectorized"),
    (dict(impl="fused"), "fused"),
])
def test_ineligible_specs_are_refused_with_one_line_saying_why(change, why):
    try:
        bad = spec(**change)
    except Exception:  # noqa: BLE001 - an optional plugin package absent here
        pytest.skip("spec cannot be built here")
    with pytest.raises(UserError, match=why) as info:
        list(VectorizedEngine().run_group([bad], "data", RunEvents()))
    assert "\n" not in str(info.value)


def test_records_name_their_engine_and_are_their_own_cell():
    s = spec()
    assert s.cell_hash() != eager_twin(s).cell_hash()
    assert "engine" not in eager_twin(s).to_dict()  # eager hashes are what they were
    assert RunSpec.from_dict(s.to_dict()) == s
    result = train_group([s], "data")[0]
    record = result.to_record()
    assert record["spec"]["engine"] == "vectorized"
    assert record["metrics"]["train_seconds"] == pytest.approx(record["metrics"]["group_train_seconds"])


def test_campaign_with_engine_vectorized_trains_each_group_in_one_unit(tmp_path):
    from optbench.execution.driver import Campaign, run_campaign

    specs = [dataclasses.replace(spec(hparams={**defaults("adam"), "lr": lr}, seed=s), engine="eager")
             for lr in (1e-3, 1e-2) for s in (0, 1, 2)]
    outcome = run_campaign(Campaign(specs, tmp_path, Path("data"), engine="vectorized"))
    assert len(outcome.results) == 6
    assert {r.spec.engine for r in outcome.results} == {"vectorized"}
    assert {r.metrics["group_size"] for r in outcome.results} == {6}


def test_engine_auto_vectorizes_the_sweep_and_keeps_the_final_stage_eager(tmp_path):
    from optbench.execution.driver import Campaign, run_campaign
    from optbench.spec.training import TrainingOptions

    options = TrainingOptions(split="validation")
    specs = [dataclasses.replace(spec(hparams={**defaults("adam"), "lr": lr}, training=options), engine="eager")
             for lr in (1e-3, 1e-2)]
    outcome = run_campaign(Campaign(specs, tmp_path, Path("data"), select=True, engine="auto"))
    engines = {(r.stage, r.spec.engine) for r in outcome.results}
    assert ("sweep", "vectorized") in engines and ("final", "eager") in engines
    assert outcome.choices[0].best is not None


def test_engine_vectorized_refuses_before_anything_is_written(tmp_path):
    from optbench.execution.driver import Campaign, run_campaign

    bad = dataclasses.replace(spec(task="mlp", training=__import__("optbench.spec.training", fromlist=["x"])
                                   .TrainingOptions(clip_norm=1.0)), engine="eager")
    with pytest.raises(UserError, match="norm clipping"):
        run_campaign(Campaign([bad], tmp_path / "out", Path("data"), engine="vectorized"))
    assert not (tmp_path / "out").exists()


def test_replicas_that_stop_leave_the_stack_and_the_rest_still_match_eager():
    """Adam at three learning rates, two seeds each, early stopping: replicas stop at epochs 2, 3
    and 6 (one of a value's two seeds, then the other), so the stack shrinks with Adam's state
    sliced; every record still equals its eager run, and the group's seconds are shared out."""
    from optbench.spec.training import TrainingOptions

    options = TrainingOptions(early_stop_delta=0.05)
    group = [spec(hparams={"lr": lr}, seed=s, epochs=8, training=options) for lr in (0.1, 0.01, 1e-3) for s in (0, 1)]
    vec = train_group(group, "data")
    stopped = {v.metrics.get("stopped_epoch") for v in vec}
    assert {2, 3, 6} <= stopped and None in stopped
    for s, v in zip(group, vec):
        e = run(eager_twin(s))
        assert (v.status, v.metrics.get("stopped_epoch")) == (e.status, e.metrics.get("stopped_epoch"))
        assert len(v.curve) == len(e.curve)
        assert_same_run(s, v, e)
    assert sum(v.metrics["train_seconds"] for v in vec) == pytest.approx(vec[0].metrics["group_train_seconds"])


def test_the_stacked_forward_and_loss_are_each_replicas_own():
    from torch import nn

    from optbench.engine.stacked import stacked_forward, stacked_loss
    from optbench.tasks import get_task

    def models(build):
        out = []
        for seed in range(3):
            torch.manual_seed(seed)
            out.append(build())
        return out

    chain = lambda: nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 4))  # noqa: E731 - batched matmuls
    other = lambda: nn.Sequential(nn.Linear(5, 8), nn.LayerNorm(8), nn.Linear(8, 4))  # noqa: E731 - under vmap
    x = torch.randn(3, 7, 5)
    targets = {get_task("regression"): torch.randn(3, 7), get_task("cifar10"): torch.randint(0, 4, (3, 7))}
    for build in (chain, other):
        replicas = models(build)
        params = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in replicas]) for n, _ in
                  replicas[0].named_parameters()}
        out = stacked_forward(replicas[0])(params, x)
        for k, m in enumerate(replicas):
            assert torch.allclose(out[k], m(x[k]), rtol=1e-6, atol=1e-6)
        for task, y in targets.items():
            head = out[..., :1] if task.kind == "regression" else out
            losses = stacked_loss(task)(head, y)
            assert losses.shape == (3,)
            for k in range(3):
                assert torch.allclose(losses[k], task.loss(head[k], y[k]), rtol=1e-6)


def grid_rows(name: str, k: int) -> list[dict]:
    """``k`` replicas of ``name`` that differ in every hyperparameter a row may set."""
    d, rows = defaults(name), []
    for i in range(k):
        h = {**d, "lr": d["lr"] * (0.3 + 0.37 * i), "weight_decay": 1e-3 * (i % 3)}
        if "betas" in d:
            h.update(betas=(0.9 - 0.01 * i, 0.999 - 1e-4 * (i % 2)), eps=1e-8 * (1 + i))
        if name in ("momentum", "nesterov", "sgd"):
            h.update(momentum=0.9 - 0.05 * i if "momentum" in d else 0.0)
            h.update({} if name == "nesterov" else {"dampening": 0.1 * (i % 2)})
        if name == "rmsprop":
            h.update(alpha=0.99 - 0.01 * i, eps=1e-8 * (1 + i), momentum=0.5 + 0.1 * i, centered=True)
        if name == "adagrad":
            h.update(lr_decay=1e-3 * i, initial_accumulator_value=0.1 * i, eps=1e-10 * (1 + i))
        rows.append(h)
    return rows


CUDA = ["cuda"] if torch.cuda.is_available() else []


@pytest.mark.parametrize("varied", ["every hyperparameter", "lr"])
@pytest.mark.parametrize("impl", ["forloop", "foreach"])
@pytest.mark.parametrize(("name", "device"), [(n, "cpu") for n in covered(ELIGIBLE)]
                         + [(n, d) for n in covered(ELIGIBLE) for d in CUDA if unsupported(n, [{}], "forloop", d) is None])
def test_a_step_with_a_hyperparameter_grid_is_bit_identical_to_torch_optim_per_replica(name, impl, varied, device):
    """One step over a stack whose rows have their own learning rate (and betas, eps, momentum,
    dampening, weight decay, ...) equals torch.optim stepping each replica alone, bit for bit, over
    four steps of a decaying learning-rate schedule, with one replica leaving the stack after the
    second (its rows cut from parameters, state and hyperparameters); each replica's share of the
    state is its own optimizer's. On a GPU too, where one is present, for the optimizers the row-wise
    step covers there (``rowwise.CUDA_EXACT``; the others step one optimizer per value on a GPU)."""
    from optbench.engine.vectorized import ValueGroup

    k, shapes = 5, [(5, 37, 3), (5, 64), (5, 1, 1)]  # vectorized kernels and their scalar tails
    gen = torch.Generator().manual_seed(0)
    rows = grid_rows(name, k) if varied != "lr" else [{**defaults(name), "lr": defaults(name)["lr"] * (1 + i)}
                                                       for i in range(k)]
    params = [torch.randn(s, generator=gen).to(device) for s in shapes]
    stacked = [p.clone().requires_grad_(True) for p in params]
    separate = [[p[i].clone().requires_grad_(True) for p in params] for i in range(k)]
    grid = RowwiseOptimizer(name, stacked, rows, impl)
    alone = [build_optimizer(name, ps, h, impl) for ps, h in zip(separate, rows)]
    stack = ValueGroup(list(range(k)), dict(enumerate(stacked)), grid, [])
    for step, factor in enumerate((1.0, 0.5, 0.31, 0.07)):
        if step == 2:
            stack.shrink([0, 2, 3, 4])
            stacked, k = list(stack.leaf.values()), 4
            del separate[1], alone[1], rows[1]
        grid.set_lr_factor(factor)
        grads = [torch.randn((k, *s[1:]), generator=gen).to(device) for s in shapes]
        for p, g in zip(stacked, grads):
            p.grad = g.clone()
        grid.step()
        for i, (ps, opt) in enumerate(zip(separate, alone)):
            for group in opt.param_groups:
                group["lr"] = rows[i]["lr"] * factor
            for p, g in zip(ps, grads):
                p.grad = g[i].clone()
            opt.step()
        assert grid.lrs() == [h["lr"] * factor for h in rows]
    for j, p in enumerate(stacked):
        assert torch.equal(p.detach(), torch.stack([separate[i][j].detach() for i in range(k)])), (name, j)
    assert optimizer_state_bytes(grid, k) == optimizer_state_bytes(alone[0])


def test_a_grid_group_steps_as_one_stack_and_equals_one_optimizer_per_value(monkeypatch):
    """A learning-rate grid (three values, two seeds) with early stopping, so the stack loses rows:
    trained as one stack with per-row hyperparameters, every record equals the one-optimizer-per-value
    path's (regression: bit-identical parameters, so equal curves), memory figures included."""
    from optbench.engine import vectorized
    from optbench.spec.training import TrainingOptions

    options = TrainingOptions(early_stop_delta=0.05, schedule="cosine")
    group = [spec(hparams={**defaults("adam"), "lr": lr}, seed=s, epochs=6, training=options)
             for lr in (0.1, 0.01, 1e-3) for s in (0, 1)]
    built = []

    class Counted(RowwiseOptimizer):
        def __init__(self, *args):
            built.append(1)
            super().__init__(*args)

    monkeypatch.setattr(vectorized, "RowwiseOptimizer", Counted)
    one_stack = train_group(group, "data")
    assert built == [1]
    monkeypatch.setattr(vectorized, "unsupported", lambda *args: "one optimizer per value")
    per_value = train_group(group, "data")
    assert len({r.metrics.get("stopped_epoch") for r in one_stack}) > 1
    for a, b in zip(one_stack, per_value):
        assert a.status == b.status
        untimed = [[dataclasses.replace(p, time_s=0.0) for p in r.curve] for r in (a, b)]
        assert untimed[0] == untimed[1]
        for key in ("optimizer_state_bytes", "parameter_bytes", "test_rmse", "stopped_epoch", "epochs_completed"):
            assert a.metrics.get(key) == b.metrics.get(key), key


def test_small_work_runs_on_one_thread_unless_the_user_chose_and_records_say_so(monkeypatch):
    """Dense models with little work per step train on one torch thread in both engines (a second
    stalls on a busy CPU); a CNN, work past SMALL_WORK, CUDA or the user's own setting keep theirs."""
    from torch import nn

    from optbench.engine import threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_INITIAL", torch.get_num_threads())
    mlp = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1))
    assert threads.work_of(mlp, 64, replicas=36) == 36 * 64 * 64
    assert threads.work_of(nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten()), 64) is None
    assert threads.choose(threads.SMALL_WORK, "cpu") == (1, "small work: 1 thread")
    assert threads.choose(threads.SMALL_WORK + 1, "cpu")[1] == "torch default"
    assert threads.choose(None, "cpu")[1] == "torch default"
    assert threads.choose(10, "cuda")[1] == "torch default"
    before = torch.get_num_threads()
    for result in (train_group([spec(epochs=1)], "data")[0], run(eager_twin(spec(epochs=1)))):
        env = result.environment
        assert (env["torch_threads"], env["thread_policy"]) == (1, "small work: 1 thread")
        assert torch.get_num_threads() == before
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.choose(10, "cpu") == (before, "OMP_NUM_THREADS=3")
    env = train_group([spec(epochs=1)], "data")[0].environment
    assert (env["torch_threads"], env["thread_policy"]) == (before, "OMP_NUM_THREADS=3")


@pytest.mark.parametrize("task", ["regression", "mlp"])
def test_a_group_trained_in_chunks_equals_the_group_trained_at_once(task):
    """A replica's record does not depend on which replicas share its stack: a grid of 3 learning
    rates x 2 seeds trained as one group of 6, as groups of 3 and 2 and one by one. Regression: the
    same parameters, so test losses and metrics bit for bit (an epoch's mean training loss may be
    summed in another order, within 1e-6). MLP: its batched matmuls round differently with the
    group's size, within the tolerances that hold against eager (epoch 1 to ``EPOCH1_RTOL``). This is
    what lets resume re-train only a group's unfinished replicas, and what any split of a large
    group into chunks relies on."""
    group = [spec(task=task, hparams={**defaults("adam"), "lr": lr}, seed=s, epochs=2)
             for lr in (0.1, 0.01, 1e-3) for s in (0, 1)]
    whole = train_group(group, "data")
    measured = ("seconds", "_share", "step_cost", "per_s", "_mb", "group_size", "train_loss")  # timings, memory

    def exact(r):
        points = [dataclasses.replace(p, time_s=0.0, train_loss=None) for p in r.curve]
        return r.status, points, {k: v for k, v in r.metrics.items() if not k.endswith(measured)}

    for size in (3, 2, 1):
        chunked = [r for i in range(0, len(group), size) for r in train_group(group[i:i + size], "data")]
        assert {r.metrics["group_size"] for r in chunked} == {size}
        for s, a, b in zip(group, chunked, whole):
            if task == "regression":
                assert exact(a) == exact(b), size
                assert all(close(p.train_loss, q.train_loss, 1e-6) for p, q in zip(a.curve, b.curve))
            else:
                assert_same_run(s, a, b)


def test_on_a_gpu_only_the_optimizers_proven_exact_there_step_row_wise():
    """On CUDA torch's Adam, AdamW, RMSprop and Adagrad kernels round a Python-number operand
    otherwise than the row-wise step's per-row tensors (measured on an H200), so a grid of those
    steps one optimizer per value there, with torch's own step; SGD, momentum and nesterov were
    bit-identical and keep the row-wise step. Decided from the device alone (no GPU needed here)."""
    rows = [{"lr": 0.1}, {"lr": 0.01}]
    for name in ("adam", "adamw", "amsgrad", "rmsprop", "adagrad"):
        assert "rounds otherwise" in unsupported(name, rows, "forloop", torch.device("cuda"))
        assert unsupported(name, rows, "forloop", torch.device("cpu")) is None
    for name in ("sgd", "momentum", "nesterov"):
        assert unsupported(name, rows, "foreach", "cuda") is None
