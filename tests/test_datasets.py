"""Real data paths, offline: CIFAR-10 pickles the test writes, the diamonds CSV and its download."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest
import torch

from optbench.datasets.cifar10 import BASE_FOLDER, load_cifar10, write_cifar10
from optbench.datasets.diamonds import URL_VARIABLE, ensure_diamonds, load_diamonds
from optbench.errors import UserError
from optbench.tasks.regression import SYNTHETIC_NOISE


def tiny_cifar(tmp_path: Path, n_train: int = 50, n_test: int = 20):
    g = torch.Generator().manual_seed(0)
    data = (torch.randint(0, 256, (n_train, 3, 32, 32), generator=g, dtype=torch.uint8),
            torch.randint(0, 10, (n_train,), generator=g),
            torch.randint(0, 256, (n_test, 3, 32, 32), generator=g, dtype=torch.uint8),
            torch.randint(0, 10, (n_test,), generator=g))
    write_cifar10(tmp_path / BASE_FOLDER, *data)
    return data


def test_cifar10_reader_reads_the_real_pickle_format(tmp_path):
    written = tiny_cifar(tmp_path)
    loaded = load_cifar10(tmp_path, verify=False)
    for a, b in zip(written, loaded):
        assert torch.equal(a, b)
    assert loaded[0].dtype == torch.uint8 and loaded[0].shape == (50, 3, 32, 32)


def test_cifar10_file_failing_its_checksum_is_a_one_line_error(cli, tmp_path):
    tiny_cifar(cli.data_dir)
    result = cli.run("--task", "cifar10", "--opt", "adam", "--epochs", "1")
    assert result.exit_code == 2
    assert "data_batch_1 fails its MD5 checksum" in result.stderr
    assert "Traceback" not in result.output and not cli.stored()


def test_truncated_cifar10_file_is_a_user_error(tmp_path):
    tiny_cifar(tmp_path)
    path = tmp_path / BASE_FOLDER / "test_batch"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UserError, match="is not a CIFAR-10 batch file"):
        load_cifar10(tmp_path, verify=False)


def test_regression_on_real_diamonds(cli, diamonds_dir):
    (record,) = cli.run_json("--data-dir", str(diamonds_dir), "--dataset", "diamonds", "--opt", "momentum", "--epochs", "2")
    m = record["metrics"]
    # Least squares of price on carat over the real table leaves about $1,550 of residual error.
    assert 1450 < m["optimum_rmse"] < 1650
    assert m["test_rmse"] < 1.1 * m["optimum_rmse"]


def test_mlp_on_real_diamonds_uses_every_column(diamonds_dir):
    from optbench.tasks import get_task

    data = get_task("mlp").load("diamonds", diamonds_dir)
    assert data.x_train.shape[1] == 6 + 5 + 7 + 8  # numeric columns + one-hot cut, color, clarity
    assert len(data.x_train) + len(data.x_test) == 53940
    assert abs(float(data.x_train.mean())) < 0.1  # standardised on the training split


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # the request log would land in the CLI's stderr
        pass


@pytest.fixture
def file_server(tmp_path):
    """A real HTTP server on loopback serving ``tmp_path/served``."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(QuietFiles, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_diamonds_download_is_verified_and_saved_once(tmp_path, file_server, diamonds_dir, monkeypatch):
    served, base = file_server
    (served / "diamonds.csv").write_bytes((diamonds_dir / "diamonds.csv").read_bytes())
    monkeypatch.setenv(URL_VARIABLE, f"{base}/diamonds.csv")
    path = ensure_diamonds(tmp_path / "data")
    assert path.read_bytes() == (diamonds_dir / "diamonds.csv").read_bytes()
    assert len(load_diamonds(tmp_path / "data")) == 53940


def test_download_with_wrong_checksum_saves_nothing(tmp_path, file_server, monkeypatch):
    served, base = file_server
    (served / "diamonds.csv").write_text("carat,price\n1,2\n")
    monkeypatch.setenv(URL_VARIABLE, f"{base}/diamonds.csv")
    with pytest.raises(UserError, match="expected 9574730b"):
        ensure_diamonds(tmp_path / "data")
    assert not (tmp_path / "data").exists()  # not even the folder the download would have created


def test_missing_diamonds_without_network_says_where_it_looked(cli, monkeypatch):
    monkeypatch.setenv(URL_VARIABLE, "http://127.0.0.1:9/diamonds.csv")  # nothing listens on port 9
    result = cli.run("--dataset", "diamonds", "--opt", "sgd", "--epochs", "1")
    assert result.exit_code == 2
    assert str(cli.data_dir / "diamonds.csv") in result.stderr and "download" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not cli.stored()


