"""The optimizer zoo: from-scratch reference optimizers, plugins by import path or local file,
entry points, the pytorch_optimizer extra, and the implementation policy with its record."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from optbench.cli.app import split_list
from optbench.optim.construct import build_optimizer, resolve_impl
from optbench.config.hparams import parse_optimizer_arg
from optbench.optim.hparams import resolve_hparams
from optbench.optim.registry import REFERENCE, REGISTRY
from optbench.spec import RunSpec
from optbench.tasks import get_task
from optbench.optim.registry import spec_label

LION = textwrap.dedent('''
    import torch

    class Lion(torch.optim.Optimizer):
        """Lion (Chen et al. 2023): step along the sign of an interpolated momentum."""

        def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
            super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    m = self.state[p].setdefault("m", torch.zeros_like(p))
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(torch.sign(beta1 * m + (1 - beta1) * p.grad), alpha=-group["lr"])
                    m.mul_(beta2).add_(p.grad, alpha=1 - beta2)

    def not_an_optimizer():
        pass

    class Scheduler:
        pass
''')


@pytest.fixture
def clean_modules():
    """Forget modules a test imported from its temp folder, so the next test imports its own. Only
    new top-level packages go: a submodule torch imported lazily meanwhile (torch._inductor) must
    stay, since importing it twice fails ("Only a single TORCH_LIBRARY ...")."""
    before = set(sys.modules)
    tops = {name.partition(".")[0] for name in before}
    yield
    for name in set(sys.modules) - before:
        if name.partition(".")[0] not in tops:
            del sys.modules[name]


def one_line_error(result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


# --- reference optimizers ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mlp_data(tmp_path_factory):
    return get_task("mlp").load("synthetic", tmp_path_factory.mktemp("data"))


def train_mlp(data, name: str, overrides: dict, steps: int = 200) -> torch.Tensor:
    """``steps`` mini-batch steps of the MLP task's model on its synthetic data; the final parameters."""
    task = get_task("mlp")
    torch.manual_seed(0)
    model = task.build_model(data)
    optimizer = build_optimizer(name, model.parameters(), resolve_hparams(name, overrides), "forloop")
    batches = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(data.x_train), (64,), generator=batches)
        optimizer.zero_grad()
        task.loss(model(data.x_train[idx]), data.y_train[idx]).backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("twin, overrides", [
    ("sgd", {}), ("sgd", {"weight_decay": 0.1}),
    ("momentum", {}), ("momentum", {"weight_decay": 0.01}),
    ("rmsprop", {}), ("rmsprop", {"weight_decay": 0.01}),
    ("adam", {}), ("adam", {"weight_decay": 0.1}),
    ("adamw", {}), ("adamw", {"lr": 0.01, "weight_decay": 0.5}),
])
def test_reference_optimizer_matches_torch_after_200_steps(mlp_data, twin, overrides):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: threads only add contention on a shared CPU
    try:
        start = train_mlp(mlp_data, twin, {}, steps=0)
        ours, theirs = train_mlp(mlp_data, f"ref-{twin}", overrides), train_mlp(mlp_data, twin, overrides)
    finally:
        torch.set_num_threads(threads)
    assert (theirs - start).norm() / start.norm() > 0.1  # the optimizers really moved the model
    assert (ours - theirs).norm() / theirs.norm() <= 1e-5


def test_reference_optimizers_have_their_torch_twins_defaults():
    assert sorted(REFERENCE) == ["ref-adam", "ref-adamw", "ref-momentum", "ref-rmsprop", "ref-sgd"]
    for name, opt in REFERENCE.items():
        assert opt.defaults == REGISTRY[name.removeprefix("ref-")].defaults
        assert "``" in opt.load_class().__doc__  # the update rule is written out in the docstring
        assert resolve_hparams(name, {}) == resolve_hparams(name.removeprefix("ref-"), {})


def test_list_shows_reference_optimizers_and_plugin_syntax(cli):
    result = cli("list")
    assert result.exit_code == 0
    out = " ".join(result.stdout.split())
    for name in REFERENCE:
        assert name in out
    assert "optbench.optim.reference.AdamW" in out and "module:Class or file.py:Class" in out


# --- plugins -------------------------------------------------------------------------------------

