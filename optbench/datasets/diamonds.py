"""The seaborn diamonds table (53,940 diamonds: carat, cut, color, clarity, depth, table, price, x, y, z).

Read from ``<data-dir>/diamonds.csv``; downloaded there once from the seaborn-data repository
when missing, and checked against the published file's SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd

from optbench.errors import UserError
from optbench.files import write_atomic

URL = "https://raw.githubusercontent.com/mwaskom/seaborn-data/master/diamonds.csv"
# A mirror (or a local file server) can stand in for the repository; the checksum still applies.
URL_VARIABLE = "OPTBENCH_DIAMONDS_URL"
SHA256 = "9574730b03aba241d899c4a97511c5061b19358fab89510774fb6c24168345c4"
FILENAME = "diamonds.csv"
NUMERIC = ["carat", "depth", "table", "price", "x", "y", "z"]
CATEGORICAL = {
    "cut": ["Fair", "Good", "Very Good", "Premium", "Ideal"],
    "color": ["D", "E", "F", "G", "H", "I", "J"],
    "clarity": ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"],
}


def ensure_diamonds(data_dir: Path) -> Path:
    """Path to diamonds.csv in ``data_dir``, downloading and verifying it first if missing."""
    path = Path(data_dir) / FILENAME
    if path.exists():
        return path
    url = os.environ.get(URL_VARIABLE) or URL
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=30) as response:
            payload = response.read()
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise UserError(
            f"{path} not found and the download from {url} failed ({exc}); "
            f"copy diamonds.csv there or pass --data-dir DIR that holds it"
        ) from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != SHA256:
        raise UserError(f"downloaded diamonds.csv has SHA-256 {digest}, expected {SHA256}; nothing was saved, try again")
    return write_atomic(path, payload)


def load_diamonds(data_dir: Path) -> pd.DataFrame:
    """The validated table: every required column present, numeric columns finite."""
    path = ensure_diamonds(data_dir)
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not a readable CSV file ({exc}); delete it to download it again") from None
    missing = [c for c in [*NUMERIC, *CATEGORICAL] if c not in df.columns]
    if missing:
        raise UserError(f"{path} lacks column(s) {', '.join(missing)}; it must be the seaborn diamonds table")
    if df.empty:
        raise UserError(f"{path} has no rows; delete it to download it again")
    for col in NUMERIC:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() | ~values.abs().lt(float("inf"))
        if bad.any():
            row = int(bad.idxmax())
            raise UserError(
                f"{path}: column '{col}' has a non-numeric or non-finite value {df[col].iloc[row]!r} "
                f"on data row {row + 1}; fix or delete the file"
            )
        df[col] = values.astype(float)
    for col, levels in CATEGORICAL.items():
        unknown = sorted(set(df[col].astype(str)) - set(levels))
        if unknown:
            raise UserError(f"{path}: column '{col}' has unknown value(s) {', '.join(unknown[:3])}; expected {', '.join(levels)}")
    return df
