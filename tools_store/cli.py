"""`sea tools ...`, `sea eval retrieval` and `sea bench library`."""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sandbox.cli import emit

from .library import ToolLibrary


def _summary(record) -> dict:
    return {"name": record.name, "version": record.version, "status": record.status,
            "description": record.spec.description, "uses": record.uses,
            "success_rate": record.success_rate}


def cmd_list(args) -> int:
    """List the tools."""
    records = ToolLibrary().list_tools(include_retired=args.all)
    emit({"tools": [_summary(r) for r in records]}, args.json,
         [f"{r.name:30} v{r.version:<3} {r.status:12} {r.spec.description}" for r in records]
         or ["(no tools yet)"])
    return 0


def cmd_show(args) -> int:
    """Show one tool (or one version)."""
    record = ToolLibrary().get(args.name, args.version)
    emit(record.model_dump(mode="json"), args.json,
         [f"{record.name} v{record.version} ({record.status}) - {record.spec.description}",
          f"signature: {record.spec.signature()}", "", record.code, "", record.tests])
    return 0


def cmd_search(args) -> int:
    """Search the library."""
    result = ToolLibrary().search(args.query, k=args.k)
    lines = [f"decision: {result.decision} ({result.reason})"] + [
        f"  {c.name:30} similarity {c.similarity:.3f} score {c.score:.3f}"
        + (f"  conflict: {c.conflict}" if c.conflict else "") for c in result.candidates]
    emit(result.model_dump(mode="json"), args.json, lines)
    return 0


def cmd_history(args) -> int:
    """Show a tool's versions and recent executions."""
    library = ToolLibrary()
    versions = library.versions(args.name)
    executions = library.executions(args.name)
    payload = {"versions": [{"version": v.version, "status": v.status, "reason": v.reason,
                             "current": v.current, "code_hash": v.code_hash[:12],
                             "created_at": str(v.created_at)} for v in versions],
               "executions": [{k: (str(v) if k == "created_at" else v) for k, v in e.items()}
                              for e in executions]}
    lines = [f"v{v['version']} {v['status']:12} {'*' if v['current'] else ' '} {v['reason']}"
             for v in payload["versions"]]
    lines += [f"  run {e['id']}: {'ok' if e['success'] else 'failed'} {e['error'][:80]}"
              for e in executions]
    emit(payload, args.json, lines)
    return 0


def cmd_rollback(args) -> int:
    """Make a version current."""
    record = ToolLibrary().rollback(args.name, args.version)
    emit(_summary(record), args.json, [f"{record.name} is now at v{record.version}"])
    return 0


def cmd_remove(args) -> int:
    """Retire a tool."""
    ToolLibrary().remove(args.name)
    emit({"removed": args.name}, args.json, [f"retired {args.name}"])
    return 0


def cmd_reembed(args) -> int:
    """Rebuild the index with the configured embedding model."""
    from tqdm import tqdm

    library = ToolLibrary()
    count = library.reembed(progress=lambda items: tqdm(items, desc="re-embedding",
                                                        disable=args.json))
    emit({"reembedded": count, "model": library.model_id}, args.json)
    return 0


def cmd_reconcile(args) -> int:
    """Repair the readable files from the database."""
    repairs = ToolLibrary().reconcile_files()
    emit({"repairs": repairs}, args.json, repairs or ["files match the database"])
    return 0


def cmd_eval(args) -> int:
    """Measure discovery on a labelled file."""
    from .evaluation import evaluate

    result = evaluate(args.file)
    if not args.json:
        result = {k: v for k, v in result.items() if k != "errors"}
    emit(result, args.json)
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


def bench(sizes: list[int], searches: int) -> dict:
    """Registration time and search latency for libraries of the given sizes."""
    results: dict = {"sizes": {}}
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            library = ToolLibrary(schema=f"sea_bench_{uuid.uuid4().hex[:8]}",
                                  files_dir=Path(tmp))
            try:
                results["sizes"][str(size)] = _bench_one(library, size, searches)
            finally:
                library.drop()
    return results


def _bench_one(library: ToolLibrary, size: int, searches: int) -> dict:
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
            "search_without_embedding_ms": _ms(without),
            "search_with_embedding_ms": _ms(with_embedding)}


def _ms(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"p50": round(1000 * statistics.median(ordered), 2),
            "p95": round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2)}


def cmd_bench(args) -> int:
    """Print the library benchmark."""
    emit(bench([int(s) for s in args.sizes.split(",")], args.searches), args.json)
    return 0


def add_parsers(sub, bench_sub) -> None:
    """Add `sea tools ...`, `sea eval retrieval` and `sea bench library`."""
    tools = sub.add_parser("tools", help="the tool library")
    tsub = tools.add_subparsers(dest="tools_command", required=True)

    def add(name, func, help_text, *arguments):
        p = tsub.add_parser(name, help=help_text)
        for argument, options in arguments:
            p.add_argument(argument, **options)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)
        return p

    add("list", cmd_list, "list tools", ("--all", {"action": "store_true"}))
    add("show", cmd_show, "show a tool", ("name", {}), ("--version", {"type": int}))
    add("search", cmd_search, "search by meaning", ("query", {}),
        ("-k", {"type": int, "default": 5}))
    add("history", cmd_history, "versions and executions", ("name", {}))
    add("rollback", cmd_rollback, "make a version current", ("name", {}),
        ("version", {"type": int}))
    add("remove", cmd_remove, "retire a tool", ("name", {}))
    add("reembed", cmd_reembed, "rebuild the index with the configured embedding model")
    add("reconcile", cmd_reconcile, "repair the readable files from the database")

    evaluation = sub.add_parser("eval", help="evaluations")
    esub = evaluation.add_subparsers(dest="eval_command", required=True)
    p = esub.add_parser("retrieval", help="discovery metrics on a labelled file")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = bench_sub.add_parser("library", help="registration and search latency")
    p.add_argument("--sizes", default="100,1000,10000")
    p.add_argument("--searches", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)


