"""Claims: at most one process on a machine runs a given spec at a time.

Before a run starts, its runner claims the spec hash: an exclusive ``flock`` on
``<results-dir>/.claims/<spec_hash>``. A second ``optbench run`` over the same results folder
finds the claim held, runs its other specs first, then waits for the claim and skips the spec if
the first process recorded it (or runs it, if that process failed or was killed). The lock is the
kernel's, so a claim can never go stale: it ends with its process, however that process ends
(SIGKILL included), and the next claimer takes it over. The claim file is removed on release.

On a network file system without working ``flock`` two machines may still run one spec twice;
the store's newest-finished rule (``optbench.store.records.newest_per_spec``) then counts it once.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

from optbench.errors import UserError

CLAIMS = ".claims"


class Claim:
    """A held claim; ``release`` (or leaving the ``with`` block) gives it up and removes its file."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd, self.path = fd, path

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still locked: a waiter then sees a fresh file
        except OSError:
            pass
        os.close(self.fd)  # closing drops the lock
        self.fd = -1

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def claim(results_dir: Path, spec_hash: str, wait: bool = False) -> Claim | None:
    """Claim ``spec_hash``; None when another process holds it (unless ``wait``: then block until it is free).

    Raises OSError when the claim file cannot be created (a full disk, a read-only folder).
    """
    folder = Path(results_dir) / CLAIMS
    path = folder / spec_hash
    while True:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            # read-only: an open claim never keeps the file system from being remounted read-only;
            # without blocking and without following a link, so a named pipe or a link to a device
            # put there is refused at once (fstat below) instead of hanging the run
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW, 0o644)
        except FileNotFoundError:
            continue  # the folder was removed between mkdir and open
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symbolic link
                raise UserError(_not_a_claim(path, "a symbolic link")) from None
            raise
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise UserError(_not_a_claim(path, "not a regular file"))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:  # the holder before us may have released (unlinked) the file we locked: lock the new one
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        return Claim(fd, path)


def _not_a_claim(path: Path, what: str) -> str:
    return (f"claim file {path} is {what}, not one optbench made; remove it "
            "(optbench removes its claims when a run ends) and run the same command again")


def remove_claims_folder(results_dir: Path) -> None:
    """Remove ``.claims`` if no claim file is left in it (another process may be using it: then it stays)."""
    try:
        (Path(results_dir) / CLAIMS).rmdir()
    except OSError:
        pass
