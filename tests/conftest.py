"""Shared fixtures: the real sandbox backends, a throwaway data directory, a real Postgres.

Tests that need Docker or bubblewrap skip with a reason on a machine without them, except in
CI (``CI=true``), where a missing part is a failure.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

# The root filesystem is built once into the project's data directory; pin it before the
# tests move SEA_HOME to a throwaway folder.
from sandbox.image import rootfs_dir

os.environ.setdefault("SEA_SANDBOX_ROOTFS", str(rootfs_dir()))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_HOME = tempfile.mkdtemp(prefix="sea-test-home-")
os.environ["SEA_HOME"] = _HOME
for key in ("OPENAI_API_KEY", "SEA_MODEL", "DATABASE_URL"):
    os.environ.pop(key, None)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ATTACK_TIMEOUT = 4.0


def require(available: bool, reason: str) -> None:
    """Skip when a real part is missing on a user's machine; fail in CI."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI must provide this: {reason}")
    pytest.skip(reason)


def _sandbox(backend: str, pool_size: int = 0):
    from dataclasses import replace

    from sandbox import Limits, make_sandbox
    from sandbox.doctor import doctor

    info = doctor()["docker" if backend == "docker" else "bwrap"]
    require(bool(info.get("ok")), f"{backend} sandbox unavailable: {info.get('error')}")
    return make_sandbox(backend, pool_size=pool_size,
                        limits=replace(Limits(), timeout=ATTACK_TIMEOUT, grace=3.0))


@pytest.fixture(scope="session")
def docker_sandbox():
    """A cold Docker sandbox with a short wall-time limit."""
    sandbox = _sandbox("docker")
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="session")
def bwrap_sandbox():
    """A bubblewrap sandbox with a short wall-time limit."""
    sandbox = _sandbox("bwrap")
    yield sandbox
    sandbox.close()


@pytest.fixture(params=["docker", "bwrap"])
def any_sandbox(request):
    """Each backend in turn."""
    return request.getfixturevalue(f"{request.param}_sandbox")


def sandbox_processes() -> list[str]:
    """List host processes of a sandbox user: the runner, the tests, the implementation, and
    anything they started under any name (none may outlive a run)."""
    from sandbox.core import UID_FLOOR

    out = subprocess.run(["ps", "-eo", "pid=,uid=,args="], capture_output=True,
                         text=True).stdout
    return [line.strip() for line in out.splitlines()
            if line.split()[1].isdigit() and int(line.split()[1]) >= UID_FLOOR]


def sandbox_containers() -> list:
    """List the sandbox containers of this checkout's image that Docker still has.

    Sparse, so a container removed between the listing and its inspection is no error; by
    image, so other checkouts sharing the Docker engine do not count.
    """
    from sandbox.docker_backend import LABEL, connect
    from sandbox.image import image_tag

    return connect().containers.list(all=True, sparse=True,
                                     filters={"label": LABEL, "ancestor": image_tag()})


def sandbox_cgroups() -> list[Path]:
    """List the bubblewrap backend's cgroups still on the host."""
    root = Path("/sys/fs/cgroup")
    patterns = ["sea-*", "*/sea-*", "*/*/sea-*", "*/*/*/sea-*"]
    return [p for pattern in patterns for p in root.glob(pattern) if p.is_dir()]


@pytest.fixture(scope="session")
def data_home() -> Path:
    """The throwaway data directory for this test session."""
    return Path(_HOME)
