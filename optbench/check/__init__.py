"""``optbench check`` and baselines: compare results with a committed baseline, per cell and metric."""
