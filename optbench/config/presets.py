"""Named protocol presets: a published tuning protocol as one flag, ``optbench run --protocol NAME``.

A preset rewrites a suite before its specs are built (``apply_preset``): it adds a learning-rate
grid to every optimizer entry, turns on the ``--select`` protocol (``optbench.execution.selection``:
the grid runs on the validation split, each task x optimizer's winner is re-run on test), and sets
the seeds of the winners' re-runs and the engine. Nothing else about a run changes, so a preset's
runs are ordinary records: the same spec as the equivalent hand-written sweep (a resumed or
repeated preset skips what is stored), with the top-level key ``protocol`` naming the preset.

What wins where the user also says something (decided here, documented in the README):

- ``lr`` in an optimizer entry, ``--split`` or ``--no-select``: refused with one line (the preset
  owns the grid, the splits and the selection; without ``--protocol`` the same sweep is
  ``--select`` with a ``lr`` range);
- ``--select``: implied, so allowed;
- ``--seeds``, ``--engine`` given explicitly (flag or suite key): the user's value wins;
- other hyperparameters (``adam:betas=0.9/0.98``, also swept ones) are kept: the grid is crossed
  with them.

This module imports neither torch nor the optimizer registry (``optbench --help`` and
``optbench list`` read it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optbench.errors import UserError, unknown
from optbench.config.inline import parse_inline

if TYPE_CHECKING:
    from optbench.config.suite import SuiteConfig


@dataclass(frozen=True)
class Preset:
    """A tuning protocol: a log-spaced learning-rate grid tuned on validation, the winner re-run."""

    name: str
    summary: str  # one line, as `optbench list` and `--help` show it
    lr_range: tuple[float, float]  # both ends included
    lr_points: int
    seeds: int  # seeds of each winner's re-run on test (the sweep runs with the first seed)
    engine: str = "auto"  # the engine unless the user names one
    # Also run each optimizer at its default hyperparameters (the --select "default" stage).
    default_stage: bool = False

    def lr_grid(self) -> list[float]:
        """The grid's learning rates, rounded to 6 significant digits as every swept range is
        (``optbench.config.sweep.value_range``), smallest first."""
        lo, hi = (math.log10(v) for v in self.lr_range)
        n = self.lr_points
        return [float(f"{10 ** (lo + (hi - lo) * i / (n - 1)):.6g}") for i in range(n)]

    def describe(self) -> str:
        """``deepobs: 36 learning rates from 1e-05 to 100 ...``: the one line per preset."""
        return f"{self.name}: {self.summary}"


PRESETS: dict[str, Preset] = {
    p.name: p for p in [
        Preset("deepobs",
               "36 log-spaced learning rates from 1e-5 to 1e2 per optimizer, tuned on the validation split; "
               "each winner re-run with 10 seeds on test (Schneider et al. 2019)",
               lr_range=(1e-5, 1e2), lr_points=36, seeds=10),
    ]
}


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (any case); an unknown name is a UserError with the closest one."""
    preset = PRESETS.get(name.strip().lower())
    if preset is None:
        raise unknown("protocol preset", name, PRESETS)
    return preset


def apply_preset(suite: SuiteConfig) -> SuiteConfig:
    """``suite`` with its preset (``suite.protocol``) applied; unchanged when it names none."""
    if suite.protocol is None:
        return suite
    preset = get_preset(suite.protocol)
    given = suite.model_fields_set
    flag = f"--protocol {preset.name}"
    if suite.split is not None:
        raise UserError(f"{flag} runs the sweep on the validation split and the winners on test itself; "
                        "leave out --split (split in a suite file)")
    if "select" in given and not suite.select:
        raise UserError(f"{flag} is the --select protocol with a learning-rate grid; leave out --no-select "
                        "(select = false in a suite file)")
    grid = preset.lr_grid()
    optimizers: list[Any] = []
    for entry in suite.optimizers:
        if isinstance(entry, str):
            parsed = parse_inline(entry, "hyperparameter", "adam:betas=0.9/0.98", colons_in_name=True)
            if any(key == "lr" for key, _ in parsed.items):
                raise _lr_given(flag, preset, entry.strip())
            alternatives = "|".join(repr(v) for v in grid)
            optimizers.append(f"{entry.strip()},lr={alternatives}" if parsed.items
                              else f"{parsed.name}:lr={alternatives}")
        else:
            extra = dict(entry.model_extra or {})
            if "lr" in extra:
                raise _lr_given(flag, preset, f"{{name = \"{entry.name}\", lr = ...}}")
            # The range form of a suite table gives the same values as the inline grid above.
            extra["lr"] = {"log": list(preset.lr_range), "num": preset.lr_points}
            optimizers.append(type(entry)(name=entry.name, **extra))
    update: dict[str, Any] = {"optimizers": optimizers, "select": True, "protocol": preset.name}
    if "seeds" not in given:
        update["seeds"] = preset.seeds
    if "engine" not in given:
        update["engine"] = preset.engine
    return suite.model_copy(update=update)


def _lr_given(flag: str, preset: Preset, entry: str) -> UserError:
    lo, hi = (f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e").replace("e+", "e") for v in preset.lr_range)
    return UserError(f"{flag} sweeps lr itself ({preset.lr_points} log-spaced values from {lo} to {hi}); "
                     f"leave lr out of '{entry}', or drop {flag} and sweep lr with --select")
