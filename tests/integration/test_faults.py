"""Fault injection against the real parts: Docker, the embedded PostgreSQL, the file system.

Faults a passing moment can cause must never become lasting state, and no outage of one part
may take down the rest. Everything here runs on loopback or local sockets, every loop is
bounded, and only containers and processes the tests start themselves are killed: the Docker
daemon is shared and is never stopped (a proxy the test owns is cut instead).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
from conftest import require
from servers import ROOT

from graph.runner import Agent
from nodes.kit import services
from sandbox import Limits, Sandbox
from sandbox.docker_backend import DockerBackend, connect
from sandbox.image import image_tag
from sandbox.ownership import LABEL, OWNER_LABEL, owner_gone, owner_labels, remove, sweep

PLAN = {"kind": "single", "standalone_request": "double the number 21"}
SPEC = {"name": "double_number", "description": "Double a number.",
        "parameters": [{"name": "x", "type": "number", "description": "the number"}],
        "returns": {"type": "number"}}
TESTS = ("import time\nfrom tool import double_number\n\n"
         "def test_a():\n    assert double_number(2) == 4\n\n"
         "def test_b():\n    assert double_number(0) == 0\n\n"
         "def test_slow():\n    time.sleep(3)\n    assert double_number(-1) == -2\n")
GOOD = "def double_number(x):\n    return 2 * x\n"
ADD = "def add(a, b):\n    return a + b\n"
SLOW_SUITE = ("import time\nfrom tool import add\n\n"
              "def test_slow():\n    time.sleep(3)\n    assert add(1, 2) == 3\n")


def script(tmp_path: Path, **overrides) -> Path:
    """Write a scripted model that synthesizes double_number (every step may be replaced)."""
    steps = {"plan": [PLAN], "spec": [SPEC], "tests": [{"tests": TESTS}],
             "impl": [{"code": GOOD}], "reflect": [{"code": GOOD}],
             "args": [{"arguments": {"x": 21}}], "answer": [{"answer": "42"}],
             # Discovery reuses only on strong evidence: a later turn asks the judge first.
             "judge": [{"serves": True, "tool": "double_number", "reason": "same operation"}]}
    steps.update(overrides)
    path = tmp_path / f"script-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps({"replies": [{"step": step, "match": "", "replies": replies}
                                            for step, replies in steps.items()]}))
    return path


@pytest.fixture
def make_agent(docker_sandbox):
    """Agents on throwaway library schemas, with a cold Docker sandbox."""
    made = []

    def make(script_path: Path, schema: str | None = None, **context) -> Agent:
        agent = Agent(model=f"scripted:{script_path}", sandbox_backend="docker", sandbox_pool=0,
                      library_schema=schema or f"f_{uuid.uuid4().hex[:10]}", **context)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        services.library(agent.context.library_schema).drop()
        services.forget_library(agent.context.library_schema)
        agent.close()


def library_of(agent: Agent):
    return services.library(agent.context.library_schema)


def mine() -> str:
    """Return the label filter that selects this process's sandbox containers."""
    return f"{OWNER_LABEL}={owner_labels()[OWNER_LABEL]}"


class Killer:
    """Kill this process's sandbox containers from outside once they have run ``after`` s."""

    def __init__(self, limit: int, after: float = 1.0):
        self.client = connect()
        self.limit, self.after = limit, after
        self.killed: list[str] = []
        self._stop = threading.Event()
        self._old = {c["Id"] for c in self.client.api.containers(
            all=True, filters={"label": [LABEL, mine()]})}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        seen: dict[str, float] = {}
        deadline = time.monotonic() + 300
        while not self._stop.is_set() and len(self.killed) < self.limit and (
                time.monotonic() < deadline):
            for item in self.client.api.containers(filters={"label": [LABEL, mine()],
                                                            "status": "running"}):
                cid = item["Id"]
                if cid in self._old or cid in self.killed:
                    continue
                first = seen.setdefault(cid, time.monotonic())
                if time.monotonic() - first >= self.after and len(self.killed) < self.limit:
                    try:
                        self.client.api.kill(cid)
                        self.killed.append(cid)
                    except Exception:
                        pass  # it ended by itself meanwhile
            time.sleep(0.05)

    def __enter__(self) -> Killer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


