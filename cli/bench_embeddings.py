"""Benchmark of the local embedding model: ONNX Runtime against the old sentence-transformers path.

Each path is measured in a fresh Python process, as a one-shot command meets it: the time to
import the path's modules, the time to load the model (the ONNX path's file and vector checks
included), their sum, one warm-up query, then the median and 90th percentile of the following
queries and the process's peak memory; ``query_speedup`` is the old path's per-query time
over the ONNX path's, both measured in the same run.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time

PATHS = ("onnx", "sentence_transformers")
TARGETS = {"load_s": 0.5, "query_ms_median": 3.0}
_TEMPLATES = ["convert {} degrees Fahrenheit to Celsius", "what is {} km in miles?",
              "count the vowels in the word number {}", "is {} a prime number",
              "reverse the words of sentence {} please"]


def _queries(count: int) -> list[str]:
    return [_TEMPLATES[i % len(_TEMPLATES)].format(i) for i in range(count)]


def measure(path: str, queries: int = 200) -> dict:
    """Load one path in this process and time it: call it in a fresh process."""
    started = time.perf_counter()
    if path == "onnx":
        import onnxruntime  # noqa: F401  (imported by the class; counted as import time)
        import tokenizers  # noqa: F401

        from tools_store.onnx_embeddings import OnnxEmbeddings as load
    elif path == "sentence_transformers":
        import langchain_huggingface  # noqa: F401
        import sentence_transformers  # noqa: F401

        from tools_store.onnx_export import sentence_transformers_embeddings as load
    else:
        raise ValueError(f"unknown path {path!r}: one of {PATHS}")
    imported = time.perf_counter()
    embeddings = load()
    loaded = time.perf_counter()
    texts = _queries(queries + 1)
    first = time.perf_counter()
    embeddings.embed_query(texts[0])
    first = time.perf_counter() - first
    times = []
    for text in texts[1:]:
        start = time.perf_counter()
        embeddings.embed_query(text)
        times.append(time.perf_counter() - start)
    times.sort()
    return {"import_s": round(imported - started, 3), "load_s": round(loaded - imported, 3),
            "ready_s": round(loaded - started, 3), "first_query_ms": round(first * 1000, 2),
            "query_ms_median": round(statistics.median(times) * 1000, 2),
            "query_ms_p90": round(times[int(len(times) * 0.9)] * 1000, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "imports_torch": "torch" in sys.modules}


def bench_embeddings(queries: int = 200, paths: tuple[str, ...] = PATHS) -> dict:
    """Return load and per-query figures of each path, each measured in a fresh process."""
    results: dict = {"queries": queries, "targets": TARGETS}
    for path in paths:
        code = ("import json, sys; from cli.bench_embeddings import measure; "
                "print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))))")
        done = subprocess.run([sys.executable, "-c", code, path, str(queries)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            results[path] = {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
            continue
        results[path] = json.loads(done.stdout.strip().splitlines()[-1])
    # How much faster than the path it replaced, both measured on the host as it is now. It
    # drifts too (2.5 to 4.2 in three runs of one evening, the old path's time the more).
    onnx, old = (results.get(path, {}).get("query_ms_median") for path in PATHS)
    if onnx and old:
        results["query_speedup"] = round(old / onnx, 2)
    return results


if __name__ == "__main__":
    print(json.dumps(bench_embeddings(), indent=2))
