"""Named protocol presets: a published tuning protocol as one flag, ``optbench run --protocol NAME``.

A preset is data applied to a suite's typed values before its specs are built (``apply_preset``):
it sweeps every optimizer entry's learning rate over its grid (a ``Range`` added to the entry's
typed alternatives, as ``lr = {log = [a, b], num = n}`` in a suite table would), turns on the
``--select`` protocol (``optbench.execution.selection``: the grid runs on the validation split,
each task x optimizer's winner is re-run on test), and sets the seeds of the winners' re-runs and
the engine. Nothing else about a run changes, so a preset's runs are ordinary records: the same
spec as the equivalent hand-written sweep (a resumed or repeated preset skips what is stored), with
the top-level key ``protocol`` naming the preset.

What wins where the user also says something (decided here, documented in docs/fair-comparisons.md):

- ``lr`` in an optimizer entry, ``--split`` or ``--no-select``: refused with one line (the preset
  owns the grid, the splits and the selection; without ``--protocol`` the same sweep is
  ``--select`` with a ``lr`` range);
- ``--select``: implied, so allowed;
- ``--seed``, ``--seeds``, ``--engine`` given explicitly (flag or suite key): the user's value wins
  (deepobs: seeds 42-51 as DeepOBS, the sweep on seed 42, or 42..41+``selection_seeds``);
- other hyperparameters (``adam:betas=0.9/0.98``, also swept ones) are kept: the grid is crossed
  with them.

This module imports neither torch nor the optimizer registry (``optbench --help`` and
``optbench list`` read it), nor the suite (which applies presets).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optbench.config.hparams import OptimizerSweep, Range
from optbench.errors import UserError, unknown


@dataclass(frozen=True)
class Preset:
    """A tuning protocol: a log-spaced learning-rate grid tuned on validation, the winner re-run."""

    name: str
    summary: str  # one line, as `optbench list` and `--help` show it
    lr: Range  # the learning rates every optimizer entry sweeps
    seeds: int  # seeds of each winner's re-run on test (the sweep runs with the first selection_seeds)
    seed: int = 0  # the first seed, unless the user names one (DeepOBS: 42, so the winners run 42..51)
    engine: str = "auto"  # the engine unless the user names one
    # Also run each optimizer at its default hyperparameters (the --select "default" stage).
    default_stage: bool = False

    def lr_grid(self) -> list[float]:
        """The grid's learning rates, rounded to 6 significant digits as every swept range is, smallest first."""
        return list(self.lr.values())

    def describe(self) -> str:
        """``deepobs: 36 learning rates from 1e-05 to 100 ...``: the one line per preset."""
        return f"{self.name}: {self.summary}"


PRESETS: dict[str, Preset] = {
    p.name: p for p in [
        Preset("deepobs",
               "36 log-spaced learning rates from 1e-5 to 1e2 per optimizer, tuned on the validation split; "
               "each winner re-run with seeds 42-51 on test (Schneider et al. 2019)",
               lr=Range("log", 1e-5, 1e2, 36), seeds=10, seed=42),
    ]
}


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (any case); an unknown name is a UserError with the closest one."""
    preset = PRESETS.get(name.strip().lower())
    if preset is None:
        raise unknown("protocol preset", name, PRESETS)
    return preset


def apply_preset(protocol: str, optimizers: Sequence[OptimizerSweep], given: Mapping[str, Any]) -> dict[str, Any]:
    """The suite fields preset ``protocol`` sets, for a suite with these typed ``optimizers``:
    ``optimizers`` (each sweeping the preset's learning rates), ``select``, ``protocol`` (the
    preset's name), and ``seed``, ``seeds`` and ``engine`` unless ``given`` (the fields the user set, by flag
    or suite key, with their values) names them. What contradicts the preset is a UserError."""
    preset = get_preset(protocol)
    flag = f"--protocol {preset.name}"
    if given.get("split") is not None:
        raise UserError(f"{flag} runs the sweep on the validation split and the winners on test itself; "
                        "leave out --split (split in a suite file)")
    if given.get("select") is False:
        raise UserError(f"{flag} is the --select protocol with a learning-rate grid; leave out --no-select "
                        "(select = false in a suite file)")
    swept = []
    for entry in optimizers:
        if "lr" in entry.values:
            raise UserError(f"{flag} sweeps lr itself ({preset.lr.describe()}); leave lr out of "
                            f"'{entry.written('lr')}', or drop {flag} and sweep lr with --select")
        swept.append(entry.sweeping("lr", preset.lr))
    update: dict[str, Any] = {"optimizers": swept, "select": True, "protocol": preset.name}
    if "seeds" not in given:
        update["seeds"] = preset.seeds
    if "seed" not in given:
        update["seed"] = preset.seed
    if "engine" not in given:
        update["engine"] = preset.engine
    return update
