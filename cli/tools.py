"""`sea tools ...`: list, show, search, version and repair the tool library."""

from __future__ import annotations

from sandbox.reports import mutation_line
from tools_store.library import ToolLibrary

from .output import emit


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
    score = (record.report.get("mutation") or {}).get("score")
    emit({**record.model_dump(mode="json"), "mutation_score": score}, args.json,
         [f"{record.name} v{record.version} ({record.status}) - {record.spec.description}",
          f"signature: {record.spec.signature()}", mutation_line(record.report), "",
          record.code, "", record.tests])
    return 0


def cmd_search(args) -> int:
    """Search the library, and say what the agent would decide (before any judge)."""
    from nodes.decide import preview

    result = ToolLibrary().search(args.query, k=args.k)
    decision, chosen, reason = preview(result)
    lines = [f"decision: {decision} ({reason})"] + [
        f"  {c.name:30} similarity {c.similarity:.3f} score {c.score:.3f}"
        + (f"  conflict: {c.conflict}" if c.conflict else "") for c in result.candidates]
    emit({**result.model_dump(mode="json"), "decision": decision,
          "chosen": chosen.name if chosen else None, "reason": reason}, args.json, lines)
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


def add_parsers(sub) -> None:
    """Add `sea tools ...`."""
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

