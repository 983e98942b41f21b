"""The command-line layer: the Typer app and every piece of Rich rendering (the only place either is imported)."""

from optbench.cli.app import app, main

__all__ = ["app", "main"]
