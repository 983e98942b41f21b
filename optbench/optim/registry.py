"""The optimizer registry: names, documented default hyperparameters, parsing and construction.

An honest comparison does not give SGD and Adam the same learning rate, so every name carries
its own defaults (the values the PyTorch docs and the classic papers recommend). Users override
any constructor argument inline: ``adam:lr=3e-4,betas=0.9/0.98,weight_decay=1e-4``.

Where an optimizer name comes from, in lookup order:

- ``REGISTRY``: the torch.optim optimizers, and ``REFERENCE``: the from-scratch ``ref-*`` ones;
- ``po:NAME``: an optimizer of the ``pytorch_optimizer`` package (the ``optbench[zoo]`` extra);
- ``module:Class`` or ``file.py:Class``: any ``torch.optim.Optimizer`` subclass by import path;
- a name an installed package registers in the entry-point group ``optbench.optim.registry``.

``optbench.optim.plugins`` finds the classes outside optbench; they take their defaults
from the class signature.

Implementation (``impl``): torch optimizers have a for-loop, a ``foreach`` (one kernel per
operation over all parameters) and for some a ``fused`` (one kernel per step) implementation.
They compute the same update and differ only in speed, so a fair comparison runs every
optimizer with the same kind; see ``optbench.optim.construct.resolve_impl`` for the default policy.

This module never imports torch: reading records, labels and ``optbench list`` use it. Built-in
classes are named by import path and imported when a run needs them (``OptimizerDef.load_class``);
construction (``build_optimizer``, ``resolve_impl``) lives in ``optbench.optim.construct``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib
import importlib.metadata
import inspect
import math
import sys
from pathlib import Path
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from optbench.optim import plugins
from optbench.errors import UserError, unknown
from optbench.spec import RunSpec, format_hparams
from optbench.spec.search import ONE_MINUS_BETA1, Dimension, LogUniform, round6

HParamValue = bool | int | float | str | tuple
HParams = dict[str, HParamValue]

# Constructor arguments that choose an implementation, not the maths; they are not
# hyperparameters of the comparison.
_IMPLEMENTATION_ARGS = frozenset({"params", "foreach", "fused", "capturable", "differentiable"})

# Required constructor arguments that are objects (LOMO takes the model, Magma a base optimizer):
# no inline value can stand for them.
_OBJECT_ARGS = frozenset({"model", "optimizer", "base_optimizer", "module", "closure"})


@dataclass(frozen=True)
class OptimizerDef:
    """One optimizer: a ``torch.optim.Optimizer`` subclass plus the defaults that define it.

    ``cls`` is the class, or its import path ``module:Class`` (the built-ins: declaring them must not
    import torch); ``load_class()`` returns the class either way.
    Packages may export one from their ``optbench.optim.registry`` entry point to choose defaults.
    """

    name: str
    cls: type | str
    defaults: Mapping[str, HParamValue]
    summary: str
    # Arguments that make the variant what it is (nesterov=True for 'nesterov'); not overridable.
    fixed: Mapping[str, HParamValue] = field(default_factory=dict)
    # Where the name comes from, as `optbench list` shows it.
    source: str = "torch"
    # What runs when the class has no foreach/fused switch: reference optimizers are plain
    # for-loops; of anyone else's class optbench knows only that it is the class's own code.
    native_impl: str = "native"
    # Whether a step on parameters stacked over replicas ([K, ...]) equals K separate steps, so the
    # vectorized engine may train many runs in one pass (optbench.engine.vectorized). Declared,
    # never guessed: true for the built-ins and reference optimizers, plugins opt in.
    elementwise: bool = False
    # Hybrid optimizers (Muon and its kin in pytorch_optimizer) take two parameter groups: their
    # own update for matrices (``use_muon=True``: parameters of 2 or more dimensions; where the model
    # marks roles, its hidden matrices only: optbench.optim.muon.marked_hidden) and AdamW, with the
    # ``adamw_*`` hyperparameters, for the rest (biases, scalars, marked embeddings and output layers).
    # Recognised by ``adamw_lr``.
    matrix_groups: bool = False

    @classmethod
    def from_class(cls, name: str, optimizer: type, source: str) -> OptimizerDef:
        """A definition whose defaults are the class signature's (scalars and tuples of them)."""
        doc = inspect.getdoc(optimizer) or ""
        summary = doc.strip().splitlines()[0] if doc.strip() else optimizer.__name__
        hybrid = "adamw_lr" in inspect.signature(optimizer.__init__).parameters
        return cls(name, optimizer, signature_defaults(optimizer), summary, source=source, matrix_groups=hybrid)

    def load_class(self) -> type:
        """The optimizer class (imported on first use when ``cls`` is an import path)."""
        return _import_class(self.cls) if isinstance(self.cls, str) else self.cls

    def _parameters(self) -> Mapping[str, inspect.Parameter]:
        return inspect.signature(self.load_class().__init__).parameters

    def accepted_keys(self) -> list[str]:
        params = self._parameters()
        return sorted(
            k for k in params
            if k not in _IMPLEMENTATION_ARGS and k != "self" and k not in self.fixed
            and params[k].kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        )

    def required_keys(self) -> list[str]:
        """Accepted keys the class signature gives no default and the definition does not either."""
        params = self._parameters()
        return [k for k in self.accepted_keys()
                if params[k].default is inspect.Parameter.empty and k not in self.defaults]

    def reference_value(self, key: str) -> Any:
        """The value whose type an override of ``key`` must match."""
        if key in self.defaults:
            return self.defaults[key]
        default = self._parameters()[key].default
        return None if default is inspect.Parameter.empty else default

    def impl_switches(self) -> frozenset[str]:
        """Which of ``foreach`` and ``fused`` the class takes as constructor arguments."""
        return frozenset({"foreach", "fused"} & set(self._parameters()))