# -- 1. outcomes are classified before anyone reflects on them -------------------------------

def test_a_container_killed_mid_verify_is_retried_once_on_a_fresh_one(make_agent, tmp_path):
    agent = make_agent(script(tmp_path))
    with Killer(limit=1) as killer:
        state = agent.ask("double the number 21")
    assert len(killer.killed) == 1  # the fault really happened
    assert not state["error"] and state["result"] == 42
    assert state["route"].count("verify") == 1 and "reflect" not in state["route"]
    assert state["tool"]["status"] == "verified" and state["report"]["status"] == "passed"


def test_containers_killed_mid_verify_end_in_a_clear_error_and_no_tool(make_agent, tmp_path):
    agent = make_agent(script(tmp_path))
    with Killer(limit=10) as killer:
        state = agent.ask("double the number 21")
    assert len(killer.killed) == 2  # the first run and its one retry on a fresh container
    assert state["route"][-2:] == ["verify", "answer"] and "reflect" not in state["route"]
    assert "stopped from outside" in state["error"] and "Nothing was registered" in \
        state["error"]
    assert state["report"]["status"] == "infrastructure"
    assert library_of(agent).list_tools(include_retired=True) == []
    assert library_of(agent).reflections("double_number") == []


def test_a_mutation_gate_the_sandbox_broke_registers_nothing(make_agent, tmp_path):
    agent = make_agent(script(tmp_path))
    # Made now, so that it knows no container of the turn (one made at the event could take
    # the gate's container, already started, for an older one); started at the event.
    killer = Killer(limit=10, after=0.5)

    def kill_the_gate(event: dict) -> None:  # the suite has passed: only the gate's runs die
        if event["message"].startswith("mutation gate: running") and \
                killer._thread.ident is None:
            killer.__enter__()

    try:
        state = agent.ask("double the number 21", on_event=kill_the_gate)
    finally:
        if killer._thread.ident is not None:
            killer.__exit__(None, None, None)
    assert len(killer.killed) == 2  # the gate's run and its one retry
    # Before, the gate said "not measured" and the tool was registered verified on a suite
    # whose strength nobody knew.
    assert "mutation gate measured the suite" in state["error"], state["error"]
    assert library_of(agent).list_tools(include_retired=True) == []


def test_only_the_cgroup_says_out_of_memory_and_a_dead_warm_container_is_replaced(
        docker_sandbox):
    with Killer(limit=10, after=0.8):
        report = docker_sandbox.verify(ADD, SLOW_SUITE)
    assert report.status == "infrastructure" and "exit status 137" in report.detail
    hog = "def add(a, b):\n    return len(b'x' * (600 * 1024 * 1024))\n"
    result = docker_sandbox.call(hog, "add", {"a": 1, "b": 2})
    assert result.status == "out_of_memory"  # Docker's OOMKilled, from the cgroup
    # A warm container killed while it waits (by another process's sweep, say): the call
    # still succeeds, on a fresh container.
    sandbox = Sandbox(DockerBackend(limits=docker_sandbox.limits, pool_size=1))
    try:
        assert sandbox.backend.pool.wait_ready(120)
        (waiting,) = sandbox.backend.pool.waiting()
        connect().api.kill(waiting.id)
        result = sandbox.call(ADD, "add", {"a": 2, "b": 3})
        assert result.ok and result.result == 5
    finally:
        sandbox.close()


def test_an_unreadable_input_file_ends_the_turn_before_any_synthesis(make_agent, tmp_path):
    agent = make_agent(script(tmp_path), input_files=[str(tmp_path / "missing.csv")])
    state = agent.ask("double the number 21")
    assert state["route"] == ["enrich", "answer"] and "missing.csv" in state["error"]
    # Through the sandbox itself the files are refused before anything runs: never the code's fault.
    report = Sandbox(DockerBackend(limits=replace(Limits(), timeout=10))).verify(
        ADD, SLOW_SUITE, files=[tmp_path / "missing.csv"])
    assert report.status == "input" and "missing.csv" in report.detail


# -- 7. Docker lost mid-run ---------------------------------------------------------------

