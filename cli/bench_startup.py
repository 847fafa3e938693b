"""`sea bench startup`: what a fresh `sea ask` costs, with PostgreSQL up and from nothing.

Each figure is a fresh process: wall time and peak memory (from the kernel's accounting of
that one child) of a reuse request, the import time of the graph package, and the embedding
model's load and per-query time.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SYNTHESIS = "convert 100 degrees Fahrenheit to Celsius"
REUSE = "it's 98.6 F, what is that in celsius?"


def _child(command: list[str], env: dict) -> tuple[float, float, str]:
    """Run one fresh process; return its wall seconds, peak RSS in MB and its stdout."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:5])} failed ({process.returncode}): "
                           f"{out[-500:]}")
    return wall, usage.ru_maxrss / 1024, out


def _ask(request: str, env: dict) -> tuple[float, float, dict]:
    wall, rss, out = _child([sys.executable, "-m", "cli", "ask", request, "--json",
                             "--in-process"], env)
    return wall, rss, json.loads(out)


def _summary(walls: list[float], rss: list[float]) -> dict:
    return {"wall_s_median": round(statistics.median(walls), 3),
            "peak_rss_mb_median": round(statistics.median(rss), 1),
            "wall_s": [round(w, 3) for w in walls]}


def bench_startup(runs: int = 5) -> dict:
    """Measure fresh-process reuse turns, import time and the embeddings."""
    from nodes.kit.context import DEMO_SCRIPT
    from tools_store.pg_idle import release

    results: dict = {"runs": runs, "request": REUSE}
    with tempfile.TemporaryDirectory(prefix="sea-bench-startup-") as home:
        env = {**os.environ, "SEA_HOME": home, "SEA_MODEL": f"scripted:{DEMO_SCRIPT}",
               "SEA_LIBRARY_SCHEMA": "sea", "HF_HUB_OFFLINE": "1"}
        # From nothing: no idle period, so every command starts and stops the database.
        cold_env = {**env, "SEA_PG_IDLE_SECONDS": "0"}
        _ask(SYNTHESIS, cold_env)  # the library holds the tool; the database stops with it
        cold = [_ask(REUSE, cold_env) for _ in range(runs)]
        if any(turn["decision"] != "reuse" for _, _, turn in cold):
            raise RuntimeError(f"expected reuse turns, got {[t['route'] for *_, t in cold]}")
        results["database_from_nothing"] = _summary([w for w, _, _ in cold],
                                                    [r for _, r, _ in cold])
        # Consecutive commands: the first leaves the database up for the idle period.
        idle_env = {**env, "SEA_PG_IDLE_SECONDS": "120"}
        try:
            _ask(REUSE, idle_env)
            warm = [_ask(REUSE, idle_env) for _ in range(runs)]
        finally:
            release(Path(home) / "pg")
        results["database_up"] = _summary([w for w, _, _ in warm], [r for _, r, _ in warm])
        # Imported as the command line imports it: its deferred packages deferred first.
        code = ("import time; t = time.perf_counter(); import cli.lean_imports; "
                "cli.lean_imports.install(); import graph.agent; "
                "print(time.perf_counter() - t)")
        imports = [float(_child([sys.executable, "-c", code], env)[2]) for _ in range(runs)]
        results["import_graph_s_median"] = round(statistics.median(imports), 3)
    from .bench_embeddings import bench_embeddings

    results["embeddings"] = bench_embeddings()
    return results


def cmd_startup(args) -> int:
    """Print the start-up benchmark."""
    from .output import emit

    emit(bench_startup(args.runs), args.json)
    return 0


def add_bench_parser(bench_sub) -> None:
    """Add `sea bench startup`."""
    p = bench_sub.add_parser("startup", help="a fresh sea ask: wall time and peak memory")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_startup)
