"""Finding optimizer classes outside optbench: by import path, in a local file, through the
``optbench.optimizers`` entry-point group, or in the pytorch_optimizer zoo (``po:NAME``).

Each finder returns the object it found (a class, or whatever an entry point points at) or
raises UserError saying what to fix; ``optbench.optim.registry`` turns the object into an
OptimizerDef and checks that it is an optimizer.
"""

from __future__ import annotations

import ast
import collections
import contextlib
import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from optbench.errors import UserError, did_you_mean
from optbench.limits import MAX_LOCAL_FILES

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
        return _import_plugin(spec, lambda: importlib.import_module(spec))
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
    loader, module = spec.loader, importlib.util.module_from_spec(spec)

    def execute() -> ModuleType:
        loader.exec_module(module)
        return module

    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    try:
        # As `python my_opt.py` would have it, its folder is first on sys.path: it may import modules beside it.
        _import_plugin(module_name, execute, folder=resolved.parent)
    except Exception as exc:  # noqa: BLE001
        del sys.modules[module_name]
        raise UserError(f"optimizer '{name}': running {resolved} failed: {type(exc).__name__}: {exc}") from None
    except ESCAPES as exc:
        del sys.modules[module_name]
        raise UserError(f"optimizer '{name}': running {resolved} {_escape(exc)}") from None
    return module


# --- a plugin's own code: its module and the local modules it imports ----------------------------

@dataclass(frozen=True)
class LocalCode:
    """The source files of a plugin's own code, for its code version
    (``optbench.optim.registry.code_version``): its module and the local modules it imports, directly
    or through each other. ``root`` is the plugin file's folder, or the folder that holds its
    top-level module or package; ``files`` are paths relative to it (``/``-separated), sorted.

    Local modules are the ``.py`` files of the modules in the plugin file's folder (for a file, or a
    top-level module imported by name) or in its top-level package; not standard-library modules,
    nor ones this process had imported before the plugin (optbench, torch). A module counts when
    importing the plugin loaded it, or when an import statement of a local file names it (also one
    inside a function). A plugin in an installed distribution has no LocalCode."""

    root: Path
    files: tuple[str, ...]


# By the plugin module's name in sys.modules; None for a module of an installed distribution.
_LOCAL_CODE: dict[str, LocalCode | None] = {}


def local_code(name: str) -> LocalCode | None:
    """The local code of the plugin ``name`` (``module:Attr`` or ``file.py:Attr``) loaded in this
    process; None for a module of an installed distribution, or one not loaded here."""
    module_part = name.partition(":")[0]
    if module_part.endswith(".py") or "/" in module_part or os.sep in module_part:
        return _LOCAL_CODE.get(_file_module_name(Path(module_part).expanduser().resolve()))
    return _LOCAL_CODE.get(module_part)


def _import_plugin(key: str, load: Callable[[], ModuleType], folder: Path | None = None) -> ModuleType:
    """``load()``, the import of the plugin module that sys.modules holds as ``key``, recording its
    LocalCode. With ``folder`` (a plugin file's), that folder is first on sys.path for the import
    only. The local modules it imported leave sys.modules again unless they are a package's (which
    its other plugin modules share): a plugin in another folder with its own ``helper.py`` must import
    its own, not this one's."""
    if folder is None and key in _LOCAL_CODE and key in sys.modules:
        return sys.modules[key]  # imported and recorded before
    before = set(sys.modules)
    if folder is not None:
        sys.path.insert(0, str(folder))
    root, package = folder, None
    try:
        module = load()
        if folder is None:
            where = _import_path_root(key, module)
            if where is None:
                _LOCAL_CODE[key] = None
                return module
            root, package = where
        loaded = [getattr(sys.modules[n], "__file__", None) for n in _loaded_local(key, root, package, before)]
        first = [Path(str(module.__file__)).resolve(), *sorted(Path(f).resolve() for f in loaded if f and f.endswith(".py"))]
        _LOCAL_CODE[key] = LocalCode(root, _local_files(root, first, lambda n: _is_local(n, root, package, before)))
        return module
    finally:
        if folder is not None:
            with contextlib.suppress(ValueError):  # the plugin may have taken it out itself
                sys.path.remove(str(folder))
        if root is not None and package is None:
            for n in _loaded_local(key, root, package, before):
                if not getattr(sys.modules[n], "__file__", None) or sys.modules[n].__file__.endswith(".py"):
                    del sys.modules[n]  # not a C extension's: those may not be imported twice


