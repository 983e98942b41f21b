"""CIFAR-10 image classification with the classic small CNN of the PyTorch tutorials."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from optbench.datasets.cifar10 import load_cifar10
from optbench.tasks.base import ClassificationTask, TaskData

SYNTHETIC_TRAIN = 5000
SYNTHETIC_TEST = 1000
SYNTHETIC_NOISE = 1.0
PROTOTYPE_SCALE = 0.15
CLASSES = 10


class SmallCNN(nn.Module):
    """conv 3->16 and 16->32 (3x3, padding 1), ReLU, 2x2 max-pool after each, fc 2048->128->10.

    Each convolution is followed by its max-pool, then its ReLU: the tutorial's ReLU-then-pool,
    exactly (both are exact and ReLU is monotonic, so the values, the pooled indices and every
    gradient are the same bits; tests/test_precision.py trains both), with ReLU on a quarter of the
    elements: 10-12% more images per CPU-second on one core (about 12% of a step was ReLU).
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(  # the layers keep the tutorial's indices (features.0, features.3)
            nn.Conv2d(3, 16, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.MaxPool2d(2), nn.ReLU(),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, 32, 32) -> float in [-1, 1]: ToTensor then Normalize(0.5, 0.5), batched."""
    return images.float().div_(255).sub_(0.5).div_(0.5)


def synthetic_cifar(n_train: int = SYNTHETIC_TRAIN, n_test: int = SYNTHETIC_TEST, seed: int = 0) -> TaskData:
    """CIFAR-shaped images whose class is learnable: a smooth per-class colour pattern plus noise.

    Each class has a prototype (a random 3x4x4 pattern upsampled to 40x40, amplitude 0.15); an
    image is a random 32x32 crop of its class's prototype plus Gaussian noise of std 1.0, clipped
    to [-1, 1]. Weak signal in strong noise: optimizers separate clearly within a few epochs, and adam
    is well above chance after 2 (tests/test_run_cli.py asserts > 50%; chance is 10%).
    """
    g = torch.Generator().manual_seed(seed)
    protos = PROTOTYPE_SCALE * nn.functional.interpolate(torch.randn(CLASSES, 3, 4, 4, generator=g), size=(40, 40), mode="bilinear")

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, CLASSES, (n,), generator=g)
        dx, dy = torch.randint(0, 9, (2, n), generator=g)
        rows = (dy[:, None] + torch.arange(32))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(32))[:, None, None, :]
        crops = protos[labels][torch.arange(n)[:, None, None, None], torch.arange(3)[None, :, None, None], rows, cols]
        images = (crops + SYNTHETIC_NOISE * torch.randn(n, 3, 32, 32, generator=g)).clamp_(-1, 1)
        return images, labels

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return TaskData(x_train, y_train, x_test, y_test)


class CIFAR10Classification(ClassificationTask):
    """The code of task \'cifar10\' (its name, datasets and defaults: ``optbench.tasks.catalog``)."""

    eval_batch_size = 1000

    # Images (stored once, here) and convolution weights are kept channels-last (NHWC): the same
    # maths up to summation order, but oneDNN's and cuDNN's fastest convolution kernels; 1.26x-1.68x
    # the images per CPU-second of NCHW on one core of a 2-core CPU (benchmarks/bench_cifar10.py).
    # Batches taken by indexing, the validation split and ``TaskData.to(device)`` keep the layout.
    def load(self, dataset: str, data_dir: Path) -> TaskData:
        if dataset == "synthetic":
            data = synthetic_cifar()
        else:
            x_train, y_train, x_test, y_test = load_cifar10(data_dir)
            data = TaskData(normalise(x_train), y_train, normalise(x_test), y_test)
        data.x_train = data.x_train.contiguous(memory_format=torch.channels_last)
        data.x_test = data.x_test.contiguous(memory_format=torch.channels_last)
        # Guessing uniformly at random: its accuracy, and its cross-entropy (the loss of an untrained net).
        data.reference.update(chance_accuracy=1 / CLASSES, chance_loss=math.log(CLASSES))
        return data

    def build_model(self, data: TaskData) -> nn.Module:
        return SmallCNN().to(memory_format=torch.channels_last)
