"""Which way is better for each measured quantity: the one place that knows it."""

from __future__ import annotations

# Accuracy (test, validation, or a target's bare name) and throughput; everything else measured
# (seconds, losses, RMSE, the gap to the optimum) is better lower.
HIGHER_IS_BETTER = frozenset({"accuracy", "test_accuracy", "val_accuracy", "steps_per_s", "samples_per_s"})


def higher_is_better(metric: str) -> bool:
    return metric in HIGHER_IS_BETTER