def signature_defaults(optimizer: type) -> HParams:
    """The constructor defaults of ``optimizer`` that a record can store: finite numbers, booleans,
    strings and tuples of those; implementation switches and ``None`` defaults are left out."""
    def storable(v: Any) -> bool:
        if isinstance(v, tuple):
            return bool(v) and all(storable(x) for x in v)
        if isinstance(v, float):
            return math.isfinite(v)
        return isinstance(v, (bool, int, str))

    return {
        k: p.default for k, p in inspect.signature(optimizer.__init__).parameters.items()
        if k not in _IMPLEMENTATION_ARGS and storable(p.default)
    }


def class_path(cls: type | str) -> str:
    """``torch.optim.Adam`` for torch's own classes, ``module.Class`` for any other."""
    if isinstance(cls, str):
        return cls.replace(":", ".")
    optim = sys.modules.get("torch.optim")  # loaded wherever a torch class is
    if optim is not None and getattr(optim, cls.__name__, None) is cls:
        return f"torch.optim.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


@functools.cache
def _import_class(path: str) -> type:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


O = "torch.optim:"
# These built-ins are elementwise: each step on stacked parameters is bit-identical to separate steps.
REGISTRY: dict[str, OptimizerDef] = {
    d.name: replace(d, elementwise=True)
    for d in [
        OptimizerDef("sgd", O + "SGD", {"lr": 0.01}, "plain stochastic gradient descent"),
        OptimizerDef("momentum", O + "SGD", {"lr": 0.01, "momentum": 0.9}, "SGD with heavy-ball momentum 0.9"),
        OptimizerDef("nesterov", O + "SGD", {"lr": 0.01, "momentum": 0.9}, "SGD with Nesterov momentum 0.9",
                     fixed={"nesterov": True}),
        OptimizerDef("rmsprop", O + "RMSprop", {"lr": 0.001, "alpha": 0.99, "eps": 1e-8},
                     "RMSprop (Hinton's lecture 6e; lr 1e-3 as in Keras)"),
        OptimizerDef("adagrad", O + "Adagrad", {"lr": 0.01}, "Adagrad (Duchi et al. 2011)"),
        OptimizerDef("adadelta", O + "Adadelta", {"lr": 1.0, "rho": 0.9}, "Adadelta (Zeiler 2012)"),
        OptimizerDef("adam", O + "Adam", {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8},
                     "Adam (Kingma & Ba 2015)"),
        OptimizerDef("adamw", O + "AdamW", {"lr": 0.001, "betas": (0.9, 0.999), "weight_decay": 0.01},
                     "Adam with decoupled weight decay (Loshchilov & Hutter 2019)"),
        OptimizerDef("amsgrad", O + "Adam", {"lr": 0.001, "betas": (0.9, 0.999)},
                     "Adam with the AMSGrad max of second moments (Reddi et al. 2018)",
                     fixed={"amsgrad": True}),
        OptimizerDef("nadam", O + "NAdam", {"lr": 0.002, "betas": (0.9, 0.999)}, "Adam with Nesterov momentum (Dozat 2016)"),
        OptimizerDef("radam", O + "RAdam", {"lr": 0.001, "betas": (0.9, 0.999)}, "rectified Adam (Liu et al. 2020)"),
        OptimizerDef("adamax", O + "Adamax", {"lr": 0.002, "betas": (0.9, 0.999)}, "Adam with the infinity norm"),
    ]
}
# Muon on the hidden weight matrices, AdamW on the rest (optbench.optim.muon), with the defaults of
# Keller Jordan's MuonWithAuxAdam. Not elementwise (a matrix's update depends on the whole matrix),
# so the vectorized engine never trains it.
REGISTRY["muon"] = OptimizerDef(
    "muon", "optbench.optim.muon:MuonAdamW",
    {"lr": 0.02, "momentum": 0.95, "adamw_lr": 3e-4, "adamw_betas": (0.9, 0.95)},
    "Muon (Jordan 2024) on hidden weight matrices, AdamW on embeddings, output layer, biases and norms",
    source="optbench")

