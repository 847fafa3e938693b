"""`sea workflows ...`: the workflows learned from multi-step requests, and their promotion."""

from __future__ import annotations

from tools_store.library import ToolLibrary

from .ask import whole_number
from .output import emit


def _line(w: dict) -> str:
    rate = "-" if w["success_rate"] is None else f"{w['success_rate']:.0%}"
    tools = " -> ".join(f"{s['tool']} v{s['version']}" for s in w["steps"])
    composite = f"  composite: {w['composite']} v{w['composite_version']}" \
        if w["composite"] else ""
    return f"{w['id']:>4}  used {w['uses']:>3}x  success {rate:>4}  {tools}{composite}"


def cmd_list(args) -> int:
    """List the learned workflows."""
    workflows = ToolLibrary().workflows.list()
    emit({"workflows": workflows}, args.json,
         [_line(w) for w in workflows] or ["(no workflows learned yet)"])
    return 0


def cmd_show(args) -> int:
    """Show one workflow: its steps and data flow, its runs, its last promotion."""
    store = ToolLibrary().workflows
    workflow = store.get(args.id)
    runs = store.runs(args.id, limit=args.runs)
    lines = [_line(workflow), f"request:    {workflow['request']}",
             "parameters: " + ", ".join(f"{p['name']} ({p['type']})" for p in workflow["params"])]
    for number, step in enumerate(workflow["steps"], 1):
        flow = ", ".join(f"{arg} <- " + (f"parameter {b['param']}" if "param" in b else
                                         f"result of step {b['from_step']}" if "from_step" in b
                                         else f"file {b['output']} of step {b['file_from_step']}")
                         for arg, b in step["bindings"].items())
        outputs = f"; writes {', '.join(step['outputs'])}" if step["outputs"] else ""
        lines.append(f"  {number}. {step['tool']} v{step['version']}: {flow}{outputs}")
    if workflow["promotion"]:
        lines.append(f"last promotion: {workflow['promotion']}")
    lines += [f"  run {r['id']}: {'ok' if r['success'] else 'failed'} "
              f"{'(reused) ' if r['reused'] else ''}{r['request'][:70]}" for r in runs]
    emit({**workflow, "runs": runs}, args.json, lines)
    return 0


def cmd_promote(args) -> int:
    """Promote a workflow to a composite tool now (or re-verify its composite)."""
    from graph.runner import Agent

    agent = Agent(model=args.model, sandbox_backend=args.backend, sandbox_pool=0)
    try:
        outcome = agent.promote_workflow(args.id)
    finally:
        agent.close()
    status = outcome["status"]
    line = {"promoted": f"promoted to {outcome.get('tool')} v{outcome.get('version')}",
            "updated": f"{outcome.get('tool')} v{outcome.get('version')} now uses "
                       f"{outcome.get('components')}",
            "current": f"{outcome.get('tool')} v{outcome.get('version')} is up to date"
            }.get(status, f"{status}: {outcome.get('reason', '')}")
    emit(outcome, args.json, [line])
    return 0 if status in ("promoted", "updated", "current") else 1


def add_parsers(sub) -> None:
    """Add `sea workflows list | show ID | promote ID`."""
    workflows = sub.add_parser("workflows", help="workflows learned from multi-step requests")
    wsub = workflows.add_subparsers(dest="workflows_command", required=True)
    p = wsub.add_parser("list", help="list the learned workflows")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = wsub.add_parser("show", help="one workflow: steps, data flow, runs, promotion")
    p.add_argument("id", type=int)
    p.add_argument("--runs", type=whole_number(0), default=10, help="recent runs to show")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)
    p = wsub.add_parser("promote", help="promote to a composite tool (or re-verify one)")
    p.add_argument("id", type=int)
    p.add_argument("--model", help="model name, or scripted:FILE (default: SEA_MODEL)")
    p.add_argument("--backend", choices=["docker", "bwrap"],
                   help="sandbox backend (default: SEA_SANDBOX_BACKEND, else docker)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_promote)
