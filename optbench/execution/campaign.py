"""Checks of a whole campaign before its first run, so that a bad suite writes nothing.

Sizes and optimizers are checked while the specs are built (optbench.config.suite); this adds
the data: every (task, dataset) the specs use is loaded once here, which downloads what is missing
and validates every file (optbench.datasets), so a missing or broken dataset of the last task
stops the suite before the first task's runs are recorded.
"""

from __future__ import annotations

from pathlib import Path

from optbench.spec import RunSpec
from optbench.tasks import get_task


def validate_campaign(specs: list[RunSpec], data_dir: Path) -> None:
    """Load the data of every (task, dataset) in ``specs``; the first problem raises UserError.

    Data for runs on the CPU stays in this process's cache for the runs; data for other devices
    is only validated here (the engine moves its own copy to the device).
    """
    from optbench.engine.eager import load_data  # torch: only once a run is to start

    devices: dict[tuple[str, str], set[str]] = {}
    for spec in specs:
        devices.setdefault((spec.task, spec.dataset), set()).add(spec.device)
    for (task_name, dataset), used_on in devices.items():
        task = get_task(task_name)
        if used_on == {"cpu"}:
            load_data(task, dataset, data_dir, "cpu")
        else:
            task.load(dataset, Path(data_dir))
