"""--precision bf16 (autocast) is its own cell, float32 keeps every hash; the CNN's channels-last
layout computes what NCHW does."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optbench.config.suite import build_specs, load_suite
from optbench.tasks import get_task
from optbench.tasks.cifar10 import SmallCNN, synthetic_cifar

MLP = ("--task", "mlp", "--opt", "adam", "--epochs", "1", "--batch-size", "500")


def test_bf16_run_records_its_precision_in_its_own_cell_and_trains_in_bf16(cli) -> None:
    (bf16,) = cli.run_json(*MLP, "--precision", "bf16")
    (plain,) = cli.run_json(*MLP)
    assert bf16["spec"]["training"] == {"precision": "bf16"} and "training" not in plain["spec"]
    assert bf16["spec_hash"] != plain["spec_hash"] and bf16["cell_hash"] != plain["cell_hash"]
    assert bf16["status"] == plain["status"] == "ok"
    # autocast ran: bfloat16 products give another loss, close to float32's
    a, b = bf16["metrics"]["final_train_loss"], plain["metrics"]["final_train_loss"]
    assert a != b and abs(a - b) < 0.05 * b
    again = cli.run("--quiet", *MLP, "--precision", "bf16")  # resumed: the bf16 run is found again
    assert again.exit_code == 0 and len(cli.stored()) == 2


def test_float32_is_the_default_and_keeps_every_hash() -> None:
    def spec(**options):
        (s,) = build_specs(load_suite(None, {"tasks": ["regression"], "optimizers": ["adam"], "device": "cpu", **options},
                                      source="test"))
        return s

    assert spec().spec_hash() == spec(precision="float32").spec_hash() == "8cbf85bc3437e190"  # as before precision existed
    assert "training" not in spec(precision="float32").to_dict()


@pytest.mark.parametrize(("args", "message"), [
    (("--task", "regression", "--precision", "bf16"), "task 'regression' runs in float32 only, not --precision bf16"),
    ((*MLP, "--precision", "bf16", "--engine", "vectorized"), "--precision bf16 (autocast) is trained by the eager engine only"),
    ((*MLP, "--precision", "fp8"), "precision: input should be 'float32' or 'bf16'"),
])
def test_precision_that_cannot_run_is_refused_in_one_line(cli, args, message) -> None:
    result = cli.run(*args)
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and not cli.results_dir.exists()


def test_cnn_data_and_model_are_channels_last_and_train_as_nchw_does(tmp_path) -> None:
    task = get_task("cifar10")
    data = task.load("synthetic", tmp_path)
    channels_last = torch.channels_last
    for x in (data.x_train, data.x_test, data.validation_split().x_train, data.x_train[torch.tensor([3, 1])]):
        assert x.is_contiguous(memory_format=channels_last)  # stored once in the layout, kept by batches
    torch.manual_seed(0)
    model = task.build_model(data)
    assert all(p.is_contiguous(memory_format=channels_last) for p in model.parameters() if p.dim() == 4)

    small = synthetic_cifar(n_train=128, n_test=10)
    losses = {}
    for layout in (torch.contiguous_format, channels_last):
        torch.manual_seed(0)
        net = SmallCNN().to(memory_format=layout)
        x = small.x_train.contiguous(memory_format=layout)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        for i in range(0, 128, 64):
            loss = nn.functional.cross_entropy(net(x[i : i + 64]), small.y_train[i : i + 64])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        losses[layout] = (loss.item(), [p.detach().clone() for p in net.parameters()])
    (loss_a, params_a), (loss_b, params_b) = losses.values()
    assert loss_a == pytest.approx(loss_b, rel=1e-4)  # other kernels, other summation order: not bit-equal
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(params_a, params_b))


def test_cnn_pools_before_its_relu_and_trains_bit_identically_to_the_tutorials_order() -> None:
    small = synthetic_cifar(n_train=128, n_test=10)
    x = small.x_train.contiguous(memory_format=torch.channels_last)
    params = []
    for tutorial in (False, True):
        torch.manual_seed(0)
        net = SmallCNN()
        if tutorial:  # conv, ReLU, max-pool, as the PyTorch tutorial writes it
            f = net.features
            net.features = nn.Sequential(f[0], f[2], f[1], f[3], f[5], f[4])
        net = net.to(memory_format=torch.channels_last)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
        for i in range(0, 128, 32):
            nn.functional.cross_entropy(net(x[i : i + 32]), small.y_train[i : i + 32]).backward()
            optimizer.step()
            optimizer.zero_grad()
        params.append([p.detach().clone() for p in net.parameters()])
    assert isinstance(SmallCNN().features[1], nn.MaxPool2d)  # pooling first: ReLU on a quarter of the elements
    assert all(torch.equal(a, b) for a, b in zip(*params))