@pytest.mark.parametrize("content, message", [
    ("carat,cut,color,clarity,depth,table,price\n0.2,Ideal,E,SI2,61,55,326\n", "lacks column(s) x, y, z"),
    ("carat,cut,color,clarity,depth,table,price,x,y,z\n0.2,Ideal,E,SI2,61,55,cheap,3.9,3.9,2.4\n",
     "column 'price' has a non-numeric or non-finite value 'cheap' on data row 1"),
    ("carat,cut,color,clarity,depth,table,price,x,y,z\n0.2,Ideal,E,SI2,61,55,326,3.9,3.9,2.4\n"
     "inf,Ideal,E,SI2,61,55,326,3.9,3.9,2.4\n", "column 'carat' has a non-numeric or non-finite value"),
])
def test_bad_diamonds_csv_is_a_one_line_error(cli, content, message):
    cli.data_dir.mkdir(parents=True)
    (cli.data_dir / "diamonds.csv").write_text(content)
    result = cli.run("--dataset", "diamonds", "--opt", "sgd", "--epochs", "1")
    assert result.exit_code == 2 and message in result.stderr
    assert not cli.stored()


def test_synthetic_regression_matches_its_documented_line():
    from optbench.tasks.regression import synthetic_line

    carat, price = synthetic_line()
    design = torch.cat([carat, torch.ones_like(carat)], 1)
    slope, intercept = torch.linalg.lstsq(design, price.unsqueeze(1)).solution[:, 0].tolist()
    assert slope == pytest.approx(7756, rel=0.03) and intercept == pytest.approx(-2256, abs=300)
    resid = price - (design @ torch.tensor([slope, intercept], dtype=price.dtype))
    assert float(resid.std()) == pytest.approx(SYNTHETIC_NOISE, rel=0.05)


# --- degenerate tables, special files, whole-campaign validation ----------------------------------

HEADER = "carat,cut,color,clarity,depth,table,price,x,y,z\n"
ROW = "0.23,Ideal,E,SI2,61.5,55,326,3.95,3.98,2.43\n"


