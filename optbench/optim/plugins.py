"""Finding optimizer classes outside optbench: by import path, in a local file, through the
``optbench.optimizers`` entry-point group, or in the pytorch_optimizer zoo (``po:NAME``).

Each finder returns the object it found (a class, or whatever an entry point points at) or
raises UserError saying what to fix; ``optbench.optim.registry`` turns the object into an
OptimizerDef and checks that it is an optimizer.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from optbench.errors import UserError, did_you_mean

ENTRY_POINT_GROUP = "optbench.optimizers"
ZOO_PREFIX = "po:"
ZOO_PACKAGE = "pytorch_optimizer"
ZOO_INSTALL = 'pip install "optbench[zoo]"'
PLUGIN_SYNTAX = "module:Class or file.py:Class (e.g. mypkg.optim:Lion, my_opt.py:Lion)"


def is_optimizer_class(obj: Any) -> bool:
    import torch  # only asked of a loaded plugin object, whose module has imported torch already

    return isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer) and obj is not torch.optim.Optimizer


# --- import paths and local files ----------------------------------------------------------------

def load_import_path(name: str) -> Any:
    """The object ``name`` = ``module:Attr`` or ``path/to/file.py:Attr`` points at.

    A module is looked up on sys.path, then in the current directory (as ``python -m`` would);
    a file path is relative to the current directory.
    """
    module_part, _, attr = name.partition(":")
    if not module_part or not all(part.isidentifier() for part in attr.split(".")):
        raise UserError(f"bad optimizer '{name}'; write {PLUGIN_SYNTAX}")
    module = _load_module(module_part, name)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            found = sorted(k for k, v in vars(module).items() if is_optimizer_class(v))
            raise UserError(
                f"optimizer '{name}': {module_part} has no '{attr}'{did_you_mean(attr, found)}; "
                f"optimizer classes in it: {', '.join(found) or 'none'}"
            )
        obj = getattr(obj, part)
    return obj


def _load_module(spec: str, name: str) -> ModuleType:
    if spec.endswith(".py") or "/" in spec or os.sep in spec:
        return _load_file(Path(spec), name)
    cwd = os.getcwd()
    extra = [] if cwd in sys.path or "" in sys.path else [cwd]
    sys.path.extend(extra)  # last, so an installed module of the same name wins
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name and (spec == exc.name or spec.startswith(exc.name + ".")):
            raise UserError(
                f"optimizer '{name}': no module named '{exc.name}' (not installed, and no {exc.name}.py in {cwd}); "
                f"check the spelling, install the package, or run from the folder that holds it"
            ) from None
        raise UserError(f"optimizer '{name}': importing {spec} failed: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any error in someone else's module is theirs to fix
        raise UserError(f"optimizer '{name}': importing {spec} failed: {type(exc).__name__}: {exc}") from None
    except ESCAPES as exc:
        raise UserError(f"optimizer '{name}': importing {spec} {_escape(exc)}") from None
    finally:
        for path in extra:
            sys.path.remove(path)


def loaded_import_path(name: str) -> Any | None:
    """What ``load_import_path(name)`` returns if its module is already imported in this process,
    else None; never imports. For names read from stored records (labels): a record must not make
    optbench run code from the current folder or import an arbitrary module."""
    module_part, _, attr = name.partition(":")
    if not module_part or any(ord(c) < 32 for c in name):
        return None
    if module_part.endswith(".py") or "/" in module_part or os.sep in module_part:
        try:
            module = sys.modules.get(_file_module_name(Path(module_part).expanduser().resolve()))
        except (OSError, ValueError, RuntimeError):
            return None
    else:
        module = sys.modules.get(module_part)
    obj: Any = module
    for part in attr.split("."):
        if obj is None or not part.isidentifier():
            return None
        obj = getattr(obj, part, None)
    return obj


def _file_module_name(resolved: Path) -> str:
    # One module per file path, loaded once per process.
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:8]
    return f"_optbench_plugin_{digest}_{''.join(c if c.isalnum() else '_' for c in resolved.stem)}"


def _load_file(path: Path, name: str) -> ModuleType:
    if any(ord(c) < 32 for c in str(path)):
        raise UserError(f"optimizer '{name}': the path {str(path)!r} contains a control character; remove it")
    resolved = path.expanduser().resolve()
    if not resolved.is_file():
        raise UserError(f"optimizer '{name}': no file {resolved}; give the path of a .py file, relative to {os.getcwd()}")
    module_name = _file_module_name(resolved)
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise UserError(f"optimizer '{name}': {resolved} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001
        del sys.modules[module_name]
        raise UserError(f"optimizer '{name}': running {resolved} failed: {type(exc).__name__}: {exc}") from None
    except ESCAPES as exc:
        del sys.modules[module_name]
        raise UserError(f"optimizer '{name}': running {resolved} {_escape(exc)}") from None
    return module


# Raised by a plugin's module code (sys.exit(), exit(), a stray KeyboardInterrupt), they would end
# optbench with the plugin's exit code and nothing run; they are the plugin's error instead.
ESCAPES = (SystemExit, KeyboardInterrupt)


def _escape(exc: BaseException) -> str:
    what = f"called exit({exc.code!r})" if isinstance(exc, SystemExit) else f"raised {type(exc).__name__}"
    return f"{what} while being imported; a plugin module must only define its optimizer classes"


# --- entry points --------------------------------------------------------------------------------

def entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """The ``optbench.optimizers`` entry points of installed packages, by name (the first wins)."""
    return _entry_points_on(tuple(sys.path))


@functools.lru_cache(maxsize=4)
def _entry_points_on(path: tuple[str, ...]) -> dict[str, importlib.metadata.EntryPoint]:
    # Scanning every installed distribution takes milliseconds; `path` is the cache key only, so
    # a changed sys.path (a newly added folder of packages) is scanned afresh.
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ":" not in ep.name:  # such a name would parse as an import path
            found.setdefault(ep.name, ep)
    return found


def entry_point_source(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"entry point of {dist.name}" if dist is not None else "entry point"


def load_entry_point(ep: importlib.metadata.EntryPoint) -> Any:
    try:
        return ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken package must not take optbench down
        raise UserError(
            f"optimizer '{ep.name}' ({entry_point_source(ep)}, {ep.value}) cannot be loaded: {type(exc).__name__}: {exc}"
        ) from None
    except ESCAPES as exc:
        raise UserError(f"optimizer '{ep.name}' ({entry_point_source(ep)}, {ep.value}) cannot be loaded: it {_escape(exc)}") from None


# --- the third-party zoo (pytorch_optimizer) -----------------------------------------------------

def _zoo_module() -> ModuleType | None:
    try:
        import pytorch_optimizer
    except ImportError:
        return None
    return pytorch_optimizer


def zoo_names() -> list[str] | None:
    """The ``po:NAME`` names of the pytorch_optimizer package, or None when it is not installed."""
    zoo = _zoo_module()
    return None if zoo is None else [ZOO_PREFIX + n for n in zoo.get_supported_optimizers()]


def zoo_version() -> str | None:
    try:
        return importlib.metadata.version(ZOO_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def zoo_class(name: str) -> Any:
    """The pytorch_optimizer class behind ``po:NAME``."""
    zoo = _zoo_module()
    if zoo is None:
        raise UserError(f"optimizer '{name}' comes from the {ZOO_PACKAGE} package, which is not installed; {ZOO_INSTALL}")
    names = zoo.get_supported_optimizers()
    key = name.removeprefix(ZOO_PREFIX)
    if key not in names:
        hint = did_you_mean(name, [ZOO_PREFIX + n for n in names])
        raise UserError(f"unknown optimizer '{name}'{hint}; `optbench list` shows the {len(names)} {ZOO_PREFIX} names")
    return zoo.load_optimizer(key)
