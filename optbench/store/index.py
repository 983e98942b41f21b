"""The finished runs of one results folder, read once per campaign: what resume decides from.

``RecordIndex`` lists ``<results-dir>/runs/`` and reads each ``*.json`` file once, with the store's
reader (``optbench.store.records.read_record``: regular files only, size cap, strict JSON, the
schema and its spec-hash check), and keeps the newest finished record of each spec hash, by the
store's rule (``newest_per_spec``). A file counts for a spec only when its name carries the hash
(``*_<spec_hash>_*.json``, as the store names it), so the index decides exactly what looking up
that one spec's files would. Files that are not records are kept as ``problems`` (warned about, as
by ``load_records``).

``refresh`` lists the folder again (names only) and reads just the files that appeared since;
records are never rewritten in place (``save_record`` links a whole file under a new name), so a
name already read needs no second look, and a name that disappeared drops out. The campaign
driver refreshes after it takes a spec's claim (``optbench.store.claims``): another process
records a spec while holding its claim, so a record made before the claim was taken is seen then.
A campaign whose specs are all finished reads every record once and lists the folder once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from optbench.files import Refused
from optbench.spec import FINISHED
from optbench.store.records import RUNS, Problem, age_key, read_record

_SUFFIX = ".json"


class RecordIndex:
    """The newest finished record of each spec hash under ``<results_dir>/runs/`` (see the module)."""

    def __init__(self, results_dir: Path) -> None:
        self.runs = Path(results_dir) / RUNS
        self.problems: list[Problem] = []  # the files read so far that are not run records
        self._names: dict[str, str | None] = {}  # every *.json name read -> the spec hash it counts for, or None
        self._best: dict[str, tuple[str, dict[str, Any]]] = {}  # spec hash -> (name, newest finished record)
        self._read_once = False

    @classmethod
    def read(cls, results_dir: Path) -> RecordIndex:
        """The index of ``results_dir`` now (empty when it has no ``runs/`` folder)."""
        index = cls(results_dir)
        index.refresh()
        return index

    def finished(self, spec_hash: str) -> dict[str, Any] | None:
        """The newest finished record of ``spec_hash`` as of the last ``refresh`` (the first is made here)."""
        if not self._read_once:
            self.refresh()
        best = self._best.get(spec_hash)
        return best[1] if best else None

    def refresh(self) -> None:
        """Read the files added since the last listing; forget those gone."""
        self._read_once = True
        names = {name for name in self._listing() if name.endswith(_SUFFIX)}
        for name in self._names.keys() - names:
            self._forget(name)
        for name in sorted(names - self._names.keys()):
            self._names[name] = self._add(name)

    def _listing(self) -> list[str]:
        try:
            return os.listdir(self.runs)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def _add(self, name: str) -> str | None:
        path = self.runs / name
        try:
            rec = read_record(path)
        except Refused as exc:
            self.problems.append(Problem(path, str(exc)))
            return None
        spec_hash = rec["spec_hash"]
        # As the store names records: <stamp>_<task>_<optimizer>_s<seed>_<spec_hash>_<run_id>.json
        if rec["status"] not in FINISHED or f"_{spec_hash}_" not in name[:-len(_SUFFIX)]:
            return None
        best = self._best.get(spec_hash)
        if best is None or age_key(rec) > age_key(best[1]):
            self._best[spec_hash] = (name, rec)
        return spec_hash

    def _forget(self, name: str) -> None:
        spec_hash = self._names.pop(name)
        self.problems = [p for p in self.problems if p.path.name != name]
        best = self._best.get(spec_hash) if spec_hash else None
        if best is None or best[0] != name:
            return
        del self._best[spec_hash]  # its newest record is gone: the next newest, from the files left
        for other in [n for n, h in self._names.items() if h == spec_hash]:
            self._names[other] = self._add(other)
