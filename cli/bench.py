"""`sea bench ...`: benchmarks that print figures (never timed assertions in tests)."""

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

from .ask import common_options
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


def bench_library(sizes: list[int], searches: int) -> dict:
    """Registration time and search latency for libraries of the given sizes."""
    results: dict = {"sizes": {}}
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            library = ToolLibrary(schema=f"sea_bench_{uuid.uuid4().hex[:8]}",
                                  files_dir=Path(tmp))
            try:
                results["sizes"][str(size)] = _bench_library_size(library, size, searches)
            finally:
                library.drop()
    return results


def _bench_library_size(library: ToolLibrary, size: int, searches: int) -> dict:
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
    queries = [f"{WORDS[i % len(WORDS)]} some {THINGS[i % len(THINGS)]}" for i in range(searches)]
    embeddings = library.vector_store().embeddings
    vectors = embeddings.embed_documents(queries)
    library.search(queries[0], vector=vectors[0])  # warm the connection and the plan
    with_embedding, without = [], []
    for query, vector in zip(queries, vectors, strict=True):
        start = time.perf_counter()
        library.search(query, vector=vector)
        without.append(time.perf_counter() - start)
        start = time.perf_counter()
        library.search(query)
        with_embedding.append(time.perf_counter() - start)
    return {"register_one_p50_s": round(statistics.median(single), 4),
            "register_bulk_per_tool_s": round(bulk_seconds / max(1, size - sample), 5),
            "search_without_embedding_ms": percentiles(without, 1000, 2),
            "search_with_embedding_ms": percentiles(with_embedding, 1000, 2)}


def cmd_library(args) -> int:
    """Print the library benchmark."""
    emit(bench_library([int(s) for s in args.sizes.split(",")], args.searches), args.json)
    return 0


TWO_STEPS = "convert 100 degrees Fahrenheit to Celsius, then to Kelvin"


def cmd_pipeline(args) -> int:
    """Time the reuse, synthesis and two-step paths end to end with the scripted model."""
    from graph.runner import Agent
    from nodes.kit import services

    schema = f"sea_bench_{uuid.uuid4().hex[:8]}"
    agent = Agent(model=args.model, sandbox_backend=args.backend, sandbox_pool=args.pool,
                  library_schema=schema)

    synth, reuse, two_steps = [], [], []
    try:
        library = services.library(schema)
        library.vector_store()  # load the embedding model before timing
        sandbox = services.sandbox(agent.context.sandbox_backend, args.pool)
        pool = getattr(sandbox.backend, "pool", None)
        for i in range(args.runs):
            if pool:
                pool.wait_ready(60)
            start = time.perf_counter()
            first = agent.ask("convert 100 degrees Fahrenheit to Celsius")
            synth.append(time.perf_counter() - start)
            if pool:
                pool.wait_ready(60)
            start = time.perf_counter()
            second = agent.ask("it's 98.6 F outside, what is that in celsius?")
            reuse.append(time.perf_counter() - start)
            if first.get("decision") != "synthesize" or second.get("decision") != "reuse":
                raise RuntimeError(f"unexpected routes: {first.get('route')} / "
                                   f"{second.get('route')}; {first.get('error')}")
            agent.ask(TWO_STEPS)  # builds the second tool (celsius_to_kelvin), not timed
            if pool:
                pool.wait_ready(60)
            start = time.perf_counter()
            both = agent.ask(TWO_STEPS)  # both tools present: plan, two reuses, learn
            two_steps.append(time.perf_counter() - start)
            if both.get("error") or both["route"].count("execute") != 2 or "spec" in both[
                    "route"]:
                raise RuntimeError(f"unexpected two-step route: {both.get('route')}; "
                                   f"{both.get('error')}")
            library.drop()  # an empty library again, so the next run synthesizes
            services.forget_library(schema)
            library = services.library(schema)
    finally:
        services.library(schema).drop()
        agent.close()
    emit({"model": agent.context.model, "runs": args.runs, "sandbox": agent.context.sandbox_backend,
          "pool": args.pool,
          "synthesis_path_s": {"p50": round(statistics.median(synth), 3), "max": round(
              max(synth), 3)},
          "reuse_path_s": {"p50": round(statistics.median(reuse), 3),
                           "max": round(max(reuse), 3)},
          "two_step_path_s": {"p50": round(statistics.median(two_steps), 3),
                              "max": round(max(two_steps), 3)},
          "two_step_over_reuse_p50": round(statistics.median(two_steps)
                                           / statistics.median(reuse), 2)}, args.json)
    return 0


def add_parsers(sub) -> None:
    """Add `sea bench sandbox | library | pipeline`."""
    bench = sub.add_parser("bench", help="benchmarks that print figures")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    p = bench_sub.add_parser("sandbox", help="verify/call latency: cold, warm pool, bwrap")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sandbox)
    p = bench_sub.add_parser("library", help="registration and search latency")
    p.add_argument("--sizes", default="100,1000,10000")
    p.add_argument("--searches", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_library)
    p = bench_sub.add_parser("pipeline", help="reuse, synthesis and two-step paths, "
                                              "scripted model")
    p.add_argument("--runs", type=int, default=5)
    common_options(p)
    p.set_defaults(func=cmd_pipeline, pool=2)
