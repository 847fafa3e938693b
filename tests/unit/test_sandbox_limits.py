"""Sandbox limits that would not limit are refused, never passed to Docker as "no limit"."""

from dataclasses import replace

import pytest

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