def assert_one_line_and_nothing_written(cli, result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert message in result.stderr.replace("\n", ""), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert "MKL" not in result.output
    assert not cli.results_dir.exists()  # not even an empty runs/ folder


@pytest.mark.parametrize("content, message", [
    (HEADER + ROW, "has 1 data row(s); the train/test and validation splits need at least 10"),
    (HEADER + ROW * 2, "has 2 data row(s)"),
    (HEADER + ROW * 20 + ROW.replace("0.23", "1e308"), "column 'carat' has the value 1e+308 on data row 21, beyond +-1e+12"),
    (HEADER + ROW * 20 + ROW.replace("326", "-1e308"), "column 'price' has the value -1e+308"),
    (HEADER + ROW * 20 + ROW.replace("0.23", "1e400"), "column 'carat' has a non-numeric or non-finite value"),
    ("", "is not a readable CSV file"),
    ("\x00\x01\x02", "lacks column(s)"),
], ids=["1-row", "2-rows", "1e308", "-1e308", "overflow", "empty", "binary"])
def test_degenerate_diamonds_tables_are_one_line_errors(cli, content, message):
    cli.data_dir.mkdir(parents=True)
    (cli.data_dir / "diamonds.csv").write_text(content)
    for task in ("regression", "mlp"):
        result = cli.run("--task", task, "--dataset", "diamonds", "--opt", "sgd", "--epochs", "1")
        assert_one_line_and_nothing_written(cli, result, message)


def test_diamonds_csv_that_is_not_a_regular_file_is_a_one_line_error(cli, tmp_path):
    import os

    cli.data_dir.mkdir(parents=True)
    path = cli.data_dir / "diamonds.csv"
    for make, kind in ((path.mkdir, "a folder"), (lambda: os.mkfifo(path), "a named pipe"),
                       (lambda: path.symlink_to("/dev/zero"), "a character device")):
        make()
        result = cli.run("--dataset", "diamonds", "--opt", "sgd", "--epochs", "1")
        assert_one_line_and_nothing_written(cli, result, f"{path} cannot be read: not a regular file ({kind})")
        path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
    if os.geteuid() != 0:  # root reads any file whatever its mode
        path.write_text(HEADER + ROW * 20)
        path.chmod(0)
        result = cli.run("--dataset", "diamonds", "--opt", "sgd", "--epochs", "1")
        assert_one_line_and_nothing_written(cli, result, "cannot open it (Permission denied)")


def test_a_suite_whose_last_task_lacks_data_writes_nothing(cli, monkeypatch):
    monkeypatch.setenv("OPTBENCH_CIFAR10_URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")  # nothing listens on port 9
    result = cli.run("--task", "regression", "cifar10", "--opt", "sgd", "--epochs", "1")
    assert_one_line_and_nothing_written(cli, result, f"CIFAR-10 in {cli.data_dir / BASE_FOLDER} not found and the download")
    assert not cli.data_dir.exists()  # the failed download left no folder behind


# --- downloads: a real server on loopback that misbehaves ---------------------------------------

class Misbehaving(http.server.BaseHTTPRequestHandler):
    """/stall: headers, then nothing; /trickle: a byte every 0.1 s for ever; /big: more than announced limits."""

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        import time

        self.send_response(200)
        if self.path == "/big":
            self.send_header("Content-Length", str(10_000))
            self.end_headers()
            self.wfile.write(b"x" * 10_000)
            return
        self.end_headers()
        self.wfile.flush()
        try:
            while True:
                if self.path == "/trickle":
                    self.wfile.write(b"x")
                    self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            return


@pytest.fixture
def misbehaving_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def bounded(fn, guard_s: float = 60):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it has not returned within ``guard_s``."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(guard_s)
    assert not thread.is_alive(), "the download did not give up"
    return outcome


@pytest.mark.parametrize("path, limits, message", [
    ("/stall", {}, "no data for 1 s"),
    ("/trickle", {"total_s": 1.0}, "still unfinished after 1 s"),
    ("/big", {"max_bytes": 1000}, "announces 10,000 bytes, over the limit of 1,000"),
])
def test_downloads_that_stall_trickle_or_grow_give_up_and_leave_nothing(tmp_path, misbehaving_server, monkeypatch,
                                                                     path, limits, message):
    from optbench.datasets.download import DownloadFailed, download

    monkeypatch.setenv("OPTBENCH_DOWNLOAD_TIMEOUT", "1")
    dest = tmp_path / "data" / "sub" / "file.bin"
    outcome = bounded(lambda: download(misbehaving_server + path, dest, "sha256", "0" * 64, **limits))
    assert isinstance(outcome.get("error"), DownloadFailed) and message in str(outcome["error"]), outcome
    assert not (tmp_path / "data").exists()  # no partial file, no folder the download created


def test_cifar10_archive_is_downloaded_checked_and_only_its_batches_extracted(tmp_path, file_server, monkeypatch):
    """The real downloader and extractor on a small archive in CIFAR-10's layout (its checksum
    stands in for the published one), with a hostile member that must not be extracted."""
    import hashlib
    import io
    import tarfile

    from optbench.datasets import cifar10

    source = tmp_path / "source"
    written = tiny_cifar(source)
    served, base = file_server
    archive = served / cifar10.ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / BASE_FOLDER, arcname=BASE_FOLDER)
        evil = tarfile.TarInfo("../../escaped.txt")
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
    payload = archive.read_bytes()
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", hashlib.md5(payload).hexdigest())
    monkeypatch.setattr(cifar10, "ARCHIVE_BYTES", len(payload))
    monkeypatch.setenv("OPTBENCH_CIFAR10_URL", f"{base}/{cifar10.ARCHIVE}")

    data = tmp_path / "data"
    folder = cifar10.ensure_cifar10(data)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [n for n, _ in cifar10.TRAIN_LIST + cifar10.TEST_LIST] + [cifar10.META[0]])
    assert not list(tmp_path.rglob("escaped.txt")) and not list(data.glob(".*"))  # no temporary files either
    for a, b in zip(written, cifar10.load_cifar10(data, verify=False)):
        assert torch.equal(a, b)

    archive.write_bytes(payload[:-10] + b"0" * 10)  # the served file changes: its checksum fails
    other = tmp_path / "other"
    with pytest.raises(UserError, match=r"failed \(the file has MD5 [0-9a-f]+, expected [0-9a-f]+\); nothing was saved"):
        cifar10.ensure_cifar10(other)
    assert not other.exists()


def test_cifar10_download_answered_404_leaves_no_data_folder(cli, file_server, monkeypatch):
    _, base = file_server  # serves an empty folder: every path answers 404
    monkeypatch.setenv("OPTBENCH_CIFAR10_URL", f"{base}/cifar-10-python.tar.gz")
    result = cli.run("--task", "cifar10", "--opt", "sgd", "--epochs", "1")
    assert_one_line_and_nothing_written(cli, result, "failed (HTTP 404 File not found); nothing was saved")
    assert not cli.data_dir.exists()  # the folder the download would have created is gone
    cli.data_dir.mkdir()  # a data folder the user made stays, empty as it was
    result = cli.run("--task", "cifar10", "--opt", "sgd", "--epochs", "1")
    assert result.exit_code == 2 and cli.data_dir.is_dir() and not list(cli.data_dir.iterdir())


def test_the_catalog_says_cifar10_is_read_without_torchvision():
    from optbench.tasks import TASKS

    text = TASKS["cifar10"].datasets["cifar10"]  # what `optbench list` shows
    assert "via torchvision" not in text and "read without torchvision" in text
