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


@pytest.fixture
def file_server(tmp_path):
    """A real HTTP server on loopback serving ``tmp_path/served``."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
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
    assert not (tmp_path / "data" / "diamonds.csv").exists()
    assert not list((tmp_path / "data").iterdir())


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
