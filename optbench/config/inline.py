"""The inline syntax ``NAME[:key=value,...]``: its one parser is ``optbench.spec.inline`` (the spec
layer, so the tasks read a dataset's options with it too); the config modules import it from here."""

from optbench.spec.inline import Inline, parse_inline

__all__ = ["Inline", "parse_inline"]
