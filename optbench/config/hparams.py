"""Hyperparameters as written inline: ``adam:lr=3e-4,betas=0.9/0.98`` into the optimizer's name and
typed values (bools, ints, floats, tuples), parsed once; the registry (optbench.optim.hparams)
then checks them against the optimizer's own defaults and types."""

from __future__ import annotations

from optbench.config.inline import parse_inline
from optbench.errors import UserError
from optbench.optim.registry import HParams, HParamValue


def parse_optimizer_arg(text: str) -> tuple[str, HParams]:
    """Split ``name[:key=value,key=value]`` into the name and raw parsed hyperparameters.

    The name may itself hold colons (``mypkg.optim:Lion``, ``po:lion``): the hyperparameters are
    the text after the last ``:`` only when it contains ``=``. Values: ``true``/``false``, ints,
    floats, and tuples written with ``/`` (``betas=0.9/0.98``).
    """
    parsed = parse_inline(text, "hyperparameter", "adam:lr=0.01", colons_in_name=True)
    if not parsed.name:
        raise UserError(f"empty optimizer name in '{text.strip()}'; write NAME or NAME:key=value,...")
    return parsed.name, {key: _parse_value(raw) for key, raw in parsed.items}


def _parse_value(raw: str) -> HParamValue:
    if "/" in raw:
        return tuple(_parse_scalar(part.strip()) for part in raw.split("/"))
    return _parse_scalar(raw)


def _parse_scalar(raw: str) -> bool | int | float | str:
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    return raw
