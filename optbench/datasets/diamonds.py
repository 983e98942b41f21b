"""The seaborn diamonds table (53,940 diamonds: carat, cut, color, clarity, depth, table, price, x, y, z).

Read from ``<data-dir>/diamonds.csv``; downloaded there once from the seaborn-data repository
when missing (size and time limited, optbench.datasets.download), and checked against the
published file's SHA-256.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from optbench.datasets.download import ensure_file
from optbench.errors import UserError
from optbench.files import Refused, read_regular
from optbench.limits import MAX_ABS_VALUE, MAX_TABLE_BYTES, MIN_TABLE_ROWS
from optbench.spec.dataset import SAMPLE_SEED

URL = "https://raw.githubusercontent.com/mwaskom/seaborn-data/master/diamonds.csv"
# A mirror (or a local file server) can stand in for the repository; the checksum still applies.
URL_VARIABLE = "OPTBENCH_DIAMONDS_URL"
SHA256 = "9574730b03aba241d899c4a97511c5061b19358fab89510774fb6c24168345c4"
FILENAME = "diamonds.csv"
# The published file is 2,772,143 bytes; a download sending far more is not it.
MAX_DIAMONDS_BYTES = 16 * 2**20
NUMERIC = ["carat", "depth", "table", "price", "x", "y", "z"]
CATEGORICAL = {
    "cut": ["Fair", "Good", "Very Good", "Premium", "Ideal"],
    "color": ["D", "E", "F", "G", "H", "I", "J"],
    "clarity": ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"],
}


def ensure_diamonds(data_dir: Path) -> Path:
    """Path to diamonds.csv in ``data_dir``, downloading and verifying it first if missing."""
    return ensure_file(Path(data_dir) / FILENAME, URL_VARIABLE, URL, SHA256,
                       "copy diamonds.csv there or pass --data-dir DIR that holds it", MAX_DIAMONDS_BYTES)


def load_diamonds(data_dir: Path, rows: int | None = None) -> pd.DataFrame:
    """The validated table: a regular file within the size limit, every required column present,
    numeric columns finite and within MAX_ABS_VALUE, enough rows for the splits. With ``rows``, a
    seeded sample of that many rows (``sample_rows``; more than the table has is a UserError)."""
    path = ensure_diamonds(data_dir)
    try:
        raw = read_regular(path, MAX_TABLE_BYTES)
    except Refused as exc:
        raise UserError(f"{path} cannot be read: {exc}; replace it with the seaborn diamonds table, "
                        "or delete it to download it again") from None
    try:
        df = pd.read_csv(io.BytesIO(raw))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path} is not a readable CSV file ({str(exc).strip().splitlines()[0]}); delete it to download it again") from None
    missing = [c for c in [*NUMERIC, *CATEGORICAL] if c not in df.columns]
    if missing:
        raise UserError(f"{path} lacks column(s) {', '.join(missing)}; it must be the seaborn diamonds table")
    if df.empty:
        raise UserError(f"{path} has no rows; delete it to download it again")
    for col in NUMERIC:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() | ~values.abs().lt(float("inf"))
        if bad.any():
            row = int(bad.to_numpy().argmax())
            value = df[col].iloc[row]
            shown = repr(value) if isinstance(value, str) else str(value)  # text quoted, a number plain: nan, not np.float64(nan)
            raise UserError(
                f"{path}: column '{col}' has a non-numeric or non-finite value {shown} "
                f"on data row {row + 1}; fix or delete the file"
            )
        absurd = values.abs().gt(MAX_ABS_VALUE)
        if absurd.any():
            row = int(absurd.to_numpy().argmax())
            raise UserError(f"{path}: column '{col}' has the value {values.iloc[row]:g} on data row {row + 1}, "
                            f"beyond +-{MAX_ABS_VALUE:g}; fix or delete the file")
        df[col] = values.astype(float)
    for col, levels in CATEGORICAL.items():
        unknown = sorted(set(df[col].astype(str)) - set(levels))
        if unknown:
            raise UserError(f"{path}: column '{col}' has unknown value(s) {', '.join(unknown[:3])}; expected {', '.join(levels)}")
    if len(df) < MIN_TABLE_ROWS:
        raise UserError(f"{path} has {len(df)} data row(s); the train/test and validation splits need at least "
                        f"{MIN_TABLE_ROWS}; use the full table (delete the file to download it again)")
    if rows is not None:
        if rows > len(df):
            raise UserError(f"diamonds:rows={rows} asks for more rows than {path} has ({len(df):,}); "
                            f"choose rows={len(df)} or fewer")
        df = sample_rows(df, rows)
    return df


def sample_rows(df: pd.DataFrame, rows: int) -> pd.DataFrame:
    """``rows`` rows of ``df``: its row order shuffled by ``numpy.random.RandomState(SAMPLE_SEED)``,
    then the first ``rows`` (optbench.spec.dataset): the same rows on every call, for every run."""
    order = np.arange(len(df))
    np.random.RandomState(SAMPLE_SEED).shuffle(order)
    return df.iloc[order[:rows]].reset_index(drop=True)
