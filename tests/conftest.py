"""Shared fixtures: the real sandbox backends, a throwaway data directory, a real Postgres.

Tests that need Docker or bubblewrap skip with a reason on a machine without them, except in
CI (``CI=true``), where a missing part is a failure.
"""

from __future__ import annotations

import atexit
import os
import shutil
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
# Registered before anything starts the embedded PostgreSQL under it, so it runs after the
# server's own exit handler has stopped it: a test run leaves no data directory behind.
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
# No resident agent unless a test asks for one: an app under test would otherwise serve
# every `sea ask` the other tests run.
os.environ["SEA_RESIDENT"] = "off"
# Throwaway data folders must not keep a PostgreSQL up after their test: no idle period,
# unless a test asks for one.
os.environ["SEA_PG_IDLE_SECONDS"] = "0"
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
    """List this session's processes of a sandbox user (uids from UID_FLOOR up): the runner,
    the tests, the implementation and anything they started, under any name.

    Only descendants of this test process count (a bubblewrap run's processes stay inside its
    pid namespace under the runner, or die with it); Docker's live in containers, which
    sandbox_containers() checks. Runs of other checkouts sharing the machine do not count.
    """
    from sandbox.core import UID_FLOOR

    out = subprocess.run(["ps", "-eo", "pid=,ppid=,uid=,args="], capture_output=True,
                         text=True).stdout
    rows = [line.split(None, 3) for line in out.splitlines() if len(line.split()) >= 3]
    parent = {int(r[0]): int(r[1]) for r in rows}
    mine = {os.getpid()}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parent.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                changed = True
    return [" ".join(r) for r in rows
            if int(r[0]) in mine and int(r[2]) >= UID_FLOOR]


def sandbox_containers(pid: int | None = None) -> list:
    """List the sandbox containers of this process (or process ``pid``) that Docker still has.

    Other processes (other test runs on a shared daemon) have their own.
    """
    from sandbox.docker_backend import connect
    from sandbox.ownership import LABEL, OWNER_LABEL, owner_labels

    mine = f"{OWNER_LABEL}={owner_labels(pid)[OWNER_LABEL]}"
    return connect().containers.list(all=True, filters={"label": [LABEL, mine]},
                                     ignore_removed=True)


def sandbox_cgroups() -> list[Path]:
    """List the bubblewrap backend's cgroups still on the host."""
    root = Path("/sys/fs/cgroup")
    patterns = ["sea-*", "*/sea-*", "*/*/sea-*", "*/*/*/sea-*"]
    return [p for pattern in patterns for p in root.glob(pattern) if p.is_dir()]


@pytest.fixture(scope="session")
def data_home() -> Path:
    """The throwaway data directory for this test session."""
    return Path(_HOME)