class DockerProxy:
    """A unix-socket proxy to the Docker daemon, which the test cuts instead of the daemon."""

    def __init__(self, path: Path, target: str = "/var/run/docker.sock"):
        self.path, self.target = path, target
        self.sockets: list[socket.socket] = []

    def start(self) -> None:
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(self.path))
        self.server.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stop(self) -> None:
        self.server.close()
        self.path.unlink(missing_ok=True)
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self.sockets.clear()


@pytest.fixture
def short_dir():
    """A folder with a short path (a Unix socket's path has at most 107 bytes), removed after."""
    with tempfile.TemporaryDirectory(prefix="sea-proxy-") as folder:
        yield Path(folder)


def test_docker_lost_mid_run_says_what_docker_down_at_start_says(docker_sandbox, monkeypatch,
                                                                 short_dir):
    real = connect()
    path = short_dir / "docker.sock"
    proxy = DockerProxy(path)
    proxy.start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    backend = DockerBackend(limits=replace(Limits(), timeout=20))
    before = {c["Id"] for c in real.api.containers(all=True, filters={"label": [LABEL, mine()]})}
    outcome: dict = {}
    runner = threading.Thread(target=lambda: outcome.update(
        report=Sandbox(backend).verify(ADD, SLOW_SUITE)))
    runner.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not [c for c in real.api.containers(
            filters={"label": [LABEL, mine()], "status": "running"}) if c["Id"] not in before]:
        time.sleep(0.05)
    time.sleep(1.0)  # mid-run: the job is in, the suite sleeps
    proxy.stop()
    runner.join(120)
    lost = outcome["report"]
    down = Sandbox(DockerBackend()).verify(ADD, SLOW_SUITE)  # the same daemon, down at start
    assert lost.status == down.status == "unavailable"
    for report in (lost, down):
        assert report.detail.startswith("the Docker daemon is not reachable (")
        assert report.detail.endswith("); start it, or use the bwrap backend")
    # The container could not be removed while Docker was gone; once it answers, it is.
    left = {c["Id"] for c in real.api.containers(all=True, filters={"label": [LABEL, mine()]})
            } - before
    assert left and left <= backend.sweeper.orphans()
    proxy.start()
    backend.sweeper.remove_orphans()  # what the background sweep does once Docker answers
    assert not {c["Id"] for c in real.api.containers(all=True, filters={"label": LABEL})} & left
    proxy.stop()


# -- 3. ownership and sweeps ----------------------------------------------------------------

def _dead_owner() -> dict[str, str]:
    child = subprocess.Popen(["sleep", "60"])
    labels = owner_labels(child.pid)
    child.kill()
    child.wait()
    return labels


def test_owners_are_judged_by_pid_and_start_time():
    me = owner_labels()
    assert not owner_gone(me)
    assert owner_gone(_dead_owner())
    assert owner_gone({**me, "sea.owner.start": "1"})  # the pid was reused by another process
    assert not owner_gone({**me, OWNER_LABEL: f"elsewhere:{os.getpid()}"})  # not ours to judge
    assert not owner_gone({**_dead_owner(), "sea.owner.pidns": "pid:[1]"})  # nor this


class ScopedBackend(DockerBackend):
    """Docker backend whose containers carry the test's own label too (so sweeps see them)."""

    scope = ""

    def container_options(self) -> dict:
        options = super().container_options()
        options["labels"] = {**options["labels"], "sea.test": self.scope}
        return options