def _import_path_root(key: str, module: ModuleType) -> tuple[Path, str | None] | None:
    """For a module imported by name: the folder its module names start from, and its top-level
    package (None for a top-level module, whose neighbours in that folder are its local modules);
    None for a module of an installed distribution, or one without a file."""
    top = key.partition(".")[0]
    file = getattr(module, "__file__", None)
    if not file or top in _distribution_packages(tuple(sys.path)):
        return None
    path = Path(file).resolve()
    depth = key.count(".") + (path.name == "__init__.py")
    if depth >= len(path.parents):  # a module whose file is not where its name says
        return None
    return path.parents[depth], (top if depth else None)


@functools.lru_cache(maxsize=4)
def _distribution_packages(path: tuple[str, ...]) -> frozenset[str]:
    # The top-level import names of installed distributions; `path` is the cache key only.
    return frozenset(importlib.metadata.packages_distributions())


def _is_local(name: str, root: Path, package: str | None, preloaded: set[str]) -> bool:
    """Whether the module ``name`` is a plugin's own: in its package, or (``package`` None) a
    module or package in ``root`` that this process had not imported from elsewhere before."""
    top = name.partition(".")[0]
    if package is not None:
        return top == package
    return (top not in preloaded and top not in sys.stdlib_module_names
            and ((root / f"{top}.py").is_file() or (root / top).is_dir()))


def _loaded_local(key: str, root: Path, package: str | None, before: set[str]) -> list[str]:
    """The local modules that sys.modules holds now and did not before, but the plugin's module."""
    return [n for n in sys.modules.keys() - before
            if n != key and _is_local(n, root, package, before) and _lies_under(sys.modules[n], root)]


def _lies_under(module: ModuleType | None, root: Path) -> bool:
    where = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", None) or ()), None)
    try:
        return where is not None and Path(where).resolve().is_relative_to(root)
    except (OSError, RuntimeError, ValueError):
        return False


def _local_files(root: Path, first: list[Path], is_local: Callable[[str], bool]) -> tuple[str, ...]:
    """``first`` and the local files their import statements name, followed through each other."""
    seen: list[Path] = []
    queue = collections.deque(first)
    while queue and len(seen) < MAX_LOCAL_FILES:
        path = queue.popleft()
        if path in seen or not path.is_relative_to(root):
            continue
        seen.append(path)
        queue += [f for n in sorted(_imported_names(path, root)) if is_local(n) and (f := _module_file(root, n))]
    return tuple(sorted(p.relative_to(root).as_posix() for p in seen))


def _imported_names(path: Path, root: Path) -> set[str]:
    """The modules the import statements of ``path`` name, with their parent packages."""
    package = ".".join(path.relative_to(root).parts[:-1])  # what a relative import starts from
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            try:
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            except (ImportError, ValueError):  # a relative import beyond the top: it cannot run either
                continue
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")  # maybe submodules
    return {".".join(parts[:i]) for parts in (n.split(".") for n in names) for i in range(1, len(parts) + 1)}


def _module_file(root: Path, name: str) -> Path | None:
    """The source file of the module ``name`` under ``root`` (``a/b.py`` or ``a/b/__init__.py``), if any."""
    *parents, last = name.split(".")
    for candidate in (root.joinpath(*parents, f"{last}.py"), root.joinpath(*parents, last, "__init__.py")):
        if candidate.is_file():
            resolved = candidate.resolve()
            return resolved if resolved.is_relative_to(root) else None
    return None


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
