"""The tiny-shakespeare text (Karpathy's char-rnn corpus: 40,000 lines of Shakespeare's plays in
one plain ASCII file, 1,115,394 bytes; public domain), read as one string.

Read from ``<data-dir>/tinyshakespeare.txt``; downloaded there once when missing (size and time
limited, optbench.datasets.download) and checked against the published file's SHA-256, on download
and on every read (hashing 1 MB takes milliseconds): a file by that name with other text is not
tiny-shakespeare, and results on it would carry the wrong name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from optbench.datasets.download import ensure_file
from optbench.errors import UserError
from optbench.files import Refused, read_regular
from optbench.limits import MAX_TEXT_BYTES

URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
# A mirror (or a local file server) can stand in for the repository; the checksum still applies.
URL_VARIABLE = "OPTBENCH_TINYSHAKESPEARE_URL"
SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TEXT_BYTES = 1_115_394
FILENAME = "tinyshakespeare.txt"


def ensure_tinyshakespeare(data_dir: Path) -> Path:
    """Path to tinyshakespeare.txt in ``data_dir``, downloading and verifying it first if missing."""
    return ensure_file(Path(data_dir) / FILENAME, URL_VARIABLE, URL, SHA256,
                       "copy the tiny-shakespeare text (char-rnn's input.txt) there under that name, pass --data-dir "
                       "DIR that holds it, or use --dataset synthetic for an offline run", TEXT_BYTES)


def load_tinyshakespeare(data_dir: Path) -> str:
    """The text: a regular file within ``MAX_TEXT_BYTES`` whose SHA-256 is the published one, decoded as UTF-8."""
    path = ensure_tinyshakespeare(data_dir)
    again = "delete it to download it again"
    try:
        raw = read_regular(path, MAX_TEXT_BYTES)
    except Refused as exc:
        raise UserError(f"{path} cannot be read: {exc}; {again}") from None
    if hashlib.sha256(raw).hexdigest() != SHA256:
        raise UserError(f"{path} fails its SHA-256 checksum (it is not the published tiny-shakespeare text); {again}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:  # only where SHA256 stands for another text (the tests' own)
        raise UserError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); {again}") from None
