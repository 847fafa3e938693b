"""`sea tools ...`: list, show (with the history), search, version and roll back tools."""

from __future__ import annotations

from sandbox.reports import mutation_line
from tools_store.library import ToolLibrary

from .ask import whole_number
from .output import emit, subcommand_adder

MAX_K = 1000  # tools a search may show


def _summary(record) -> dict:
    return {"name": record.name, "version": record.version, "status": record.status,
            "description": record.spec.description, "uses": record.uses,
            "success_rate": record.success_rate, "p50_latency_s": record.p50_latency}


def _figures(version: dict) -> str:
    rate = "-" if version["success_rate"] is None else f"{version['success_rate']:.0%}"
    p50 = "-" if version["p50_latency_s"] is None else f"{version['p50_latency_s']:.2f} s"
    score = version.get("mutation_score")
    measured = "" if score is None else f", mutation score {score:.2f}"
    return f"used {version['uses']}x, success {rate}, p50 {p50}{measured}"


def history_lines(history: dict) -> list[str]:
    """Render a tool's history: per version its figures, diff, tests, failure, reflections."""
    lines = []
    for v in history["versions"]:
        lines += ["", f"== v{v['version']} {v['status']}{' (current)' if v['current'] else ''}"
                  f" - {v['reason']}",
                  f"   {_figures(v)}; code {v['code_hash']}"
                  + (f"; made from v{v['parent']}" if v["parent"] else "")]
        if v["failure"]:
            lines.append(f"   failure that led to it: {v['failure']['message']} "
                         f"(arguments {v['failure']['arguments']})")
        for r in v["reflections"]:
            lines.append(f"   reflection ({r['kind']} {r['attempt']}): {r['note'] or '-'}")
        lines.append("   tests (the version that added each): " + ", ".join(
            f"{t['name']} (v{t['added_in']})" for t in v["tests"]))
        lines += ["   " + line for line in v["diff"].splitlines()]
    lines += [f"{e['kind']}: v{e['from_version']} -> "
              f"{'v' + str(e['to_version']) if e['to_version'] else '(retired)'}: {e['reason']}"
              for e in history["events"]]
    return lines


def cmd_list(args) -> int:
    """List the tools."""
    records = ToolLibrary().list_tools(include_retired=args.all)
    emit({"tools": [_summary(r) for r in records]}, args.json,
         [f"{r.name:30} v{r.version:<3} {r.status:12} {r.spec.description}" for r in records]
         or ["(no tools yet)"])
    return 0


def cmd_show(args) -> int:
    """Show one tool (or one version)."""
    library = ToolLibrary()
    record = library.get(args.name, args.version)
    history = library.history(args.name)
    score = (record.report.get("mutation") or {}).get("score")
    emit({**record.model_dump(mode="json"), "mutation_score": score, "history": history},
         args.json,
         [f"{record.name} v{record.version} ({record.status}) - {record.spec.description}",
          f"signature: {record.spec.signature()}", mutation_line(record.report), "",
          record.code, "", record.tests, "", "History:"] + history_lines(history))
    return 0


def cmd_search(args) -> int:
    """Search the library, and say what the agent would decide (before any judge)."""
    from nodes.decide import preview

    result = ToolLibrary().search(args.query, k=args.k)
    decision, chosen, reason, band, _ = preview(result)
    lines = [f"decision: {decision} ({reason})"] + [f"  evidence: {e.tool} "
             f"{'serves' if e.serves else 'does not serve'} {e.request!r} ({e.source}, "
             f"{'same request' if e.same_request else f'similarity {e.similarity:.2f}'})"
             for e in result.evidence[:5]] + [
        f"  {c.name:30} similarity {c.similarity:.3f} score {c.score:.3f}"
        + (f"  conflict: {c.conflict}" if c.conflict else "") for c in result.candidates]
    emit({**result.model_dump(mode="json"), "decision": decision,
          "chosen": chosen.name if chosen else None, "reason": reason,
          "judge_would_see": [c.name for c in band]}, args.json, lines)
    return 0


def cmd_history(args) -> int:
    """Show a tool's versions (figures, diffs, tests, repairs), rollbacks and executions."""
    library = ToolLibrary()
    history = library.history(args.name)
    executions = library.executions(args.name)
    payload = {**history, "executions": [
        {k: (str(v) if k == "created_at" else v) for k, v in e.items()} for e in executions]}
    lines = history_lines(history) + ["", "Recent executions:"]
    lines += [f"  run {e['id']}: v{e['version']} {e['code_hash'][:12]} "
              f"{'ok' if e['success'] else 'failed'}"
              f"{' (marked wrong)' if e['marked_wrong'] else ''} {e['error'][:80]}"
              for e in executions]
    emit(payload, args.json, lines)
    return 0


def cmd_rollback(args) -> int:
    """Make a version current."""
    record = ToolLibrary().rollback(args.name, args.version, args.reason)
    emit(_summary(record), args.json, [f"{record.name} is now at v{record.version}"])
    return 0


def cmd_remove(args) -> int:
    """Retire a tool."""
    ToolLibrary().remove(args.name, args.reason)
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


def _difference(item: dict) -> str:
    if "path" in item:
        return f"{item['kind']:8} {item['path']}"
    return f"{item['kind']:8} {item['name']} v{item['version']}: {', '.join(item['files'])}"


def cmd_check(args) -> int:
    """Report how the readable files differ from the database; change nothing."""
    differences = ToolLibrary().mirror_differences()
    emit({"differences": differences}, args.json,
         [_difference(d) for d in differences] or ["files match the database"])
    return 1 if differences else 0


def cmd_reconcile(args) -> int:
    """Repair the readable files from the database."""
    repairs = ToolLibrary().reconcile_files()
    failed = [r for r in repairs if r.startswith("could not")]
    emit({"repairs": repairs, "failed": len(failed)}, args.json,
         repairs or ["files match the database"])
    return 1 if failed else 0


def add_parsers(sub) -> None:
    """Add `sea tools ...`."""
    tools = sub.add_parser("tools", help="the tool library")
    tsub = tools.add_subparsers(dest="tools_command", required=True)

    add = subcommand_adder(tsub)
    add("list", cmd_list, "list tools", ("--all", {"action": "store_true"}))
    add("show", cmd_show, "show a tool", ("name", {}), ("--version", {"type": int}))
    add("search", cmd_search, "search by meaning", ("query", {}),
        # 0 or less would offer no tool; a huge k overflows the index's query.
        ("-k", {"type": whole_number(1, MAX_K), "default": 5}))
    add("history", cmd_history, "versions, rollbacks and executions", ("name", {}))
    add("rollback", cmd_rollback, "make a version current", ("name", {}),
        ("version", {"type": int}), ("--reason", {"default": "by hand"}))
    add("remove", cmd_remove, "retire a tool", ("name", {}),
        ("--reason", {"default": "by hand"}))
    add("reembed", cmd_reembed, "rebuild the index with the configured embedding model")
    add("check", cmd_check, "report how the readable files differ from the database")
    add("reconcile", cmd_reconcile, "repair the readable files from the database")

