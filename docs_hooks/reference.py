"""MkDocs hook (mkdocs.yml ``hooks:``): the reference pages' tables, generated from the code at build
time, so they can never be stale.

A page asks for a table with a marker on a line of its own, ``<!-- generated: NAME -->`` (an HTML
comment, so the page still reads on GitHub); NAME is one of ``GENERATORS``. The CLI reference
comes from the Typer app (every command, its usage, arguments and options with type, default and
help), the results schema from the pydantic models in ``optbench/store/schema.py`` (every field,
its type, constraints and description) and the metric table from the registry in
``optbench/metrics.py``. A field added later appears on its own; a field without a description, or
an unknown marker, is a warning, which ``mkdocs build --strict`` turns into a failed build.
"""

from __future__ import annotations

import html
import inspect
import logging
import re
from collections.abc import Callable
from typing import Any

log = logging.getLogger("mkdocs.plugins.optbench")

MARKER = re.compile(r"^<!-- generated: ([\w-]+) -->$", re.MULTILINE)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            log.warning("%s: unknown generated table '%s' (known: %s)", page.file.src_uri, name, ", ".join(GENERATORS))
            return match.group(0)
        return GENERATORS[name]()

    return MARKER.sub(replace, markdown)


def cell(text: Any) -> str:
    """``text`` as one markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def code(text: Any) -> str:
    """``text`` as inline code in a table cell. A backslash-escaped pipe would show its backslash inside
    a code span, so code with a pipe is written as HTML, the pipe as an entity."""
    text = " ".join(str(text).split())
    if "|" in text:
        return "<code>" + html.escape(text).replace("|", "&#124;") + "</code>"
    return f"`{text}`" if text else ""


# --- the CLI reference -------------------------------------------------------------------------------


def cli_reference() -> str:
    import typer

    from optbench.cli.app import app

    root = typer.main.get_command(app)
    ctx = typer._click.core.Context(root, info_name="optbench")
    parts = [_command_section(root, ctx, "optbench", level=2)]
    parts += _subcommands(root, ctx, level=2)
    return "\n".join(parts)


def _subcommands(group: Any, ctx: Any, level: int) -> list[str]:
    parts = []
    for name, command in group.commands.items():
        if command.hidden:
            continue
        sub = type(ctx)(command, info_name=name, parent=ctx)
        parts.append(_command_section(command, sub, sub.command_path, level))
        if hasattr(command, "commands"):
            parts += _subcommands(command, sub, level + 1)
    return parts


def _command_section(command: Any, ctx: Any, path: str, level: int) -> str:
    usage = command.get_usage(ctx).removeprefix("Usage: ")
    lines = [f"{'#' * level} `{path}`", "", f"```text\n{usage}\n```", ""]
    if command.help:
        lines += [inspect.cleandoc(command.help), ""]
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    arguments = [p for p in params if p.param_type_name == "argument"]
    options = [p for p in params if p.param_type_name == "option"]
    if arguments:
        lines += ["| argument | required | description |", "|---|---|---|"]
        lines += [f"| {code(p.make_metavar(ctx) if hasattr(p, 'make_metavar') else p.name.upper())} "
                  f"| {'yes' if p.required else 'no'} | {cell(p.help or '')} |" for p in arguments]
        lines.append("")
    if options:
        lines += ["| option | value | default | description |", "|---|---|---|---|"]
        lines += [_option_row(p, ctx) for p in options]
        lines.append("")
    if hasattr(command, "commands"):
        subs = [f"`{name}`" for name, c in command.commands.items() if not c.hidden]
        lines += [f"Commands: {', '.join(subs)}.", ""]
    return "\n".join(lines)


def _option_row(p: Any, ctx: Any) -> str:
    names = ", ".join(p.opts) + ("".join(f" / {s}" for s in p.secondary_opts))
    value = "" if p.is_flag or p.count else (p.display_type_rich(ctx) or "")
    if value.startswith("<") and ">" in value:  # <int range>, <text>..., <path>
        value = value.replace("<", "").replace(">", "")
    bounds = [f"≥ {p.min}" if getattr(p, "min", None) is not None else "",
              f"≤ {p.max}" if getattr(p, "max", None) is not None else ""]
    value = value.replace("int range", "int " + " ".join(b for b in bounds if b)).strip()
    default = p.show_default if isinstance(p.show_default, str) else p.default
    if p.is_flag and not p.secondary_opts:
        default = "on" if default else "off"
    elif default is None or default is False or default == []:
        default = ""
    required = " (required)" if p.required else ""
    return f"| {code(names)} | {code(value)} | {code(default)} | {cell((p.help or '') + required)} |"


# --- the results schema ------------------------------------------------------------------------------


def record_fields() -> str:
    from optbench.store.schema import RunRecord

    return _model_table(RunRecord)


def spec_fields() -> str:
    from optbench.store.schema import SpecModel

    return _model_table(SpecModel)


def training_fields() -> str:
    from optbench.store.schema import TrainingModel

    return _model_table(TrainingModel)


def curve_fields() -> str:
    from optbench.store.schema import CurvePointModel

    return _model_table(CurvePointModel)


def target_fields() -> str:
    from optbench.store.schema import TargetModel

    return _model_table(TargetModel)


def _model_table(model: Any) -> str:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    rows = ["| key | type | required | description |", "|---|---|---|---|"]
    for name, prop in schema["properties"].items():
        description = model.model_fields[name].description
        if not description:
            log.warning("field '%s' of %s has no description: add a docstring under it in %s",
                        name, model.__name__, inspect.getsourcefile(model))
        default = "" if name in required else _default(prop)
        rows.append(f"| `{name}` | {cell(_type(prop))} | {'yes' if name in required else 'no' + default} "
                    f"| {cell(description or '')} |")
    return "\n".join(rows)


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop or prop["default"] is None:
        return ""
    return f" (default `{prop['default']}`)"


def _type(prop: dict[str, Any]) -> str:
    """A JSON-schema property as short text: ``int ≥ 1``, ``"ok" / "failed"``, ``SpecModel``, ``list of CurvePointModel``."""
    if "$ref" in prop:
        return _model_name(prop["$ref"])
    if "anyOf" in prop:
        kinds = list(dict.fromkeys(_type(p) for p in prop["anyOf"]))
        if {"bool", "int", "number"} <= set(kinds) and any(k.startswith("string") for k in kinds):
            rest = [k for k in kinds if k not in ("bool", "int", "number", "null") and not k.startswith("string")]
            kinds = ["scalar (bool, int, number, string)", *rest] + (["null"] if "null" in kinds else [])
        return " or ".join(kinds)
    if "const" in prop:
        return f"`{prop['const']!r}`".replace("'", '"')
    if "enum" in prop:
        return " / ".join(f'`"{v}"`' if isinstance(v, str) else f"`{v}`" for v in prop["enum"])
    kind = prop.get("type", "any")
    kind = {"string": "string", "integer": "int", "number": "number", "boolean": "bool", "null": "null",
            "object": "object", "array": "list"}.get(kind, kind)
    if kind == "list" and "items" in prop:
        kind = f"list of {_type(prop['items'])}"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        kind = f"object of {_type(prop['additionalProperties'])}"
    bounds = [f"≥ {prop['minimum']:,}" if "minimum" in prop else "", f"> {prop['exclusiveMinimum']:,}" if "exclusiveMinimum" in prop else "",
              f"≤ {prop['maximum']:,}" if "maximum" in prop else "", f"pattern `{prop['pattern']}`" if "pattern" in prop else "",
              f"≤ {prop['maxLength']:,} characters" if "maxLength" in prop else ""]
    return " ".join([kind, *(b for b in bounds if b)])


# The section of docs/results-schema.md that tables each nested model (its heading's anchor).
SECTIONS = {"SpecModel": ("spec", "spec"), "TrainingModel": ("training", "spectraining"),
            "CurvePointModel": ("curve point", "curve-points"), "TargetModel": ("target", "target")}


def _model_name(ref: str) -> str:
    name = ref.rsplit("/", 1)[-1]
    if name not in SECTIONS:
        log.warning("no section of results-schema.md tables %s: add it to SECTIONS in %s", name, __file__)
        return name
    title, anchor = SECTIONS[name]
    return f"[{title}](#{anchor})"


def metric_table() -> str:
    from optbench.metrics import METRICS

    rows = ["| metric | title | unit | better | `optbench check` default | reference for |", "|---|---|---|---|---|---|"]
    for m in METRICS.values():
        rows.append(f"| `{m.name}` | {cell(m.title)} | {cell(m.unit)} | {'higher' if m.higher_is_better else 'lower'} "
                    f"| {code(m.tolerance) if m.tolerance else 'not checked'} | {code(m.reference_of or '')} |")
    return "\n".join(rows)


GENERATORS: dict[str, Callable[[], str]] = {
    "cli-reference": cli_reference,
    "record-fields": record_fields,
    "spec-fields": spec_fields,
    "training-fields": training_fields,
    "curve-fields": curve_fields,
    "target-fields": target_fields,
    "metrics": metric_table,
}
