"""Regenerate docs/report-html.png: the top of an interactive HTML report in headless Chromium.

    python scripts/report_html_screenshot.py [--out docs/report-html.png] [--keep DIR]

Runs a small tuned comparison on the synthetic regression task (adam, momentum and sgd, three
learning rates each on the validation split, the winners and the defaults on test with 3 seeds,
5 epochs, a loss target: about 30 CPU-seconds), writes ``optbench report --format html`` and
screenshots it at 1280x2000 (what tests/test_html_browser.py also takes). Needs chromium
(``apt-get install chromium``); ``--keep DIR`` leaves the results and report.html there.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
OPTIMIZERS = ("adam:lr=1e-3|1e-2|3e-2", "momentum:lr=1e-3|1e-2|1e-1", "sgd:lr=1e-3|1e-2|1e-1")


def optbench(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "optbench", *args], check=True, stdout=subprocess.DEVNULL, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report-html.png")
    parser.add_argument("--keep", type=Path, help="keep the results and report.html in this directory")
    args = parser.parse_args()
    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if browser is None:
        sys.exit("no Chromium binary on PATH: apt-get install chromium")
    work = args.keep or Path(tempfile.mkdtemp(prefix="optbench-shot-"))
    results, report = work / "results", work / "report"
    optbench("run", "--results-dir", str(results), "--data-dir", str(work / "data"), "--opt", *OPTIMIZERS,
             "--epochs", "5", "--select", "--seeds", "3", "--target", "loss=0.2", "--quiet")
    optbench("report", "--results-dir", str(results), "--out", str(report), "--format", "html", "--no-charts")
    page = report / "report.html"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={profile}", "--window-size=1280,2000", "--virtual-time-budget=10000",
                        f"--screenshot={args.out.resolve()}", page.as_uri()],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"wrote {args.out} from {page}")
    if args.keep is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