# The from-scratch optimizers of optbench.optim.reference, each with the defaults of its
# torch counterpart above, so `ref-adam` and `adam` run the same maths by default.
REFERENCE: dict[str, OptimizerDef] = {
    f"ref-{twin}": OptimizerDef(f"ref-{twin}", f"optbench.optim.reference:{cls}", REGISTRY[twin].defaults, f"from scratch: {REGISTRY[twin].summary}",
                                source="reference", native_impl="forloop", elementwise=True)
    for twin, cls in [("sgd", "SGD"), ("momentum", "MomentumSGD"), ("rmsprop", "RMSprop"),
                      ("adam", "Adam"), ("adamw", "AdamW")]
}

# Default search spaces of `optbench tune` (optbench.spec.search, optbench.config.search), with
# their sources. AlgoPerf: MLCommons algorithmic-efficiency, baselines/nadamw and
# baselines/nesterov tuning_search_space.json (its warm-up, label smoothing, dropout and schedule
# keys are not optimizer hyperparameters here). Weight decay only where the source states it.
_NADAMW = {"lr": LogUniform(1e-4, 1e-2), ONE_MINUS_BETA1: LogUniform(4e-3, 0.1)}
_NESTEROV = {"lr": LogUniform(2e-2, 5.0), ONE_MINUS_BETA1: LogUniform(5e-3, 0.3), "weight_decay": LogUniform(1e-7, 5e-5)}
_ALGOPERF_NADAMW = "AlgoPerf NadamW baseline"
SEARCH_SPACES: dict[str, tuple[dict[str, Dimension], str]] = {
    "sgd": ({"lr": LogUniform(2e-3, 0.5), "weight_decay": LogUniform(1e-7, 5e-5)},
            "AlgoPerf Nesterov baseline without momentum: its lr range x 0.1 (1 - its typical beta1 0.9)"),
    "momentum": (_NESTEROV, "AlgoPerf Nesterov baseline"),
    "nesterov": (_NESTEROV, "AlgoPerf Nesterov baseline"),
    "adam": (_NADAMW, _ALGOPERF_NADAMW + " without its decoupled weight decay (Adam's is L2)"),
    "adamw": ({**_NADAMW, "weight_decay": LogUniform(5e-3, 1.0)}, _ALGOPERF_NADAMW),
    "nadam": (_NADAMW, _ALGOPERF_NADAMW + " without its decoupled weight decay (NAdam's is L2)"),
    "amsgrad": (_NADAMW, _ALGOPERF_NADAMW),
    "radam": (_NADAMW, _ALGOPERF_NADAMW),
    "adamax": (_NADAMW, _ALGOPERF_NADAMW),
}
for _twin in ("sgd", "momentum", "adam", "adamw"):
    SEARCH_SPACES[f"ref-{_twin}"] = SEARCH_SPACES[_twin]
