"""The one parser of the inline syntax ``NAME[:key=value,key=value,...]``, shared by ``--opt``
(``adam:lr=3e-4,betas=0.9/0.98``), its sweeps (``adam:lr=1e-4|1e-3``), ``--schedule``
(``step:step_size=10,gamma=0.5``) and ``--dataset`` (``diamonds:rows=20000``, see
``optbench.spec.dataset``). It splits; each caller interprets the raw values. It lives in the spec
layer so that the tasks, which read a spec's dataset text, use the same parser as the command line.
"""

from __future__ import annotations

from dataclasses import dataclass

from optbench.errors import UserError


@dataclass(frozen=True)
class Inline:
    """``name`` and its ``(key, raw value)`` items in the order written."""

    name: str
    items: tuple[tuple[str, str], ...]


def parse_inline(text: str, kind: str, example: str, colons_in_name: bool = False) -> Inline:
    """Split ``text``. With ``colons_in_name`` (optimizers: ``mypkg.optim:Lion``, ``po:lion``) the
    items are the text after the last ``:``, and only when it holds an ``=``. A bad item (no ``=``,
    no key, no value) or a key given twice is a UserError naming ``kind`` and showing ``example``."""
    text = text.strip()
    if colons_in_name:
        name, colon, rest = text.rpartition(":")
        if not colon or (rest and "=" not in rest):
            name, rest = text, ""
    else:
        name, _, rest = text.partition(":")
    items: list[tuple[str, str]] = []
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not eq or not key or not raw:
            raise UserError(f"bad {kind} '{item}' in '{text}'; write key=value, e.g. {example}")
        if any(key == k for k, _ in items):
            raise UserError(f"{kind} '{key}' given twice in '{text}'")
        items.append((key, raw))
    return Inline(name.strip(), tuple(items))


def parse_value(raw: str) -> bool | int | float | str | tuple:
    """An inline value: ``true``/``false``, an int, a float, a tuple written with ``/``
    (``betas=0.9/0.98``), else the text itself."""
    if "/" in raw:
        return tuple(_scalar(part.strip()) for part in raw.split("/"))
    return _scalar(raw)


def _scalar(raw: str) -> bool | int | float | str:
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    return raw
