"""optbench: benchmark PyTorch optimizers on regression, MLP and CIFAR-10 tasks."""

__version__ = "0.1.0"