# Every other optimizer (rmsprop, adagrad, adadelta, muon, plugins, the zoo): lr log-uniform over one
# decade either side of its default (``default_space``).
AROUND_DEFAULT_LR = "lr log-uniform from its default lr / 10 to x 10 (no published space)"


def default_space(opt: OptimizerDef) -> tuple[dict[str, Dimension], str]:
    """The search space ``optbench tune`` uses for ``opt`` unless given one, and its source; UserError
    for an optimizer without a numeric default learning rate (give it a space)."""
    if opt.name in SEARCH_SPACES:
        return SEARCH_SPACES[opt.name]
    lr = opt.defaults.get("lr")
    if lr is None:
        with contextlib.suppress(Exception):
            lr = opt.reference_value("lr")
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not math.isfinite(lr) or lr <= 0:
        raise UserError(f"optimizer '{opt.name}' has no default learning rate to search around; give it a space, "
                        f"e.g. --space \"{opt.name}:lr=log(1e-4,1e-2)\" ([search.\"{opt.name}\"] in a suite file)")
    return {"lr": LogUniform(round6(lr / 10), round6(lr * 10))}, AROUND_DEFAULT_LR


def get_optimizer(name: str) -> OptimizerDef:
    """The definition behind ``name``: built in, ``po:NAME``, an import path or an entry point."""
    if name in REGISTRY:
        return REGISTRY[name]
    if name in REFERENCE:
        return REFERENCE[name]
    if name.startswith(plugins.ZOO_PREFIX):
        return _as_def(name, plugins.zoo_class(name), plugins.ZOO_PACKAGE, plugins.ZOO_PACKAGE)
    if ":" in name:
        module, _, attr = name.partition(":")
        return _as_def(name, plugins.load_import_path(name), "import path", f"'{attr}' in {module}")
    entry_points = plugins.entry_points()
    if name in entry_points:
        return _entry_point_optimizer(entry_points[name])
    err = unknown("optimizer", name, [*REGISTRY, *REFERENCE, *entry_points])
    raise UserError(f"{err}; or a plugin: {plugins.PLUGIN_SYNTAX}, or {plugins.ZOO_PREFIX}NAME ({plugins.ZOO_INSTALL})")


def code_version(name: str) -> dict[str, str]:
    """What pins the code of optimizer ``name`` that optbench's and torch's versions do not (those are
    in every record's environment), as entries of ``RunSpec.code``: none for the built-ins;
    ``{"optimizer": "<distribution>==<version>"}`` for the zoo and entry points; for an import path
    or a local file ``{"optimizer": "sha256:<first 16 hex digits of the class's source file>"}``, plus
    ``"optimizer:<path>"`` for each other file of its local code (``plugins.LocalCode``: the modules
    beside a plugin file or in its package that it imports; paths relative to the plugin's folder, or
    to the one that holds its package). A plugin without such modules keeps the one entry it had before they counted;
    so does one whose package has only an empty ``__init__.py``, as empty files are left out."""
    if name in REGISTRY or name in REFERENCE:
        return {}
    if name.startswith(plugins.ZOO_PREFIX):
        return {"optimizer": f"{plugins.ZOO_PACKAGE}=={plugins.zoo_version()}"}
    entry_points = plugins.entry_points()
    if ":" not in name and name in entry_points:
        dist = getattr(entry_points[name], "dist", None)
        return {"optimizer": f"{dist.name}=={dist.version}"} if dist is not None else {}
    source = _source_file(get_optimizer(name).load_class())
    if source is None:
        return {}
    try:
        code = {"optimizer": file_digest(source)}
    except OSError:
        return {}
    local = plugins.local_code(name)
    for relative in local.files if local is not None else ():
        path = local.root / relative
        with contextlib.suppress(OSError):  # a file deleted since it was imported pins nothing
            if path != source and path.stat().st_size:
                code[_code_key(relative)] = file_digest(path)
    return code


