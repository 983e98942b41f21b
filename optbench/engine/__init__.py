"""Engines turn a RunSpec into a RunResult: ``eager`` trains one run at a time."""
