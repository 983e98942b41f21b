"""Every size limit optbench enforces, in one place (docs/limits.md lists these values).

A limit protects the machine from a request or a file that would otherwise exhaust memory, hang,
or run for days by accident; each error that hits one names the limit and how to raise it.
"""

from __future__ import annotations

import os

from optbench.errors import UserError

# --- requests (checked before any spec is built) -------------------------------------------------

# Runs one `optbench run` may plan: tasks x optimizer combinations x seeds (all stages of --select).
# Raise it with the environment variable below, e.g. OPTBENCH_MAX_RUNS=50000.
MAX_RUNS = 10_000
MAX_RUNS_VARIABLE = "OPTBENCH_MAX_RUNS"
# torch.manual_seed takes up to 2**64 - 1; records, pandas and JSON readers keep 64-bit signed integers exactly.
MAX_SEED = 2**63 - 1
# `optbench check --confirm N` re-runs each suspect cell's seeds N more times; 3 settles a verdict.
MAX_CONFIRM_ROUNDS = 100

# --- values of a suite (flags and suite-file keys; each refused with one line naming its limit) ----
# (--seeds is bounded by MAX_RUNS above: tasks x settings x seeds; --seed by MAX_SEED.)

# Epochs per run: the from-scratch article trains 10,000; a million epochs is weeks of any task here.
MAX_EPOCHS = 1_000_000
# Samples per mini-batch: 2**24 is far beyond any table optbench reads (CIFAR-10 has 50,000 images).
MAX_BATCH_SIZE = 2**24
# Seeds per learning rate in the --select sweep (selection_seeds; DeepOBS uses 1).
MAX_SELECTION_SEEDS = 100
# Trials per optimizer of `optbench tune` (--trials; AlgoPerf runs 5 per study): beyond this a
# search is better split into several studies (each is also bounded by MAX_RUNS).
MAX_TRIALS = 1000
# A run's time budget: 7 days of training seconds.
MAX_TIME_BUDGET_S = 7 * 24 * 3600.0
# Ray resources one run reserves.
MAX_CPUS_PER_RUN = 1024.0
MAX_GPUS_PER_RUN = 64.0
# Rows of a dataset's ``rows`` option (optbench.spec.dataset), also the rows a synthetic dataset generates.
MAX_DATASET_ROWS = 10_000_000

# --- files ---------------------------------------------------------------------------------------

# A run record is a few kB (10,000 epochs of curve are about 2 MB); anything larger is not one.
MAX_RECORD_BYTES = 16 * 2**20
# Baseline files hold a few samples per cell and seed.
MAX_BASELINE_BYTES = 16 * 2**20
# Suite files are a few lines of TOML.
MAX_CONFIG_BYTES = 1 * 2**20
# Nesting depth of JSON and TOML documents (a record nests 4 deep, a suite file 3).
MAX_NESTING = 64
# The most files a plugin's code version lists (optbench.optim.plugins): its own and the local modules it
# imports; a larger package is pinned by the first ones in import order.
MAX_LOCAL_FILES = 100

# --- data ----------------------------------------------------------------------------------------

# diamonds.csv is 2.7 MB (53,940 rows); the CIFAR-10 archive 170 MB (163 MiB), its extracted batches 178 MB.
MAX_TABLE_BYTES = 256 * 2**20
MAX_DOWNLOAD_BYTES = 512 * 2**20
# A text corpus read whole (optbench.datasets.text); tiny-shakespeare is 1.1 MB.
MAX_TEXT_BYTES = 64 * 2**20
# A download that sends nothing for this long, or takes longer than the second figure in all, is abandoned.
DOWNLOAD_STALL_S = 60.0
DOWNLOAD_TOTAL_S = 3600.0
DOWNLOAD_STALL_VARIABLE = "OPTBENCH_DOWNLOAD_TIMEOUT"
# A table needs enough rows for its 80/20 split and the validation part of the training rows.
MIN_TABLE_ROWS = 10
# |value| above this in a numeric column is a unit or parsing error, not data (and would overflow float32 statistics).
MAX_ABS_VALUE = 1e12


# --- values, outputs and clusters (helper C's section) ---------------------------------------------

# A metric in a record or a baseline larger than this in size is not a measurement (a diverged loss
# in float32 stops at 3.4e38); the bound keeps sums and means of any number of them finite.
MAX_METRIC_VALUE = 1e100
# A tolerance's value (10% is 10, 1.2x is 1.2, abs=0.01 is 0.01) is a finite number up to this;
# "off" is how a check is turned off, never a huge number.
MAX_TOLERANCE = 1e6
# --executor ray --address HOST:PORT: connect within this many seconds or stop with one line.
RAY_CONNECT_TIMEOUT_S = 30.0
RAY_CONNECT_TIMEOUT_VARIABLE = "OPTBENCH_RAY_CONNECT_TIMEOUT"
# A unit of work that fails for a reason of the cluster (not of the run) is submitted again this
# many times at most before the campaign stops (Ray itself first retries a dead worker 3 times).
RAY_RESUBMITS = 2
# Starting a local Ray cluster: attempts before giving up (a busy machine can miss Ray's 30 s start-up wait).
RAY_START_ATTEMPTS = 2

# --- notices -------------------------------------------------------------------------------------

# Set (to anything but empty or 0) to hide the one-line notice that training runs on the CPU with
# torch's CUDA build installed and no GPU (optbench.devices.unused_cuda_build; the CLI prints it).
CUDA_BUILD_NOTICE_VARIABLE = "OPTBENCH_NO_CUDA_NOTICE"


def max_runs() -> int:
    """MAX_RUNS, or the positive whole number in $OPTBENCH_MAX_RUNS."""
    raw = os.environ.get(MAX_RUNS_VARIABLE)
    if raw is None or raw.strip() == "":
        return MAX_RUNS
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise UserError(f"{MAX_RUNS_VARIABLE}={raw!r} is not a positive whole number; unset it or set e.g. {MAX_RUNS_VARIABLE}=50000")
    return value


def check_runs(count: int, what: str) -> None:
    """UserError when ``count`` planned runs exceed the limit; ``what`` says where they come from."""
    limit = max_runs()
    if count > limit:
        raise UserError(f"{what} makes {count:,} runs, over the limit of {limit:,} runs per suite; "
                        f"ask for fewer, or raise the limit with {MAX_RUNS_VARIABLE}={count}")


def download_stall_s() -> float:
    """DOWNLOAD_STALL_S, or the positive number of seconds in $OPTBENCH_DOWNLOAD_TIMEOUT."""
    return _seconds_from_env(DOWNLOAD_STALL_VARIABLE, DOWNLOAD_STALL_S, float("inf"), 120)


def ray_connect_timeout_s() -> float:
    """RAY_CONNECT_TIMEOUT_S, or the positive number of seconds in $OPTBENCH_RAY_CONNECT_TIMEOUT."""
    return _seconds_from_env(RAY_CONNECT_TIMEOUT_VARIABLE, RAY_CONNECT_TIMEOUT_S, 3600, 60)


def _seconds_from_env(variable: str, default: float, most: float, example: int) -> float:
    """``default``, or the number of seconds in (0, ``most``] that environment ``variable`` holds;
    anything else is a UserError naming the variable and an ``example`` value."""
    raw = os.environ.get(variable)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= most or value == float("inf"):
        bound = "a positive number of seconds" if most == float("inf") else f"a number of seconds in (0, {most:g}]"
        raise UserError(f"{variable}={raw!r} is not {bound}; unset it or set e.g. {variable}={example}")
    return value
