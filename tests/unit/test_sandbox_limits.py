"""Sandbox limits that would not limit are refused, never passed to Docker as "no limit"."""

from dataclasses import replace

import pytest

from cli.main import main
from sandbox import make_sandbox
from sandbox.core import LimitError, Limits


@pytest.mark.parametrize("variable, value, says", [
    ("SEA_SANDBOX_MEMORY_MB", "0", "memory_mb (set by SEA_SANDBOX_MEMORY_MB) must be above 0"),
    ("SEA_SANDBOX_PIDS", "-1", "pids (set by SEA_SANDBOX_PIDS) must be above 0"),
    ("SEA_SANDBOX_TIMEOUT", "nan", "timeout (set by SEA_SANDBOX_TIMEOUT) must be above 0"),
    ("SEA_SANDBOX_TIMEOUT", "1e309", "not inf"),
    ("SEA_SANDBOX_MEMORY_MB", "abc", "SEA_SANDBOX_MEMORY_MB='abc' is not a whole number"),
    ("SEA_SANDBOX_CPUS", "half", "SEA_SANDBOX_CPUS='half' is not a number"),
])
def test_a_limit_from_the_environment_that_would_not_limit_is_refused(monkeypatch, variable,
                                                                       value, says):
    monkeypatch.setenv(variable, value)
    with pytest.raises(LimitError, match=says.replace("(", r"\(").replace(")", r"\)")):
        Limits()


@pytest.mark.parametrize("change", [{"timeout": 0.0}, {"timeout": -5.0}, {"memory_mb": 0},
                                    {"output_bytes": 10**12}, {"nofile": True}])
def test_a_limit_given_in_code_is_checked_too(change):
    with pytest.raises(LimitError, match=f"the sandbox limit {next(iter(change))} must be"):
        replace(Limits(), **change)


def test_the_defaults_and_real_settings_pass(monkeypatch):
    monkeypatch.setenv("SEA_SANDBOX_MEMORY_MB", "512")
    assert Limits().memory_mb == 512
    assert replace(Limits(), timeout=0.5, cpus=2.0).timeout == 0.5


@pytest.mark.parametrize("size", [-5, 65, 2.5, True])
def test_a_warm_pool_size_out_of_range_is_refused_before_any_backend(size):
    with pytest.raises(LimitError, match="the warm pool size must be a whole number from 0 to"):
        make_sandbox("docker", pool_size=size)


def test_the_command_line_refuses_it_as_an_argument(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["ask", "convert 1 km to miles", "--pool", "-5"])
    assert stopped.value.code == 2
    assert "argument --pool: a whole number from 0 to 64, not '-5'" in capsys.readouterr().err