def test_optimizer_argument_syntax_with_import_paths():
    assert parse_optimizer_arg("mypkg.opt:Lion") == ("mypkg.opt:Lion", {})
    assert parse_optimizer_arg("mypkg.opt:Lion:lr=1e-4,betas=0.9/0.99") == (
        "mypkg.opt:Lion", {"lr": 1e-4, "betas": (0.9, 0.99)})
    assert parse_optimizer_arg("po:lion:lr=3e-4") == ("po:lion", {"lr": 3e-4})
    assert parse_optimizer_arg("adam:lr=0.01") == ("adam", {"lr": 0.01})
    assert split_list(["po:lion,mypkg.opt:Lion:lr=1e-4,betas=0.9/0.99,adam:lr=0.01,eps=1e-6", "sgd"],
                      split_optimizers=True) == [
        "po:lion", "mypkg.opt:Lion:lr=1e-4,betas=0.9/0.99", "adam:lr=0.01,eps=1e-6", "sgd"]


def test_plugin_by_import_path_runs_with_signature_defaults(cli, tmp_path, monkeypatch, clean_modules):
    package = tmp_path / "site" / "zoo_plugins"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "lion.py").write_text(LION)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))

    records = cli.run_json("--opt", "zoo_plugins.lion:Lion", "zoo_plugins.lion:Lion:lr=1e-3", "--epochs", "2")
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert [r["spec"]["optimizer"] for r in records] == ["zoo_plugins.lion:Lion"] * 2
    assert records[0]["spec"]["hparams"] == {"lr": 1e-4, "betas": [0.9, 0.99], "weight_decay": 0.0}
    assert records[1]["spec"]["hparams"]["lr"] == 1e-3
    assert records[0]["optimizer_impl"] == "native"
    assert [spec_label(RunSpec.from_dict(r["spec"])) for r in records] == [
        "zoo_plugins.lion:Lion", "zoo_plugins.lion:Lion(lr=0.001)"]


@pytest.mark.parametrize("opt", ["my_lion.py:Lion", "my_lion:Lion"])
def test_plugin_from_a_file_in_the_current_directory(cli, tmp_path, monkeypatch, clean_modules, opt):
    (tmp_path / "my_lion.py").write_text(LION)
    monkeypatch.chdir(tmp_path)
    (record,) = cli.run_json("--opt", f"{opt}:lr=0.001", "--epochs", "2")
    assert record["status"] == "ok" and record["spec"]["optimizer"] == opt
    assert record["curve"][-1]["train_loss"] < record["curve"][0]["train_loss"]


@pytest.mark.parametrize("opt, fragment", [
    ("no_such_module:Lion", "no module named 'no_such_module'"),
    ("missing.py:Lion", "no file"),
    ("my_lion:Lino", "my_lion has no 'Lino' (did you mean 'Lion'?); optimizer classes in it: Lion"),
    ("my_lion:not_an_optimizer", "is not a torch.optim.Optimizer subclass (it is a function)"),
    ("my_lion:Scheduler", "is not a torch.optim.Optimizer subclass (it is class Scheduler)"),
    ("broken.py:Lion", "running"),
    ("my_lion:Lion:learning_rate=1", "unknown hyperparameter 'learning_rate' for optimizer 'my_lion:Lion'; valid keys: betas, lr, weight_decay"),
    ("my_lion:Lion:lr=abc", "must be a number"),
    ("my_lion:Lion:foreach=true", "use --impl foreach"),
])
def test_plugin_errors_are_one_line_with_exit_2(cli, tmp_path, monkeypatch, clean_modules, opt, fragment):
    (tmp_path / "my_lion.py").write_text(LION)
    (tmp_path / "broken.py").write_text("raise ValueError('half-written module')\n")
    monkeypatch.chdir(tmp_path)
    one_line_error(cli.run("--opt", opt, "--epochs", "1"), fragment)
    assert not cli.stored()


# --- entry points --------------------------------------------------------------------------------

@pytest.fixture
def fake_distribution(tmp_path, monkeypatch, clean_modules):
    """An installed distribution as pip leaves it (a *.dist-info folder next to its module) that
    registers three names in the optbench.optimizers group, one of them broken."""
    site = tmp_path / "fake_site"
    dist_info = site / "optbench_fake_plugin-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: optbench-fake-plugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[optbench.optimizers]\n"
        "fakelion = fake_ep_optim:Lion\n"
        "fastlion = fake_ep_optim:FAST_LION\n"
        "broken = fake_ep_optim:nothing_here\n"
    )
    (site / "fake_ep_optim.py").write_text(LION + textwrap.dedent('''
        from optbench.optim.registry import OptimizerDef
        FAST_LION = OptimizerDef("fastlion", Lion, {"lr": 3e-4}, "Lion with a larger step")
    '''))
    monkeypatch.syspath_prepend(str(site))
    return site


