"""`sea bench ...`: benchmarks that print figures (never timed assertions in tests).

Why this module is long: every benchmark of the product lives here, each a few short
functions, so that the figures in the README have one place to come from.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from sandbox import Limits, SandboxUnavailable, make_sandbox
from tools_store.library import ToolLibrary

from . import bench_concurrency, bench_startup
from .ask import common_options, pool_size
from .output import emit, percentiles

BENCH_IMPL = "def add(a, b):\n    return a + b\n"
BENCH_TESTS = "from tool import add\n\n" + "\n".join(
    f"def test_add_{i}():\n    assert add({i}, 1) == {i + 1}\n" for i in range(5))


def _pool_memory_mb(size: int) -> float | None:
    """Measure what an idle warm pool of ``size`` costs the host (container memory)."""
    from sandbox.docker_backend import DockerBackend

    backend = DockerBackend(pool_size=size)
    try:
        if not backend.pool.wait_ready(60):
            return None
        time.sleep(1.0)
        total = 0
        ids = []
        for container in backend.pool.waiting():
            stats = container.stats(stream=False)
            total += stats.get("memory_stats", {}).get("usage", 0)
            ids.append(container.id)
        # Each container also costs the host a containerd shim process outside its cgroup.
        for status in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                cmdline = status.read_bytes()
                if b"containerd-shim" in cmdline and any(i.encode() in cmdline for i in ids):
                    rss = (status.parent / "statm").read_text().split()[1]
                    total += int(rss) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, IndexError, ValueError):
                continue
        return round(total / 2**20, 1)
    finally:
        backend.close()


def bench_sandbox(runs: int) -> dict:
    """Time verify and call on cold containers, the warm pool and bubblewrap."""
    results: dict = {"runs": runs, "limits": asdict(Limits())}
    for label, backend, pool in (("docker_cold", "docker", 0), ("docker_warm", "docker", 2),
                                 ("bwrap", "bwrap", 0)):
        try:
            sandbox = make_sandbox(backend, pool_size=pool)
        except SandboxUnavailable as exc:
            results[label] = {"error": str(exc)}
            continue
        pool_obj = getattr(sandbox.backend, "pool", None)
        timings: dict[str, list[float]] = {"verify": [], "call": []}
        error = ""
        try:
            for _ in range(runs):
                for op in ("verify", "call"):
                    if pool_obj:
                        pool_obj.wait_ready(60)  # measure the pool as an idle app sees it
                    start = time.perf_counter()
                    if op == "verify":
                        outcome = sandbox.verify(BENCH_IMPL, BENCH_TESTS)
                        good = outcome.ok
                    else:
                        outcome = sandbox.call(BENCH_IMPL, "add", {"a": 1, "b": 2})
                        good = outcome.ok and outcome.result == 3
                    timings[op].append(time.perf_counter() - start)
                    if not good:
                        error = f"{op} did not succeed: {outcome.model_dump_json()[:300]}"
                        break
                if error:
                    break
        finally:
            sandbox.close()
        results[label] = {op: percentiles(t) for op, t in timings.items() if t}
        if error:
            results[label]["error"] = error
    cold, warm = results.get("docker_cold", {}), results.get("docker_warm", {})
    if "verify" in cold and "verify" in warm:
        results["warm_speedup_verify"] = round(cold["verify"]["p50"] / warm["verify"]["p50"], 2)
    try:
        results["idle_pool_of_4_mb"] = _pool_memory_mb(4)
    except SandboxUnavailable as exc:
        results["idle_pool_of_4_mb"] = f"unavailable: {exc}"
    return results


def cmd_sandbox(args) -> int:
    """Print the sandbox benchmark."""
    emit(bench_sandbox(args.runs), args.json)
    return 0


WORDS = ["convert", "compute", "count", "parse", "format", "sort", "filter", "merge", "split",
         "validate", "encode", "hash", "round", "scale", "sum", "average", "extract", "rank"]
THINGS = ["temperatures", "distances", "dates", "invoices", "emails", "colors", "vectors",
          "matrices", "timestamps", "prices", "words", "urls", "files", "grades", "orders",
          "coordinates", "currencies", "phone numbers", "ip addresses", "durations"]


def _synthetic_spec(i: int):
    from tools_store.models import ToolSpec

    verb, thing = WORDS[i % len(WORDS)], THINGS[(i // len(WORDS)) % len(THINGS)]
    return ToolSpec(name=f"bench_tool_{i}",
                    description=f"{verb.capitalize()} {thing} (variant {i}) and return the "
                                f"result as JSON.")


def _add_bench_evidence(library: ToolLibrary, count: int, size: int) -> float:
    """Add ``count`` evidence rows (requests near the tools' purposes); return the seconds."""
    import numpy as np

    from tools_store import evidence
    from tools_store.models import Evidence

    start = time.perf_counter()
    bases = library.vector_store().embeddings.embed_documents(
        [_synthetic_spec(i).description for i in range(min(size, 500))])
    rng = np.random.default_rng(7)
    batch = 2000
    for offset in range(0, count, batch):
        items, vectors = [], []
        for i in range(offset, min(count, offset + batch)):
            vector = np.asarray(bases[i % len(bases)]) + rng.normal(0, 0.03, len(bases[0]))
            vectors.append((vector / np.linalg.norm(vector)).tolist())
            items.append(Evidence(request=f"benchmark request {i}", tool=f"bench_tool_{i % size}",
                                  version=1, serves=bool(i % 3), source=("judge", "user",
                                                                         "execution")[i % 3]))
        with library.connect() as conn, conn.transaction():
            evidence.add(conn, items, vectors)
    return time.perf_counter() - start


def bench_library(sizes: list[int], searches: int, evidence_per_tool: int = 5) -> dict:
    """Registration time and search latency (evidence lookup included) for the given sizes."""
    results: dict = {"sizes": {}, "evidence_rows_per_tool": evidence_per_tool}
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            library = ToolLibrary(schema=f"sea_bench_{uuid.uuid4().hex[:8]}",
                                  files_dir=Path(tmp))
            try:
                results["sizes"][str(size)] = _bench_library_size(library, size, searches,
                                                                  evidence_per_tool * size)
            finally:
                library.drop()
    return results


def _bench_library_size(library: ToolLibrary, size: int, searches: int,
                        evidence_rows: int) -> dict:
    code = "def f():\n    return 1\n"
    single: list[float] = []
    sample = min(20, size)
    start = time.perf_counter()
    batch = 500
    for offset in range(0, size - sample, batch):
        library.register_many([(_synthetic_spec(i), code, "", {}, "verified", "benchmark")
                               for i in range(offset, min(size - sample, offset + batch))])
    bulk_seconds = time.perf_counter() - start
    for i in range(size - sample, size):  # one at a time into a full library, as the agent
        start = time.perf_counter()
        library.register(_synthetic_spec(i), code, "", {}, "verified", "benchmark")
        single.append(time.perf_counter() - start)
    evidence_seconds = _add_bench_evidence(library, evidence_rows, size)
    queries = [f"{WORDS[i % len(WORDS)]} some {THINGS[i % len(THINGS)]}" for i in range(searches)]
    embeddings = library.vector_store().embeddings
    vectors = embeddings.embed_documents(queries)
    library.search(queries[0], vector=vectors[0])  # warm the connection and the plan
    with_embedding, without, lookups = [], [], []
    radius = library.decision_rule()["evidence"]
    for query, vector in zip(queries, vectors, strict=True):
        start = time.perf_counter()
        library.search(query, vector=vector)
        without.append(time.perf_counter() - start)
        start = time.perf_counter()
        library.nearby_evidence(query, vector, radius)
        lookups.append(time.perf_counter() - start)
        start = time.perf_counter()
        library.search(query)
        with_embedding.append(time.perf_counter() - start)
    return {"evidence_rows": evidence_rows, "evidence_insert_s": round(evidence_seconds, 2),
            "register_one_p50_s": round(statistics.median(single), 4),
            "register_bulk_per_tool_s": round(bulk_seconds / max(1, size - sample), 5),
            "search_without_embedding_ms": percentiles(without, 1000, 2),
            "evidence_lookup_alone_ms": percentiles(lookups, 1000, 2),
            "search_with_embedding_ms": percentiles(with_embedding, 1000, 2)}


def cmd_library(args) -> int:
    """Print the library benchmark."""
    emit(bench_library([int(s) for s in args.sizes.split(",")], args.searches,
                       args.evidence_per_tool), args.json)
    return 0


REPAIR_ROUTE = ["enrich", "plan", "retrieve", "decide", "execute", "reflect", "gate", "register",
                "execute", "answer"]
TWO_STEPS = "convert 100 degrees Fahrenheit to Celsius, then to Kelvin"


# A 5-test suite whose implementation has 20 mutants: the mutation gate's benchmark.
GATE_IMPL = """import re


def _minutes(clock):
    match = re.fullmatch(r"(\\d{1,2}):(\\d{2})", clock.strip())
    if not match:
        raise ValueError(f"not a time: {clock!r}")
    hours, minutes = int(match[1]), int(match[2])
    if hours > 23 or minutes > 59:
        raise ValueError(f"not a time: {clock!r}")
    return hours * 60 + minutes


def shift_minutes(start, end):
    return (_minutes(end) - _minutes(start)) % (24 * 60)
"""
GATE_TESTS = "import pytest\n\nfrom tool import shift_minutes\n" + "".join(
    f"\n\ndef test_{i}():\n    {body}\n" for i, body in enumerate([
        'assert shift_minutes("09:00", "17:30") == 510',
        'assert shift_minutes("22:30", "01:15") == 165',
        'assert shift_minutes("23:59", "00:00") == 1',
        'with pytest.raises(ValueError):\n        shift_minutes("25:00", "10:00")',
        'with pytest.raises(ValueError):\n        shift_minutes("10:00", "10:60")']))


def _gate_seconds(sandbox, runs: int) -> dict:
    """Time the gate alone: 20 mutants of a 5-test suite, in one sandbox run each time."""
    from sandbox.mutation import gate

    pool = getattr(sandbox.backend, "pool", None)
    timings, measured = [], None
    for _ in range(runs):
        if pool:
            pool.wait_ready(60)
        report = sandbox.verify(GATE_IMPL, GATE_TESTS)
        if pool:
            pool.wait_ready(60)
        start = time.perf_counter()
        measured = gate(sandbox, GATE_IMPL, GATE_TESTS, report)
        timings.append(time.perf_counter() - start)
    return {**percentiles(timings), "mutants": len(measured.mutants), "tests": report.passed,
            "score": measured.score}


def _synthesize(agent, library, pool, gated: bool) -> tuple[float, dict]:
    """Time one synthesis of the demo's first tool into an empty library."""
    if not gated:
        library.set_policy({"max_mutants": 0}, "benchmark: the gate off")
    if pool:
        pool.wait_ready(60)
    start = time.perf_counter()
    turn = agent.ask("convert 100 degrees Fahrenheit to Celsius")
    return time.perf_counter() - start, turn


def _timed_reuse(agent, pool) -> float:
    """Time a request the tool just synthesized serves."""
    if pool:
        pool.wait_ready(60)
    start = time.perf_counter()
    turn = agent.ask("it's 98.6 F outside, what is that in celsius?")
    seconds = time.perf_counter() - start
    if turn.get("decision") != "reuse":
        raise RuntimeError(f"unexpected route: {turn.get('route')}; {turn.get('error')}")
    return seconds


def _timed_repair(agent, pool) -> float:
    """Time a repair in use: digit_sum v1 fails on negatives and is repaired into v2."""
    agent.ask("sum the digits of 1234")
    if pool:
        pool.wait_ready(60)
    start = time.perf_counter()
    turn = agent.ask("sum the digits of -4096")
    seconds = time.perf_counter() - start
    if turn.get("route") != REPAIR_ROUTE or turn.get("result") != 19:
        raise RuntimeError(f"the repair path went {turn.get('route')}: {turn.get('answer')}")
    return seconds


def _timed_two_steps(agent, pool) -> float:
    """Time a two-step plan whose tools both exist (the first run builds the second tool)."""
    agent.ask(TWO_STEPS)  # builds celsius_to_kelvin, not timed
    if pool:
        pool.wait_ready(60)
    start = time.perf_counter()
    both = agent.ask(TWO_STEPS)  # both tools present: plan, two reuses, learn
    seconds = time.perf_counter() - start
    if both.get("error") or both["route"].count("execute") != 2 or "spec" in both["route"]:
        raise RuntimeError(f"unexpected two-step route: {both.get('route')}; "
                           f"{both.get('error')}")
    return seconds


def cmd_pipeline(args) -> int:
    """Time the synthesis (gate on and off), reuse, repair and two-step paths end to end.

    The repair path: a reused tool fails on an edge input, is repaired (regression test
    proven on v1, suite and replay of v2 at once, registration) and serves the request.
    The two-step path: a plan of two steps whose tools both exist.
    """
    from graph.runner import Agent
    from nodes.kit import services

    schema = f"sea_bench_{uuid.uuid4().hex[:8]}"
    agent = Agent(model=args.model, sandbox_backend=args.backend, sandbox_pool=args.pool,
                  library_schema=schema)

    synth, plain, reuse, repair, two_steps = [], [], [], [], []
    try:
        library = services.library(schema)
        library.vector_store()  # load the embedding model before timing
        sandbox = services.sandbox(agent.context.sandbox_backend, args.pool)
        pool = getattr(sandbox.backend, "pool", None)
        for i in range(2 * args.runs):
            gated = i % 2 == 0  # with and without the mutation gate, in turn
            seconds, first = _synthesize(agent, library, pool, gated)
            (synth if gated else plain).append(seconds)
            if first.get("decision") != "synthesize" or first.get("error"):
                raise RuntimeError(f"unexpected route: {first.get('route')}; "
                                   f"{first.get('error')}")
            if gated:  # the other paths run as a user's would: the gate on
                mutation = first.get("mutation") or {}
                reuse.append(_timed_reuse(agent, pool))
                repair.append(_timed_repair(agent, pool))
                two_steps.append(_timed_two_steps(agent, pool))
            library.drop()  # an empty library again, so the next run synthesizes
            services.forget_library(schema)
            library = services.library(schema)
        gate_alone = _gate_seconds(sandbox, args.runs)
    finally:
        services.library(schema).drop()
        agent.close()

    def figures(samples: list[float]) -> dict:
        return {"p50": round(statistics.median(samples), 3), "max": round(max(samples), 3)}

    emit({"model": agent.context.model, "runs": args.runs, "sandbox": agent.context.sandbox_backend,
          "pool": args.pool, "load_average": [round(x, 1) for x in os.getloadavg()],
          "synthesis_path_s": figures(synth),
          "synthesis_path_mutants": len(mutation.get("mutants", [])),
          "synthesis_path_mutation_score": mutation.get("score"),
          "synthesis_without_gate_s": figures(plain),
          "gate_added_p50_s": round(statistics.median(synth) - statistics.median(plain), 3),
          "gate_alone_5_tests_20_mutants_s": gate_alone,
          "reuse_path_s": figures(reuse), "repair_path_s": figures(repair),
          "two_step_path_s": figures(two_steps),
          "two_step_over_reuse_p50": round(statistics.median(two_steps)
                                           / statistics.median(reuse), 2)}, args.json)
    return 0


def _wait_for_pool(url: str, deadline: float) -> dict:
    """Poll the MCP server's health until its warm pool is full; return the health."""
    import json
    import urllib.request

    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                health = json.load(response)
            pool = health.get("pool")
            if pool is None or pool["ready"] >= pool["size"]:
                return health
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the MCP server at {url} was not ready in time")
        time.sleep(0.05)


async def _time_mcp_calls(url: str, health: str, runs: int) -> dict:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    idle, back_to_back, in_sandbox = [], [], []
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as s:
        await s.initialize()
        await s.list_tools()
        for timings in (idle, back_to_back):
            for i in range(runs):
                if timings is idle:
                    _wait_for_pool(health, time.monotonic() + 60)
                start = time.perf_counter()
                result = await s.call_tool("add", {"a": i, "b": 1})
                timings.append(time.perf_counter() - start)
                if result.is_error or result.structured_content != {"result": i + 1}:
                    raise RuntimeError(f"the call failed: {result.model_dump_json()[:300]}")
                if timings is idle:
                    in_sandbox.append(result.meta["sea/duration"])
    return {"idle_pool": percentiles(idle), "back_to_back": percentiles(back_to_back),
            "idle_pool_sandbox_part": percentiles(in_sandbox)}


def _direct_calls(runs: int, pool: int) -> dict:
    """Time the same call straight on a warm-pool sandbox, for the protocol's overhead."""
    sandbox = make_sandbox("docker", pool_size=pool)
    timings = []
    try:
        for i in range(runs):
            if not sandbox.backend.pool.wait_ready(60):
                raise RuntimeError(f"the warm pool did not fill: {sandbox.backend.pool.last_error}")
            start = time.perf_counter()
            sandbox.call(BENCH_IMPL, "add", {"a": i, "b": 1})
            timings.append(time.perf_counter() - start)
    finally:
        sandbox.close()
    return percentiles(timings)


def cmd_mcp(args) -> int:
    """Time a tool call over MCP (streamable HTTP on loopback) against `sea mcp serve`."""
    import subprocess
    import sys

    import anyio

    from tools_store.models import ToolSpec

    from .mcp_server import SOURCE

    schema = f"sea_bench_{uuid.uuid4().hex[:8]}"
    library = ToolLibrary(schema=schema)
    spec = ToolSpec(name="add", description="Add two integers.",
                    parameters=[{"name": "a", "type": "integer"},
                                {"name": "b", "type": "integer"}], returns={"type": "integer"})
    library.register(spec, BENCH_IMPL, BENCH_TESTS)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(
        [sys.executable, "-m", "cli", "mcp", "serve", "--port", str(port), "--pool",
         str(args.pool)], env={**os.environ, "SEA_LIBRARY_SCHEMA": schema},
        stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    try:
        try:
            _wait_for_pool(f"{base}/health", time.monotonic() + 180)
        except RuntimeError:
            log.seek(0)
            raise RuntimeError(f"the MCP server did not start: {log.read()[-2000:]!r}") from None
        figures = anyio.run(_time_mcp_calls, f"{base}/mcp", f"{base}/health", args.runs)
        logged = sum(r["source"] == SOURCE for r in library.executions("add", 10 * args.runs))
    finally:
        server.terminate()
        server.wait(30)
        log.close()
        library.drop()
    direct = _direct_calls(args.runs, args.pool)
    emit({"transport": "streamable HTTP on 127.0.0.1 (handshake-era session)",
          "pool": args.pool, "runs": args.runs, "tool_call_s": figures,
          "direct_sandbox_call_s": direct,
          "mcp_overhead_p50_s": round(figures["idle_pool"]["p50"] - direct["p50"], 4),
          "executions_logged_with_source_mcp": logged}, args.json)
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def add_parsers(sub) -> None:
    """Add `sea bench sandbox | library | pipeline | mcp | startup | concurrency`."""
    bench = sub.add_parser("bench", help="benchmarks that print figures")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    p = bench_sub.add_parser("sandbox", help="verify/call latency: cold, warm pool, bwrap")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sandbox)
    p = bench_sub.add_parser("library", help="registration and search latency")
    p.add_argument("--sizes", default="100,1000,10000")
    p.add_argument("--searches", type=int, default=50)
    p.add_argument("--evidence-per-tool", type=int, default=5,
                   help="evidence rows per tool (5: 50,000 rows at 10,000 tools)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_library)
    p = bench_sub.add_parser("pipeline", help="reuse, synthesis, repair and two-step paths, "
                                              "scripted model")
    p.add_argument("--runs", type=int, default=5)
    common_options(p)
    p.set_defaults(func=cmd_pipeline, pool=2)
    p = bench_sub.add_parser("mcp", help="a tool call over MCP (streamable HTTP), warm pool")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--pool", type=pool_size, default=2)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_mcp)
    bench_startup.add_bench_parser(bench_sub)
    bench_concurrency.add_parser(bench_sub)
