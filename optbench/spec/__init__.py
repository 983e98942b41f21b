"""What a run is and what it produces, declared once: the spec (``RunSpec`` and its parts, training
options and targets), the allowed values of its fields (``vocabulary``), its identities (``identity``)
and the result (``RunResult``). Every other layer imports these; this package imports no other
optbench layer but errors and metrics.
"""

from optbench.spec.run import SCHEMA_VERSION, CurvePoint, RunContext, RunResult, RunSpec, code_text, digest, format_hparams
from optbench.spec.vocabulary import FINISHED, STATUSES, SUCCESS, Status

__all__ = ["FINISHED", "SCHEMA_VERSION", "STATUSES", "SUCCESS", "CurvePoint", "RunContext", "RunResult", "RunSpec",
           "Status", "code_text", "digest", "format_hparams"]
