"""The documentation site builds strictly (no broken link or anchor, no stale generated page), and
its generated pages cover the code: every command and option of the CLI, every field of the
stored record and every registered metric, including those added later."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for module in ("mkdocs", "material"):
        pytest.importorskip(module, reason=f"{module} is not installed: pip install -e \".[docs]\" builds the site")
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
                            "-d", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, check=False)
    assert build.returncode == 0, build.stderr[-3000:]
    return out


def page_text(site: Path, page: str) -> str:
    return html.unescape((site / page / "index.html").read_text(encoding="utf-8"))


def test_the_site_builds_strictly_with_every_page(site):
    for page in ("cli", "results-schema", "running", "reports", "tuning", "articles", "architecture"):
        assert (site / page / "index.html").is_file(), page
    assert "optbench" in (site / "index.html").read_text(encoding="utf-8")


def test_the_cli_reference_lists_every_command_and_option(site):
    import typer

    from optbench.cli.app import app

    text = page_text(site, "cli")
    # Each command's section: from its heading to the next heading of a command.
    heading = r'<h\d id="(optbench[^"]*)".*?(?=<h\d id="optbench|$)'
    sections = {m.group(1): m.group(0) for m in re.finditer(heading, text, flags=re.DOTALL)}

    def walk(command, path):
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            if not sub.hidden:
                yield from walk(sub, f"{path} {name}")

    commands = list(walk(typer.main.get_command(app), "optbench"))
    assert {"optbench run", "optbench report", "optbench check", "optbench baseline save"} <= {p for p, _ in commands}
    for path, command in commands:
        section = sections.get(path.replace(" ", "-"))
        assert section is not None, f"no section for `{path}`"
        shown = {name for code in re.findall(r"<code>(.*?)</code>", section, flags=re.DOTALL)
                 for name in re.split(r"[\s,/]+", code)}
        for param in command.params:
            if getattr(param, "hidden", False) or param.param_type_name != "option":
                continue
            for opt in [*param.opts, *param.secondary_opts]:
                assert opt in shown, f"`{path}` {opt} is not in its section"


def test_the_schema_page_lists_every_record_field_and_metric(site):
    from optbench.metrics import METRICS
    from optbench.store.schema import (
        CurvePointModel,
        RunRecord,
        SpecModel,
        TargetModel,
        TrainingModel,
    )

    text = page_text(site, "results-schema")
    for model in (RunRecord, SpecModel, TrainingModel, CurvePointModel, TargetModel):
        for name, field in model.model_fields.items():
            assert f"<code>{name}</code>" in text, f"{model.__name__}.{name} is not on the page"
            assert field.description and html.unescape(field.description.split("`")[0][:30]) in text
    for name in METRICS:
        assert f"<code>{name}</code>" in text, f"metric {name} is not on the page"
