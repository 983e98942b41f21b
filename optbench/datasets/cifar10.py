"""CIFAR-10 in torchvision's on-disk format (``<data-dir>/cifar-10-batches-py``), read into tensors.

The archive is downloaded once by torchvision (with its MD5 check); every batch file is verified
against torchvision's published MD5 before it is read. Images are returned as uint8 tensors so
that the whole set is preprocessed once, on the run's device, not per image in the training loop.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from optbench.errors import UserError

BASE_FOLDER = "cifar-10-batches-py"


def _torchvision_cifar():
    from torchvision.datasets import CIFAR10

    return CIFAR10


def ensure_cifar10(data_dir: Path) -> Path:
    """The batches folder in ``data_dir``, downloading and extracting the archive if it is missing."""
    CIFAR10 = _torchvision_cifar()
    folder = Path(data_dir) / BASE_FOLDER
    names = [name for name, _ in CIFAR10.train_list + CIFAR10.test_list]
    if all((folder / name).exists() for name in names):
        return folder
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        download_and_extract_archive(CIFAR10.url, str(data_dir), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)
    except Exception as exc:  # network errors come in many types (URLError, HTTPError, RuntimeError)
        raise UserError(
            f"CIFAR-10 not found in {folder} and the download from {CIFAR10.url} failed ({exc}); "
            f"download and extract cifar-10-python.tar.gz into {data_dir}, pass --data-dir DIR that holds it, "
            f"or use --dataset synthetic for an offline run"
        ) from None
    return folder


def load_cifar10(data_dir: Path, verify: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)``: uint8 images (N, 3, 32, 32) and int64 labels."""
    CIFAR10 = _torchvision_cifar()
    folder = ensure_cifar10(data_dir) if verify else Path(data_dir) / BASE_FOLDER
    x_train, y_train = _read_batches(folder, CIFAR10.train_list, verify)
    x_test, y_test = _read_batches(folder, CIFAR10.test_list, verify)
    return x_train, y_train, x_test, y_test


def _read_batches(folder: Path, files: list[list[str]], verify: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets.utils import check_integrity

    images, labels = [], []
    for name, md5 in files:
        path = folder / name
        if not path.exists():
            raise UserError(f"{path} is missing; delete {folder} to download CIFAR-10 again")
        if verify and not check_integrity(str(path), md5):
            raise UserError(f"{path} fails its MD5 checksum (corrupt or not CIFAR-10); delete {folder} to download it again")
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="latin1")
            data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            target = np.asarray(batch.get("labels", batch.get("fine_labels")), dtype=np.int64)
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as exc:
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
    CIFAR10 = _torchvision_cifar()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chunks = zip(torch.tensor_split(x_train, len(CIFAR10.train_list)), torch.tensor_split(y_train, len(CIFAR10.train_list)))
    batches = [(name, x, y) for (name, _), (x, y) in zip(CIFAR10.train_list, chunks)]
    for name, x, y in [*batches, (CIFAR10.test_list[0][0], x_test, y_test)]:
        payload = {"batch_label": name, "labels": y.tolist(), "data": x.reshape(len(x), -1).numpy().astype(np.uint8),
                   "filenames": [f"{name}_{i}.png" for i in range(len(x))]}
        with open(folder / name, "wb") as f:
            pickle.dump(payload, f)
    with open(folder / CIFAR10.meta["filename"], "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer",
                                     "dog", "frog", "horse", "ship", "truck"]}, f)
    return folder