def test_the_sweep_race_fails_no_request(docker_sandbox):
    client = connect()
    scope = uuid.uuid4().hex
    label = f"sea.test={scope}"
    dead, image = _dead_owner(), image_tag()
    vanished = []
    real_remove = client.api.remove_container

    def counting_remove(*args, **kwargs):  # the real call, counting the races it loses
        try:
            return real_remove(*args, **kwargs)
        except Exception as exc:
            if getattr(exc, "status_code", None) in (404, 409):
                vanished.append(1)
            raise

    client.api.remove_container = counting_remove

    def create(labels: dict) -> str:
        return client.api.create_container(image, command=["true"],
                                           labels={**labels, "sea.test": scope})["Id"]

    kept = [create(owner_labels()) for _ in range(3)]
    stop, errors, failures, sweeps = threading.Event(), [], [], []
    backend = ScopedBackend(limits=docker_sandbox.limits)
    backend.scope = scope
    sandbox = Sandbox(backend)

    def sweeper() -> None:
        for _ in range(750):
            try:
                sweep(client, label=label)
                sweeps.append(1)
            except Exception as exc:
                errors.append(repr(exc))

    def churn() -> None:
        while not stop.is_set():
            made = [create(dead) for _ in range(4)]
            remove(client, made[0])  # vanishes under the sweepers' feet

    def requests() -> None:
        while not stop.is_set():
            result = sandbox.call(ADD, "add", {"a": 2, "b": 2})
            if not (result.ok and result.result == 4):
                failures.append(result.model_dump())

    threads = [threading.Thread(target=sweeper) for _ in range(4)]
    helpers = [threading.Thread(target=churn), threading.Thread(target=requests)]
    for thread in threads + helpers:
        thread.start()
    for thread in threads:
        thread.join(600)
    stop.set()
    for thread in helpers:
        thread.join(120)
    sandbox.close()
    assert errors == [] and len(sweeps) == 3000
    assert failures == []
    assert vanished, "the race never happened: no sweep met a container that had vanished"
    sweep(client, label=label)
    left = {c["Id"] for c in client.api.containers(all=True, filters={"label": [LABEL, label]})}
    assert left == set(kept)  # live owners' containers are never swept
    for cid in kept:
        remove(client, cid)


CHILD = """
import sys, time
from sandbox import shared_sandbox
sandbox = shared_sandbox("docker", int(sys.argv[1]))
assert sandbox.backend.pool.wait_ready(180)
print(" ".join(c.id for c in sandbox.backend.pool.waiting()), flush=True)
try:
    time.sleep(600)
except KeyboardInterrupt:
    pass
"""


def test_a_sigkilled_owners_warm_containers_are_gone_within_a_bounded_time(docker_sandbox):
    client = connect()

    def start(pool: int, sweep_seconds: str) -> tuple[subprocess.Popen, set[str]]:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(pool)], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "SEA_SANDBOX_SWEEP_SECONDS": sweep_seconds})
        return proc, set(proc.stdout.readline().split())

    def existing(ids: set[str]) -> set[str]:
        listed = client.api.containers(all=True, filters={"label": LABEL})
        return {c["Id"] for c in listed} & ids

    live, live_ids = start(1, "1")  # a live process that sweeps every second
    owner, owned = start(2, "3600")
    try:
        assert len(owned) == 2 and existing(owned) == owned
        owner.kill()
        owner.wait()
        deadline = time.monotonic() + 60
        while existing(owned) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert existing(owned) == set()
        assert existing(live_ids) == live_ids  # a live owner's warm container stays
    finally:
        for proc in (owner, live):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(60)
        for cid in existing(owned | live_ids):
            remove(client, cid)


# -- 4. first use and same-name races -----------------------------------------------------

FRESH = """
import sys, time
from pathlib import Path
from graph.runner import Agent
from nodes.kit import services
from tools_store.models import ToolSpec

go, number = Path(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 600
while not go.exists():
    assert time.monotonic() < deadline
    time.sleep(0.02)
agent = Agent(sandbox_pool=0, library_schema="fresh")
library = services.library("fresh")
library.search("double a number")
library.register(ToolSpec(name=f"racer_{number}", description=f"Racer {number} races."),
                 f"def racer_{number}():\\n    return {number}\\n", "")
agent.close()
print("ok", flush=True)
"""
COUNT = """
from tools_store.library import ToolLibrary
print(sorted(t.name for t in ToolLibrary(schema="fresh").list_tools()))
"""


