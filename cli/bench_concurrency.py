"""`sea bench concurrency`: concurrent reuse turns through one Agent, and through N processes.

Each level N runs a few rounds of N turns that start together (a barrier), with the warm
pool refilled between rounds, as a served app sees bursts. A sampler records the database
connections (``pg_stat_activity``) and the resident memory of the processes that serve.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from .output import emit, percentiles

SETUP = "convert 100 degrees Fahrenheit to Celsius"  # synthesizes the tool once
REQUEST = "it's 98.6 F, what is that in celsius?"  # then every turn reuses it
EXPECTED = 37.0


def _problem(state: dict) -> str:
    if state.get("error"):
        return state["error"]
    if state.get("decision") != "reuse" or state.get("result") != EXPECTED:
        return f"expected a reuse giving {EXPECTED}: {state.get('decision')} {state.get('result')}"
    return ""


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Sampler:
    """Record the peak of client connections to the database and of the servers' memory."""

    def __init__(self, url: str, pids: list[int]):
        from tools_store.db import connect

        self.conn = connect(url, autocommit=True)
        self.pids = pids
        self.connections = 0
        self.rss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            count = self.conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()").fetchone()[0]
            self.connections = max(self.connections, count)
            self.rss_mb = max(self.rss_mb, sum(_rss_mb(pid) for pid in self.pids))
            self._stop.wait(0.02)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self.conn.close()


def _level(turns: list[dict], walls: list[float], sampler: Sampler) -> dict:
    errors = [t["error"] for t in turns if t["error"]]
    return {"turns": len(turns), "throughput_turns_per_s": round(len(turns) / sum(walls), 2),
            "latency_s": percentiles([t["latency"] for t in turns], digits=3),
            "errors": len(errors), "error_examples": errors[:3],
            "peak_db_connections": sampler.connections, "peak_rss_mb": round(sampler.rss_mb)}


def bench_threads(levels: list[int], rounds: int, model: str, schema: str) -> dict:
    """Run N concurrent turns through one Agent (threads), N in ``levels``."""
    from graph.runner import Agent
    from nodes.kit import services
    from tools_store.db import database_url

    agent = Agent(model=model, sandbox_backend="docker", sandbox_pool=max(levels),
                  library_schema=schema)
    pool = services.sandbox("docker", max(levels)).backend.pool
    results: dict = {"pool": max(levels)}
    try:
        agent.ask(SETUP)
        agent.ask(REQUEST)  # warm: the embedding model, connections, the plan cache
        for n in levels:
            turns: list[dict] = []
            walls: list[float] = []
            with Sampler(database_url(), [os.getpid()]) as sampler:
                for _ in range(rounds):
                    pool.wait_ready(180)
                    barrier = threading.Barrier(n)

                    def one() -> None:
                        barrier.wait()
                        started = time.perf_counter()
                        try:
                            problem = _problem(agent.ask(REQUEST))
                        except Exception as exc:  # a crash is an error of the bench's count
                            problem = f"{type(exc).__name__}: {exc}"
                        turns.append({"latency": time.perf_counter() - started,
                                      "error": problem})

                    threads = [threading.Thread(target=one) for _ in range(n)]
                    started = time.perf_counter()
                    for thread in threads:
                        thread.start()
                    for thread in threads:
                        thread.join()
                    walls.append(time.perf_counter() - started)
            results[str(n)] = _level(turns, walls, sampler)
    finally:
        agent.close()
    return results


CHILD = """
import json, resource, sys, time
from pathlib import Path
from graph.runner import Agent
from nodes.kit import services
model, schema, rounds, gates = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
agent = Agent(model=model, sandbox_backend="docker", sandbox_pool=1, library_schema=schema)
pool = services.sandbox("docker", 1).backend.pool
agent.ask(sys.argv[5])
turns = []
for r in range(rounds):
    pool.wait_ready(180)
    print(f"ready {r}", flush=True)
    deadline = time.monotonic() + 600
    while not (gates / str(r)).exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    started = time.time()
    try:
        state = agent.ask(sys.argv[5])
        problem = state.get("error") or ("" if state.get("decision") == "reuse"
                                         and state.get("result") == float(sys.argv[6])
                                         else f"unexpected: {state.get('decision')} "
                                              f"{state.get('result')}")
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"
    turns.append({"round": r, "start": started, "end": time.time(), "error": problem})
agent.close()
print(json.dumps({"turns": turns,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def bench_processes(levels: list[int], rounds: int, model: str, schema: str,
                    url: str) -> dict:
    """Run N concurrent turns through N processes (one Agent each), N in ``levels``."""
    root = Path(__file__).resolve().parents[1]
    results: dict = {}
    for n in levels:
        gates = Path(tempfile.mkdtemp(prefix="sea-bench-"))
        procs = [subprocess.Popen([sys.executable, "-c", CHILD, model, schema, str(rounds),
                                   str(gates), REQUEST, str(EXPECTED)], cwd=root,
                                  stdout=subprocess.PIPE, text=True) for _ in range(n)]
        with Sampler(url, [p.pid for p in procs]) as sampler:
            for r in range(rounds):
                for proc in procs:
                    line = proc.stdout.readline()
                    if line.strip() != f"ready {r}":
                        raise RuntimeError(f"a bench process failed before round {r}: {line}")
                (gates / str(r)).touch()
            reports = [json.loads(proc.stdout.read().strip().splitlines()[-1]) for proc in procs]
        for proc in procs:
            proc.wait(60)
        turns = [{"latency": t["end"] - t["start"], **t} for rep in reports for t in rep["turns"]]
        walls = [max(t["end"] for t in turns if t["round"] == r)
                 - min(t["start"] for t in turns if t["round"] == r) for r in range(rounds)]
        results[str(n)] = {**_level(turns, walls, sampler),
                           "max_rss_per_process_mb": round(max(r["maxrss_mb"] for r in reports))}
    return results


def cmd_concurrency(args) -> int:
    """Print the concurrency benchmark."""
    from nodes.kit import services
    from nodes.kit.scripted import DEMO_SCRIPT
    from tools_store.db import database_url

    model = args.model or f"scripted:{DEMO_SCRIPT}"
    levels = [int(n) for n in args.levels.split(",")]
    schema = f"sea_bench_{uuid.uuid4().hex[:8]}"
    payload: dict = {"model": model, "levels": levels, "rounds": args.rounds,
                     "request": REQUEST}
    try:
        if "threads" in args.modes:
            payload["one_agent_threads"] = bench_threads(levels, args.rounds, model, schema)
        if "processes" in args.modes:
            if "threads" not in args.modes:
                bench_threads([1], 1, model, schema)  # registers the tool
            payload["processes"] = bench_processes(levels, args.rounds, model, schema,
                                                   database_url())
    finally:
        services.library(schema).drop()
    emit(payload, args.json)
    return 0


def add_parser(bench_sub) -> None:
    """Add `sea bench concurrency`."""
    p = bench_sub.add_parser("concurrency", help="concurrent reuse turns: threads, processes")
    p.add_argument("--levels", default="1,2,4,8", help="concurrent turns, comma-separated")
    p.add_argument("--rounds", type=int, default=3, help="rounds of N turns at each level")
    p.add_argument("--modes", default="threads,processes")
    p.add_argument("--model", help="default: the scripted demo")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_concurrency)
