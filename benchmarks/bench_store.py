"""What the validated record reader costs: reading a results folder with optbench's reader
(regular-file check, size cap, strict depth-checked JSON, the pydantic schema with its spec-hash
check, and the newest-finished rule) against a bare ``json.loads`` of every file, and the parser the
reader uses (pydantic-core's ``from_json``) against ``json.loads`` alone.

Both read the same folder of real records (the regression task, 50 epochs of curve each),
interleaved, best of ``--repeats``; the page cache is warm for both.

    python benchmarks/bench_store.py [--records 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

from pydantic_core import from_json

from optbench.engine.eager import run
from optbench.config.suite import build_specs, load_suite
from optbench.spec import RunSpec
from optbench.store.records import RUNS, load_records, save_record


def make_folder(folder: Path, count: int) -> None:
    suite = load_suite(None, {"optimizers": ["sgd"], "epochs": 50, "device": "cpu"})
    base = run(build_specs(suite)[0]).to_record()
    for seed in range(count):
        spec = RunSpec.from_dict({**base["spec"], "seed": seed})
        save_record({**base, "spec": spec.to_dict(), "spec_hash": spec.spec_hash(), "cell_hash": spec.cell_hash(),
                     "run_id": uuid.uuid4().hex[:12]}, folder)


def bare(folder: Path) -> int:
    return len([json.loads(p.read_text()) for p in sorted((folder / RUNS).glob("*.json"))])


def fast(folder: Path) -> int:
    return len([from_json(p.read_bytes(), allow_inf_nan=False) for p in sorted((folder / RUNS).glob("*.json"))])


def validated(folder: Path) -> int:
    return len(load_records([folder])[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_folder(folder, args.records)
        best = {"bare": float("inf"), "fast": float("inf"), "validated": float("inf")}
        for _ in range(args.repeats):
            for name, fn in (("bare", bare), ("fast", fast), ("validated", validated)):
                start = time.perf_counter()
                assert fn(folder) == args.records
                best[name] = min(best[name], time.perf_counter() - start)
    per = {k: 1e3 * v / args.records for k, v in best.items()}
    print(f"{args.records} records: bare json.loads {per['bare']:.3f} ms/record, "
          f"validated reader {per['validated']:.3f} ms/record, ratio {best['validated'] / best['bare']:.2f}x; "
          f"pydantic-core from_json {per['fast']:.3f} ms/record, json.loads / from_json {best['bare'] / best['fast']:.2f}x")


if __name__ == "__main__":
    main()