def _source_file(cls: type) -> Path | None:
    """The file that defines ``cls``, also where its module is no longer in sys.modules (a plugin's
    helper module, see ``plugins.LocalCode``): then the file of its methods' code."""
    try:
        source = inspect.getsourcefile(cls)
    except (OSError, TypeError):
        source = next((f.__code__.co_filename for f in vars(cls).values() if inspect.isfunction(f)), None)
    return Path(source).resolve() if source and Path(source).is_file() else None


def file_digest(path: Path) -> str:
    """``sha256:<first 16 hex digits>`` of a file: how a plugin's code entries pin its files."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _code_key(relative: str) -> str:
    # Keys name the file for `optbench check`; a deep path keeps its end, which names the file.
    return "optimizer:" + (relative if len(relative) <= 80 else "…" + relative[-79:])


def lookup_optimizer(name: str, load: bool = True) -> OptimizerDef | None:
    """Like ``get_optimizer`` but None where the name cannot be resolved here (a record made
    with a plugin this machine lacks): for labels and listings, which must not fail.

    With ``load=False`` a name that is not built in (an import path, a ``po:`` name, an entry
    point) resolves only if this process has already imported its module: names read from stored
    records never import code (nor torch, which every optimizer package imports).
    """
    try:
        if load or name in REGISTRY or name in REFERENCE:
            return get_optimizer(name)
        if name.startswith(plugins.ZOO_PREFIX):
            return get_optimizer(name) if plugins.ZOO_PACKAGE in sys.modules else None
        if ":" in name:
            obj = plugins.loaded_import_path(name)
            return None if obj is None else _as_def(name, obj, "import path", name)
        ep = plugins.entry_points().get(name)
        return get_optimizer(name) if ep is not None and ep.module in sys.modules else None
    except UserError:
        return None


def entry_point_optimizers() -> tuple[list[OptimizerDef], list[str]]:
    """Every optimizer packages register through entry points (built-in names win), and one
    line per entry point that fails to load."""
    defs, problems = [], []
    for name, ep in plugins.entry_points().items():
        if name in REGISTRY or name in REFERENCE:
            continue
        try:
            defs.append(_entry_point_optimizer(ep))
        except UserError as exc:
            problems.append(str(exc))
    return defs, problems


def _entry_point_optimizer(ep: importlib.metadata.EntryPoint) -> OptimizerDef:
    source = plugins.entry_point_source(ep)
    return _as_def(ep.name, plugins.load_entry_point(ep), source, f"{ep.value} ({source})")


def _as_def(name: str, obj: Any, source: str, where: str) -> OptimizerDef:
    """An OptimizerDef from an Optimizer subclass (defaults from its signature) or a ready one."""
    if isinstance(obj, OptimizerDef):
        return dataclasses.replace(obj, name=name, source=source)
    if plugins.is_optimizer_class(obj):
        return OptimizerDef.from_class(name, obj, source)
    kind = f"class {obj.__name__}" if isinstance(obj, type) else f"a {type(obj).__name__}"
    raise UserError(f"optimizer '{name}': {where} is not a torch.optim.Optimizer subclass (it is {kind})")


def spec_label(spec: RunSpec) -> str:
    """A run's short human name: ``adam``, or ``adam(lr=0.0003)`` where hyperparameters differ from
    the optimizer's defaults (then its per-optimizer training options: ``sgd(lr=0.1,clip_value=1)``), ``@fused`` where an implementation other than auto was asked for, and
    `` [vectorized]`` for the vectorized engine. Never imports a plugin (a stored spec's optimizer
    whose code is not loaded here shows all its hyperparameters)."""
    opt = lookup_optimizer(spec.optimizer, load=False)
    defaults = opt.defaults if opt is not None else {}
    changed = {k: v for k, v in spec.hparams.items() if defaults.get(k) != v}
    # Per-optimizer training options (clip_value, clip_norm) after the hyperparameters: they are
    # part of what this cell is, not of the budget its table shares (optbench.spec.training).
    shown = ",".join(filter(None, (format_hparams(changed), format_hparams(spec.training.optimizer_options()))))
    label = f"{spec.optimizer}({shown})" if shown else spec.optimizer
    label = label if spec.impl == "auto" else f"{label}@{spec.impl}"
    return label if spec.engine == "eager" else f"{label} [{spec.engine}]"