def test_entry_point_optimizers_are_listed_and_run(cli, fake_distribution):
    listing = cli("list")
    out = " ".join(listing.stdout.split())
    assert "fakelion" in out and "entry point of optbench-fake-plugin" in out and "fake_ep_optim.Lion" in out
    assert "not loaded: optimizer 'broken'" in out

    records = cli.run_json("--opt", "fakelion,fastlion:weight_decay=0.1", "--epochs", "1")
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert records[0]["spec"]["hparams"]["lr"] == 1e-4  # from the class signature
    assert records[1]["spec"]["hparams"] == {"lr": 3e-4, "weight_decay": 0.1}  # the package's own defaults
    one_line_error(cli.run("--opt", "broken"), "optimizer 'broken' (entry point of optbench-fake-plugin")


def test_unknown_name_mentions_plugins(cli):
    one_line_error(cli.run("--opt", "lino"), 'or po:NAME (pip install "optbench[zoo]")')


# --- the pytorch_optimizer extra -----------------------------------------------------------------

def test_zoo_optimizers_by_prefixed_name(cli):
    pytest.importorskip("pytorch_optimizer")
    assert "`optbench list --zoo` names them all" in " ".join(cli("list").stdout.split())  # naming imports torch
    out = " ".join(cli("list", "--zoo").stdout.split())
    assert "po:lion" in out and "po:adan" in out and "third-party optimizers from pytorch_optimizer" in out

    records = cli.run_json("--opt", "po:lion:lr=3e-4,po:adan", "--epochs", "2")
    assert [(r["spec"]["optimizer"], r["status"]) for r in records] == [("po:lion", "ok"), ("po:adan", "ok")]
    assert records[0]["spec"]["hparams"]["lr"] == 3e-4 and records[1]["spec"]["hparams"]["betas"] == [0.98, 0.92, 0.99]
    one_line_error(cli.run("--opt", "po:lino"), "unknown optimizer 'po:lino' (did you mean 'po:lion'?)")


def test_zoo_not_installed_says_how_to_install(cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "pytorch_optimizer", None)  # import pytorch_optimizer now fails
    out = " ".join(cli("list", "--zoo").stdout.split())
    assert 'are not installed: pip install "optbench[zoo]"' in out and "po:lion" not in out
    one_line_error(cli.run("--opt", "po:lion"), 'pytorch_optimizer package, which is not installed; pip install "optbench[zoo]"')


# --- implementation policy -----------------------------------------------------------------------

def test_auto_is_foreach_on_cuda_and_forloop_on_cpu_for_every_torch_optimizer():
    for name in REGISTRY:
        assert resolve_impl(name, "auto", "cpu") == "forloop", name
        assert resolve_impl(name, "auto", "cuda") == "foreach", name
    for name in REFERENCE:
        assert resolve_impl(name, "auto", "cuda") == "forloop", name


def test_the_chosen_implementation_is_what_the_optimizer_gets():
    param = [torch.nn.Parameter(torch.ones(2))]
    hparams = resolve_hparams("adam", {})
    assert build_optimizer("adam", param, hparams).defaults["foreach"] is False  # auto on CPU
    assert build_optimizer("adam", param, hparams, "foreach").defaults["foreach"] is True


def test_zoo_optimizers_follow_the_policy_not_their_own_default():
    pytest.importorskip("pytorch_optimizer")
    param = [torch.nn.Parameter(torch.ones(2))]
    # pytorch_optimizer's Lion uses foreach on CPU by default; auto makes it the for-loop like torch's.
    assert build_optimizer("po:lion", param, resolve_hparams("po:lion", {})).defaults["foreach"] is False


def test_every_record_says_which_implementation_ran(cli):
    records = cli.run_json("--opt", "adam,ref-adam,sgd", "--epochs", "1")
    assert [r["optimizer_impl"] for r in records] == ["forloop", "forloop", "forloop"]
    assert all("impl" not in r["spec"] for r in records)  # the default keeps the record format

    result = cli.run("--opt", "adam", "--epochs", "1", "--impl", "foreach")
    assert result.exit_code == 0 and "adam@foreach" in result.stdout
    (foreach,) = [r for r in cli.stored() if r["spec"].get("impl") == "foreach"]
    assert foreach["spec"]["impl"] == "foreach" and foreach["optimizer_impl"] == "foreach"
    assert foreach["cell_hash"] != records[0]["cell_hash"]