def test_eight_processes_on_a_fresh_database_all_succeed(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "SEA_HOME": str(home)}
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", FRESH, str(go), str(i)], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(8)]
    time.sleep(5)  # let them import; then all meet the new database at once
    go.touch()
    outs = [proc.communicate(timeout=900) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 8, [err[-2000:] for _, err in outs]
    assert all(out.strip() == "ok" for out, _ in outs)
    run = subprocess.run([sys.executable, "-c", COUNT], cwd=ROOT, env=env, text=True,
                         capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == str(sorted(f"racer_{i}" for i in range(8)))
    # The last process using the embedded server stopped it.
    assert not (home / "pg" / "postmaster.pid").exists()


SAME = """
import json, os, sys, time
from pathlib import Path
import tools_store.library as library_module
from graph.runner import Agent

gate = Path(sys.argv[1])
real = library_module.ToolLibrary.register_many

def meet_then_register(self, items, new_version=False, **options):
    # Both processes reach registration before either registers: the race, every time.
    (gate / str(os.getpid())).touch()
    deadline = time.monotonic() + 300
    while len(list(gate.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    return real(self, items, new_version=new_version, **options)

library_module.ToolLibrary.register_many = meet_then_register
agent = Agent(sandbox_pool=0)
state = agent.ask("double the number 21")
print(json.dumps({k: state.get(k) for k in ("answer", "result", "error", "route")}))
"""


def test_two_processes_synthesizing_the_same_tool_both_answer_and_one_tool_exists(
        tmp_path, docker_sandbox):
    schema = f"same_{uuid.uuid4().hex[:8]}"
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {**os.environ, "SEA_LIBRARY_SCHEMA": schema,
           "SEA_MODEL": f"scripted:{script(tmp_path)}"}
    procs = [subprocess.Popen([sys.executable, "-c", SAME, str(gate)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [proc.communicate(timeout=900) for proc in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    states = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert [s["result"] for s in states] == [42, 42] and not any(s["error"] for s in states)
    told = [s for s in states if "another session registered double_number v1" in s["answer"]]
    assert len(told) == 1 and told[0]["route"][-3:] == ["register", "execute", "answer"]
    library = services.library(schema)
    try:
        assert [t.name for t in library.list_tools()] == ["double_number"]
        assert len(library.versions("double_number")) == 1
    finally:
        library.drop()
        services.forget_library(schema)


# -- 5. the mirror is a mirror ------------------------------------------------------------

def sea(*args: str, env: dict) -> tuple[int, dict]:
    run = subprocess.run([sys.executable, "-m", "cli", *args, "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    return run.returncode, json.loads(run.stdout)


@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_a_mirror_that_cannot_be_written_leaves_search_and_reuse_working(
        make_agent, tmp_path, data_home, fault):
    schema = f"m_{uuid.uuid4().hex[:8]}"
    mirror = data_home / f"tools-{schema}"
    mirror.mkdir(parents=True)
    if fault == "read-only":
        mount = ["mount", "--bind", str(mirror), str(mirror)]
        remount = ["mount", "-o", "remount,bind,ro", str(mirror)]
    else:
        mount = ["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(mirror)]
        remount = ["dd", "if=/dev/zero", f"of={mirror}/filler", "bs=1k", "count=64"]
    env = {**os.environ, "SEA_LIBRARY_SCHEMA": schema,
           "SEA_MODEL": f"scripted:{script(tmp_path)}"}
    mounted = subprocess.run(mount, capture_output=True).returncode == 0
    require(mounted, "mounting a test folder needs root and mount privileges")
    try:
        subprocess.run(remount, capture_output=True)
        agent = make_agent(script(tmp_path), schema=schema)
        first = agent.ask("double the number 21")
        assert not first["error"] and first["result"] == 42
        assert first["tool"]["status"] == "verified"
        assert "its readable files could not be written" in first["answer"]
        assert not list(mirror.glob("*/.v*"))  # no staging folder left behind
        again = agent.ask("double the number 21")
        assert again["decision"] == "reuse" and again["result"] == 42
        code, fresh = sea("ask", "double the number 21", env=env)  # start-up repair fails
        assert code == 0 and fresh["decision"] == "reuse" and fresh["result"] == 42
        code, checked = sea("tools", "check", env=env)
        assert code == 1 and checked["differences"] == [
            {"kind": "missing", "name": "double_number", "version": 1,
             "files": ["tool.py", "test_tool.py", "spec.json"]}]
        code, repaired = sea("tools", "reconcile", env=env)
        assert code == 1 and repaired["failed"] == 1
    finally:
        subprocess.run(["umount", str(mirror)], capture_output=True)
    code, repaired = sea("tools", "reconcile", env=env)
    assert code == 0 and repaired["repairs"] == [
        "rewrote double_number v1: tool.py, test_tool.py, spec.json"]
    assert sea("tools", "check", env=env) == (0, {"differences": []})
    assert (mirror / "double_number" / "v1" / "tool.py").read_text() == GOOD


# -- 6. text at the edges -----------------------------------------------------------------

def test_nul_and_lone_surrogates_in_requests_end_in_clear_messages(make_agent, tmp_path):
    agent = make_agent(script(tmp_path))
    session = "hostile-text"
    for request, problem in (("double \x00 21", "a NUL character"),
                             ("double \ud800 21", "a lone surrogate")):
        state = agent.ask(request, session)
        assert problem in state["error"] and state["answer"].startswith("Sorry")
    state = agent.ask("double the number 21", session)  # the session is still usable
    assert state["result"] == 42
    env = {**os.environ, "SEA_MODEL": f"scripted:{script(tmp_path)}",
           "SEA_LIBRARY_SCHEMA": agent.context.library_schema}
    run = subprocess.run([sys.executable, "-m", "cli", "ask", b"double \xff 21", "--json"],
                         cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert run.returncode == 2
    assert "not valid UTF-8 (byte ff" in json.loads(run.stdout)["error"]
    run = subprocess.run([sys.executable, "-m", "cli", "chat"], cwd=ROOT, env=env,
                         input=b"double \xff 21\ndouble \x00 21\ndouble the number 21\n\n",
                         capture_output=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    answers = re.findall(r"agent> (.*)", run.stdout.decode())
    assert "not valid UTF-8" in answers[0] and "a NUL character" in answers[1]
    assert answers[2] == "42"


def test_a_session_id_no_session_can_be_keyed_by_is_refused_before_any_work(make_agent,
                                                                           tmp_path):
    # A 12,000-character id once ran a whole turn (a tool built and run) and then lost it at
    # the database's index; a NUL reached PostgreSQL through MCP; bytes that are not UTF-8
    # crashed the command line's printing.
    agent = make_agent(script(tmp_path))
    for session, problem in (("x" * 129, "has 129 characters; at most 128"),
                             ("a\x00b", "control character"), ("a\udcffb", "not valid UTF-8"),
                             ("two\nlines", "control character")):
        state = agent.ask("double the number 21", session)
        assert problem in state["error"] and state["route"] == [], state["route"]
        with pytest.raises(ValueError, match=problem):
            agent.library.feedback(session, serves=False)
    assert agent.library.list_tools() == []  # nothing was built for any of them
    assert agent.ask("double the number 21", "x" * 128)["result"] == 42
    env = {**os.environ, "SEA_MODEL": f"scripted:{script(tmp_path)}",
           "SEA_LIBRARY_SCHEMA": agent.context.library_schema}
    for command in (["ask", "double the number 21", "--session", b"a\xffb"],
                    ["chat", "--session", "y" * 200], ["feedback", b"\xff", "--wrong"]):
        run = subprocess.run([sys.executable, "-m", "cli", *command], cwd=ROOT, env=env,
                             capture_output=True, timeout=300, input=b"")
        assert run.returncode == 2 and b"Traceback" not in run.stderr
        assert b"the session id" in run.stderr.splitlines()[-1], run.stderr[-500:]


def test_a_result_that_cannot_be_stored_is_escaped_and_still_logged(make_agent, tmp_path):
    from tools_store.models import Returns, ToolSpec

    agent = make_agent(script(tmp_path, plan=[{"kind": "single",
                                               "standalone_request": "join the odd text"}],
                              args=[{"arguments": {}}],
                              judge=[{"serves": True, "tool": "odd_text", "reason": "it joins"}]))
    spec = ToolSpec(name="odd_text", description="Join the odd text.",
                    examples=["join the odd text"], returns=Returns(type="array"))
    code = "def odd_text():\n    return ['a\\x00b', '\\ud800', {'k\\x00': 1}]\n"
    library_of(agent).register(spec, code, "")
    state = agent.ask("join the odd text")
    assert state["decision"] == "reuse" and not state["error"]
    assert state["result"] == ["a\\x00b", "\\ud800", {"k\\x00": 1}]
    assert "held a NUL character, shown escaped" in state["answer"]
    (logged,) = library_of(agent).executions("odd_text")
    assert logged["success"] and logged["output"] == state["result"]


def test_a_turn_cut_off_by_a_killed_process_leaves_no_question_without_a_reply(tmp_path):
    from app_scripts import SLOW_REQUEST, write_script

    from tools_store.library import ToolLibrary

    script = write_script(tmp_path / "script.json")
    schema, session = f"killed_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:12]
    env = {**os.environ, "SEA_MODEL": f"scripted:{script}", "SEA_LIBRARY_SCHEMA": schema}
    child = subprocess.Popen([sys.executable, "-m", "cli", "ask", SLOW_REQUEST, "--session",
                              session, "--json", "--in-process"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    library = ToolLibrary(schema=schema)
    try:
        # Its tool is registered, then called: the call sleeps for seconds, so the turn is
        # mid-way (past the steps that add the question to the session) when it is killed.
        deadline = time.monotonic() + 120
        while not library.name_taken("slow_echo") and time.monotonic() < deadline:
            assert child.poll() is None, "the turn ended before it could be cut off"
            time.sleep(0.2)
        assert library.name_taken("slow_echo")
        time.sleep(2)
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()
        library.close()
    agent = Agent(model=f"scripted:{script}", library_schema=schema)
    try:
        assert agent.conversation(session) == []
        # The session goes on as if the cut-off turn had never started.
        state = agent.ask("convert 100 degrees Fahrenheit to Celsius", session)
        assert not state["error"]
        assert [m["role"] for m in agent.conversation(session)] == ["user", "assistant"]
    finally:
        agent.close()
        sweep(connect())  # the killed process's containers


# -- 7. the embedded PostgreSQL: stopped with its last user, recovered after a kill --------

HOLD = """
import sys, time
from tools_store.db import connect, database_url
connect(database_url()).execute("SELECT 1")
print("up", flush=True)
if sys.argv[1] == "hold":
    time.sleep(600)
"""


def test_the_embedded_database_survives_killed_users_and_stops_with_the_last(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "SEA_HOME": str(home)}
    pgdata = home / "pg"

    def run(mode: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, mode], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "up", proc.stderr.read()[-8000:]
        return proc

    def postmaster() -> int | None:
        try:
            return int((pgdata / "postmaster.pid").read_text().split()[0])
        except OSError:
            return None

    holder = run("hold")
    holder.kill()  # SIGKILL: it never says it is done with the server
    holder.wait()
    assert holder.pid in json.loads((pgdata / ".handle_pids.json").read_text())
    last = run("once")
    assert last.wait(120) == 0
    assert postmaster() is None  # the last live user stopped it, the dead one forgotten
    holder = run("hold")
    server = psutil.Process(postmaster())
    backends = server.children()
    server.kill()  # the server itself dies mid-use
    holder.kill()
    holder.wait()
    psutil.wait_procs(backends, timeout=60)  # its backends notice and exit
    last = run("once")  # stale postmaster.pid, stale users: it starts anyway
    assert last.wait(120) == 0
    assert postmaster() is None


def test_pooled_connections_the_server_dropped_are_replaced_not_reported(data_home):
    # A restarted or failed-over server ends every open connection: the next turn must get a
    # fresh one from each pool, not "the library's database failed: AdminShutdown".
    from psycopg_pool import ConnectionPool

    from tools_store.db import connect as connect_db
    from tools_store.library import ToolLibrary
    from tools_store.turns import TurnLog

    library = ToolLibrary(schema=f"drop_{uuid.uuid4().hex[:8]}")
    log = TurnLog(library.url, library.schema)
    agent = Agent(model="scripted:none", sandbox_backend="docker", sandbox_pool=0,
                  library_schema=library.schema)
    pools: list[ConnectionPool] = [library._reads.pool(), log.pool, agent.pool]
    try:
        library.list_tools()
        log.sessions("local")
        agent.state("s")
        ended = []
        for pool in pools:  # every connection each pool holds
            held = [pool.getconn() for _ in range(pool.get_stats()["pool_size"])]
            ended += [conn.info.backend_pid for conn in held]
            for conn in held:
                pool.putconn(conn)
        with connect_db(library.url) as admin:
            admin.execute("SELECT pg_terminate_backend(pid, 10000) "  # waits until gone
                          "FROM unnest(%s::int[]) AS pid", (ended,))
        assert library.list_tools() == [] and log.sessions("local") == []
        assert not agent.state("s")
        for pool in pools:
            with pool.connection() as conn:
                assert conn.info.backend_pid not in ended
    finally:
        agent.close()
        log.close()
        library.drop()
        library.close()


# -- 5. Ctrl-C ----------------------------------------------------------------------------

SLEEPER = "import time\n\n\ndef sleeper(seconds):\n    time.sleep(seconds)\n    return seconds\n"


def test_an_aborted_sandbox_ends_the_run_in_flight_and_runs_nothing_more(any_sandbox):
    from sandbox import make_sandbox
    from sandbox.core import STOPPING

    # One of its own, on the fixture's backend: an aborted sandbox refuses runs for good.
    sandbox = make_sandbox("docker" if "docker" in any_sandbox.backend.name else "bwrap")
    runs = []
    real_run = sandbox.backend.run
    sandbox.backend.run = lambda job: runs.append(job) or real_run(job)
    outcome = {}
    caller = threading.Thread(target=lambda: outcome.update(
        call=sandbox.call(SLEEPER, "sleeper", {"seconds": 20})))
    caller.start()
    try:
        deadline = time.monotonic() + 60
        while not sandbox.backend._in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # the tool is asleep inside its run
        sandbox.abort()
        caller.join(60)
        call = outcome["call"]
        # Not a verdict on the tool (before: a 20 s wait, then a success), and not tried
        # again on a fresh container as a fault would be.
        assert (call.status, call.error) == ("unavailable", STOPPING) and len(runs) == 1
        assert sandbox.verify(SLEEPER, "def test_x():\n    pass\n").status == "unavailable"
        assert len(runs) == 1
    finally:
        sandbox.close()


def test_a_run_that_starts_as_its_backend_is_aborted_is_ended_too(any_sandbox):
    from sandbox import make_sandbox
    from sandbox.core import KILLED, Limits, build_job

    backend = make_sandbox("docker" if "docker" in any_sandbox.backend.name else "bwrap").backend
    try:
        # Aborted after Sandbox's own check, before this run was in flight: the window that
        # let a starting run go on to its end (here 20 s of sleep, then its report).
        backend.abort()
        raw = backend.run(build_job("call", SLEEPER, None, {}, Limits(), function="sleeper",
                                    args={"seconds": 20}))
        assert raw.exit_code in KILLED and '"seconds": 20' not in raw.output
    finally:
        backend.close()


def test_ctrl_c_in_sea_ask_ends_the_running_tool_and_closes_the_turn(docker_sandbox, tmp_path):
    from app_scripts import SLOW_REQUEST, write_script
    from conftest import sandbox_containers

    from graph.runner import STOPPED

    schema = f"ctrl_c_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "SEA_MODEL": f"scripted:{write_script(tmp_path / 'script.json')}",
           "SEA_LIBRARY_SCHEMA": schema}
    ask = subprocess.Popen([sys.executable, "-m", "cli", "ask", SLOW_REQUEST, "--session",
                            "ctrl-c-1"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        for line in ask.stdout:
            if "[execute] calling slow_echo" in line:
                break
        time.sleep(2.0)  # the tool sleeps for 15 s in its container
        ask.send_signal(signal.SIGINT)
        assert ask.wait(120) == 130
    finally:
        if ask.poll() is None:
            ask.kill()
    assert sandbox_containers(ask.pid) == []
    agent = Agent(sandbox_pool=0, library_schema=schema)
    try:
        assert [m["content"] for m in agent.conversation("ctrl-c-1")] == [SLOW_REQUEST,
                                                                          STOPPED]
        # Before, the tool ran its 15 s to the end first, and that run was logged a success.
        assert agent.library.executions("slow_echo") == []
        assert agent.library.get("slow_echo").status == "verified"
    finally:
        services.library(schema).drop()
        services.forget_library(schema)
        agent.close()
