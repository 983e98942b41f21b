"""CIFAR-10 in its published on-disk format (``<data-dir>/cifar-10-batches-py``), read into tensors.

The archive is downloaded once (optbench.datasets.download: size and time limited, MD5 checked)
and only its batch files are extracted; every batch file is verified against its published MD5
before it is unpickled. Images are returned as uint8 tensors so
that the whole set is preprocessed once, on the run's device, not per image in the training loop.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

from optbench.datasets.download import missing_parents, fetch_or_fail, remove_empty
from optbench.errors import UserError
from optbench.files import Refused, read_regular

BASE_FOLDER = "cifar-10-batches-py"
# The archive and its files as published (the same figures torchvision checks).
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
URL_VARIABLE = "OPTBENCH_CIFAR10_URL"  # a mirror, or a local file server; the checksums still apply
ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_BYTES = 170_498_071
TRAIN_LIST = [("data_batch_1", "c99cafc152244af753f735de768cd75f"), ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
              ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"), ("data_batch_4", "634d18415352ddfa80567beed471001a"),
              ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb")]
TEST_LIST = [("test_batch", "40351d587109b95175f43aff81a1287e")]
META = ("batches.meta", "5ff9c542aee3614f3951f8cda6e48888")
# One batch file is 31 MB; anything much larger is not one (and is not hashed or unpickled).
MAX_BATCH_BYTES = 64 * 2**20


def ensure_cifar10(data_dir: Path) -> Path:
    """The batches folder in ``data_dir``, downloading (size and time limited, MD5 checked) and
    extracting the archive if any batch file is missing. Nothing is left behind on failure."""
    data_dir = Path(data_dir)
    folder = data_dir / BASE_FOLDER
    if all((folder / name).exists() for name, _ in TRAIN_LIST + TEST_LIST):
        return folder
    fix = (f"download and extract {ARCHIVE} into {data_dir}, pass --data-dir DIR that holds it, "
           "or use --dataset synthetic for an offline run")
    created = missing_parents(data_dir)
    archive = data_dir / ARCHIVE
    if not (archive.is_file() and archive.stat().st_size == ARCHIVE_BYTES and _md5(archive) == ARCHIVE_MD5):
        fetch_or_fail(os.environ.get(URL_VARIABLE) or URL, archive, "md5", ARCHIVE_MD5, f"CIFAR-10 in {folder}", fix,
                      max_bytes=ARCHIVE_BYTES)
    try:
        _extract(archive, data_dir)
    except (tarfile.TarError, OSError, EOFError) as exc:
        remove_empty(created)
        raise UserError(f"{archive} could not be extracted ({exc}); delete it to download it again") from None
    return folder


def _extract(archive: Path, data_dir: Path) -> None:
    """Only the batches folder's regular files, into a temporary folder that is renamed into place."""
    names = {f"{BASE_FOLDER}/{name}" for name, _ in [*TRAIN_LIST, *TEST_LIST, META]}
    tmp = Path(tempfile.mkdtemp(dir=data_dir, prefix=".cifar-10-extract-"))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.name in names and m.isfile() and m.size <= MAX_BATCH_BYTES]
            tar.extractall(tmp, members=members, filter="data")
        target = data_dir / BASE_FOLDER
        if target.exists():
            shutil.rmtree(target)  # an incomplete copy: the archive has the whole set
        os.replace(tmp / BASE_FOLDER, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _md5(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def load_cifar10(data_dir: Path, verify: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)``: uint8 images (N, 3, 32, 32) and int64 labels."""
    folder = ensure_cifar10(data_dir) if verify else Path(data_dir) / BASE_FOLDER
    x_train, y_train = _read_batches(folder, TRAIN_LIST, verify)
    x_test, y_test = _read_batches(folder, TEST_LIST, verify)
    return x_train, y_train, x_test, y_test


def _read_batches(folder: Path, files: list[tuple[str, str]], verify: bool) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = [], []
    for name, md5 in files:
        path = folder / name
        if not path.exists():
            raise UserError(f"{path} is missing; delete {folder} to download CIFAR-10 again")
        try:
            raw = read_regular(path, MAX_BATCH_BYTES)  # a pipe or device is refused, never read
        except Refused as exc:
            raise UserError(f"{path} cannot be read: {exc}; delete {folder} to download CIFAR-10 again") from None
        if verify and hashlib.md5(raw).hexdigest() != md5:
            raise UserError(f"{path} fails its MD5 checksum (corrupt or not CIFAR-10); delete {folder} to download it again")
        try:
            batch = pickle.loads(raw, encoding="latin1")
            data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            target = np.asarray(batch.get("labels", batch.get("fine_labels")), dtype=np.int64)
            if len(target) != len(data) or (len(target) and not 0 <= target.min() <= target.max() <= 9):
                raise ValueError("labels do not match the images or lie outside 0..9")
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise UserError(f"{path} is not a CIFAR-10 batch file ({exc}); delete {folder} to download it again") from None
        images.append(data)
        labels.append(target)
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


def write_cifar10(folder: Path, x_train: torch.Tensor, y_train: torch.Tensor,
                  x_test: torch.Tensor, y_test: torch.Tensor) -> Path:
    """Write uint8 images (N, 3, 32, 32) and labels in the ``cifar-10-batches-py`` pickle format.

    The training set is split over the five ``data_batch_N`` files as in the real archive. Used by the
    tests and benchmarks to exercise the real reader offline, and to convert your own data.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chunks = zip(torch.tensor_split(x_train, len(TRAIN_LIST)), torch.tensor_split(y_train, len(TRAIN_LIST)))
    batches = [(name, x, y) for (name, _), (x, y) in zip(TRAIN_LIST, chunks)]
    for name, x, y in [*batches, (TEST_LIST[0][0], x_test, y_test)]:
        payload = {"batch_label": name, "labels": y.tolist(), "data": x.reshape(len(x), -1).numpy().astype(np.uint8),
                   "filenames": [f"{name}_{i}.png" for i in range(len(x))]}
        with open(folder / name, "wb") as f:
            pickle.dump(payload, f)
    with open(folder / META[0], "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer",
                                     "dog", "frog", "horse", "ship", "truck"]}, f)
    return folder