def test_impl_from_the_suite_file(cli, tmp_path):
    config = tmp_path / "suite.toml"
    config.write_text('optimizers = ["sgd", "momentum"]\nimpl = "foreach"\nepochs = 1\n')
    records = cli.run_json("--config", str(config))
    assert [(r["spec"]["impl"], r["optimizer_impl"]) for r in records] == [("foreach", "foreach")] * 2


def test_fused_where_torch_has_it_here(cli):
    try:
        torch.optim.Adam([torch.nn.Parameter(torch.ones(1))], fused=True)
    except RuntimeError:
        one_line_error(cli.run("--opt", "adam", "--impl", "fused"), "has no fused implementation for cpu")
    else:
        (record,) = cli.run_json("--opt", "adam", "--impl", "fused", "--epochs", "1")
        assert record["optimizer_impl"] == "fused" and record["status"] == "ok"


@pytest.mark.parametrize("args, fragment", [
    (["--opt", "sgd,rmsprop", "--impl", "fused"], "optimizer 'rmsprop' (torch.optim.RMSprop) has no fused implementation"),
    (["--opt", "adam,ref-adam", "--impl", "foreach"], "'ref-adam' has only a for-loop implementation"),
    (["--opt", "adam", "--impl", "fast"], "impl: input should be 'auto', 'forloop', 'foreach' or 'fused'"),
])
def test_an_implementation_the_optimizer_lacks_is_a_user_error(cli, args, fragment):
    one_line_error(cli.run(*args, "--epochs", "1"), fragment)
    assert not cli.stored()


def test_records_from_before_impl_load_unchanged():
    old = {"task": "regression", "dataset": "synthetic", "optimizer": "adam", "hparams": {"lr": 0.001},
           "epochs": 1, "batch_size": 64, "seed": 0, "device": "cpu"}
    spec = RunSpec.from_dict(old)
    assert spec.impl == "auto" and spec.to_dict() == old  # so its spec and cell hashes are unchanged


def test_muon_family_trains_matrices_with_muon_and_the_rest_with_adamw(cli):
    pytest.importorskip("pytorch_optimizer")
    model = get_task("mlp").build_model(get_task("mlp").load("synthetic", cli.data_dir))
    optimizer = build_optimizer("po:muon", model.parameters(), resolve_hparams("po:muon", {}))
    muon, adamw = optimizer.param_groups
    assert muon["use_muon"] and all(p.ndim == 2 for p in muon["params"])
    assert not adamw["use_muon"] and all(p.ndim == 1 for p in adamw["params"])
    assert len(muon["params"]) + len(adamw["params"]) == len(list(model.parameters()))
    (record,) = cli.run_json("--opt", "po:muon", "--epochs", "2")
    assert record["status"] == "ok" and record["metrics"]["final_train_loss"] is not None


@pytest.mark.parametrize("name, reason", [
    ("po:alig", "its step() needs a closure that re-evaluates the loss"),
    ("po:lbfgs", "its step() needs a closure that re-evaluates the loss"),
    ("po:adahessian", "it needs second-order gradients"),
    ("po:lomo", "its constructor needs the model"),
    ("po:spectralsphere", "its step() fails on a small model (SpectralSphere only supports 2D parameters)"),
])
def test_zoo_optimizers_that_cannot_run_here_say_why_in_one_line(cli, name, reason):
    pytest.importorskip("pytorch_optimizer")
    one_line_error(cli.run("--opt", name, "--epochs", "1"), f"optimizer '{name}' cannot run in optbench: {reason}")
    assert not cli.results_dir.exists()  # refused before anything was written


def test_a_bad_value_for_a_runnable_zoo_optimizer_is_a_bad_hyperparameter(cli):
    pytest.importorskip("pytorch_optimizer")
    one_line_error(cli.run("--opt", "po:muon:momentum=2", "--epochs", "1"), "bad hyperparameters for 'po:muon': momentum")


def test_every_zoo_optimizer_either_trains_or_says_why():
    pytest.importorskip("pytorch_optimizer")
    from optbench.errors import UserError
    from optbench.optim import plugins

    refused = {}
    for name in plugins.zoo_names():
        try:
            resolve_hparams(name, {})  # builds it and takes two steps on a small layer
        except UserError as exc:
            message = str(exc)
            assert "\n" not in message and "Tensor.__contains__" not in message, message
            refused[name] = message
    assert "po:muon" not in refused and "po:adamuon" not in refused
    assert len(refused) < 20, refused  # most of the zoo runs
