"""Optimizer names, documented defaults, and the inline hyperparameter syntax."""

from __future__ import annotations

import pytest
import torch

from optbench.errors import UserError
from optbench.optim.construct import build_optimizer
from optbench.config.hparams import parse_optimizer_arg
from optbench.optim.hparams import resolve_hparams
from optbench.optim.registry import REGISTRY

ALL = ["sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adadelta", "adam", "adamw", "amsgrad", "nadam", "radam", "adamax",
       "muon"]


def test_every_documented_optimizer_is_registered_and_builds():
    assert sorted(REGISTRY) == sorted(ALL)
    for name in ALL:
        param = torch.nn.Parameter(torch.ones(3))
        opt = build_optimizer(name, [param], resolve_hparams(name, {}))
        param.grad = torch.ones(3)
        opt.step()
        assert not torch.equal(param.detach(), torch.ones(3)), name


def test_sgd_and_adam_do_not_share_a_learning_rate():
    assert REGISTRY["sgd"].defaults["lr"] != REGISTRY["adam"].defaults["lr"]


def test_variants_fix_what_makes_them_what_they_are():
    p = [torch.nn.Parameter(torch.ones(1))]
    assert build_optimizer("nesterov", p, resolve_hparams("nesterov", {})).defaults["nesterov"] is True
    assert build_optimizer("amsgrad", p, resolve_hparams("amsgrad", {})).defaults["amsgrad"] is True
    assert build_optimizer("momentum", p, resolve_hparams("momentum", {})).defaults["momentum"] == 0.9


def test_inline_syntax_parses_numbers_tuples_and_booleans():
    assert parse_optimizer_arg("adam:lr=3e-4,betas=0.9/0.98,amsgrad=true") == (
        "adam", {"lr": 3e-4, "betas": (0.9, 0.98), "amsgrad": True})
    assert parse_optimizer_arg("sgd") == ("sgd", {})


def test_int_where_a_float_is_expected_is_accepted():
    assert resolve_hparams("sgd", {"lr": 1})["lr"] == 1.0


@pytest.mark.parametrize("name, overrides, message", [
    ("adam", {"learning_rate": 0.1}, "unknown hyperparameter 'learning_rate' for optimizer 'adam'; valid keys: amsgrad, betas"),
    ("adam", {"lr": "abc"}, "must be a number, got 'abc'"),
    ("adam", {"lr": -1.0}, "learning rate of 'adam' must be > 0"),
    ("adam", {"lr": 0}, "must be > 0"),
    ("adam", {"betas": (0.9, 1.5)}, "betas of 'adam' must each be in [0, 1)"),
    ("adam", {"betas": 0.9}, "must be 2 numbers separated by '/'"),
    ("momentum", {"momentum": -0.5}, "bad hyperparameters for 'momentum': Invalid momentum value"),
    ("nesterov", {"nesterov": False}, "unknown hyperparameter 'nesterov'"),
])
def test_bad_hyperparameters_are_user_errors(name, overrides, message):
    with pytest.raises(UserError, match=None) as exc:
        resolve_hparams(name, overrides)
    assert message in str(exc.value)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(UserError) as exc:
        resolve_hparams("adamm", {})
    assert "did you mean 'adam'" in str(exc.value) and "sgd" in str(exc.value)
