"""Experiments: which invocation or suite each stored run belonged to, and choosing among them.

Every record carries ``experiment`` (``optbench run --name``, the suite's name or file stem, or a
name derived from what the invocation asked for, ``optbench.config.experiment``; records of older
versions may say ``run-<local date-time>``); records written before that field existed count as
one experiment named ``unnamed``. ``optbench report`` keeps experiments apart (one section each) and selects them
with ``--name`` / ``--latest``; ``optbench list-runs`` lists them (``summaries``).

Pure functions of record dicts: no pandas, no torch, no printing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from optbench.errors import UserError, did_you_mean
from optbench.spec import STATUSES
from optbench.store.records import newest_per_spec

UNNAMED = "unnamed"


def experiment_of(record: dict[str, Any]) -> str:
    return record.get("experiment") or UNNAMED


def by_experiment(records: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """experiment -> its records, one per spec (the newest finished one wins, as everywhere), the
    experiments in the order they started (oldest first)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        groups.setdefault(experiment_of(rec), []).append(rec)
    ordered = sorted(groups.items(), key=lambda kv: (min(r["started_at"] for r in kv[1]), kv[0]))
    return {name: newest_per_spec(recs) for name, recs in ordered}


def select(groups: dict[str, list[dict[str, Any]]], names: list[str] | None = None,
           latest: bool = False) -> dict[str, list[dict[str, Any]]]:
    """The experiments ``names`` or, with ``latest``, the newest one (the one whose last run
    started last); all of them when neither is given. In ``groups``' order (oldest first).

    Raises UserError for a name the results do not hold (with a did-you-mean and the names they
    do hold) and for ``names`` together with ``latest``.
    """
    if names and latest:
        raise UserError("--name and --latest both choose experiments; pass one of them")
    if latest:
        newest = max(groups, key=lambda n: (max(r["started_at"] for r in groups[n]), n))
        return {newest: groups[newest]}
    if not names:
        return groups
    for name in names:
        if name not in groups:
            held = list(groups)
            raise UserError(f"no experiment named '{name}'{did_you_mean(name, held)}; the results hold: "
                            f"{', '.join(held)} (see `optbench list-runs`)")
    return {name: recs for name, recs in groups.items() if name in names}


@dataclass
class Summary:
    """One experiment as ``optbench list-runs`` shows it. Times: UTC, ISO 8601."""

    name: str
    started: str
    finished: str
    records: int
    statuses: dict[str, int]
    tasks: list[str]
    optimizers: list[str]
    stages: list[str]
    targets: list[str]
    command: str | None = None  # the newest record's invocation (None for records made before it was stored)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summaries(groups: dict[str, list[dict[str, Any]]]) -> list[Summary]:
    """Per experiment (in ``groups``' order): when it ran, its records by status (``ok``,
    ``diverged``, ...; statuses with none left out), tasks (``task/dataset``), optimizer names,
    ``--select`` stages and time-to-target goals it holds."""
    out = []
    for name, recs in groups.items():
        counts = Counter(r["status"] for r in recs)
        targets = {f"{t['metric']}={t['value']:g}" for r in recs if isinstance(t := r.get("target"), dict)
                   and "metric" in t and isinstance(t.get("value"), (int, float))}
        out.append(Summary(
            name=name,
            started=min(r["started_at"] for r in recs),
            finished=max(r["finished_at"] for r in recs),
            records=len(recs),
            statuses={s: counts[s] for s in STATUSES if counts[s]},
            tasks=sorted({f"{r['spec']['task']}/{r['spec']['dataset']}" for r in recs}),
            optimizers=sorted({r["spec"]["optimizer"] for r in recs}),
            stages=sorted({r["stage"] for r in recs if r.get("stage")}),
            targets=sorted(targets),
            command=max(recs, key=lambda r: r["finished_at"]).get("command"),
        ))
    return out
