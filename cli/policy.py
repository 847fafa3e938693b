"""`sea policy show | set KEY VALUE | history | rollback N | tune`: the versioned policy."""

from __future__ import annotations

import json

from tools_store.library import ToolLibrary
from tools_store.policies import calibration_note, change_for, value_at

from .output import emit, subcommand_adder


def cmd_show(args) -> int:
    """Show the policy in force and where its thresholds come from."""
    library = ToolLibrary()
    policy = library.policy()
    history = library.policy_history()
    version = history[-1]["version"] if history else None
    payload = {"version": version, "embedding_model": library.model_id,
               "rule": library.decision_rule(policy),
               "calibration": calibration_note(policy, library.model_id), "policy": policy}
    lines = [f"policy version {version}", f"embedding model: {library.model_id}",
             f"decision rule: {json.dumps(payload['rule'])}",
             f"thresholds: {payload['calibration']}"]
    lines += [f"{key}: {json.dumps(value)}" for key, value in policy.items()
              if key != "calibration"]
    emit(payload, args.json, lines)
    return 0


def cmd_set(args) -> int:
    """Store a new version with one key changed (dotted keys reach into objects)."""
    library = ToolLibrary()
    version = library.set_policy(change_for(args.key, args.value),
                                 note=args.note or f"set {args.key} = {args.value}")
    value = value_at(library.policy(), args.key)
    emit({"version": version, "key": args.key, "value": value}, args.json,
         [f"policy version {version}: {args.key} = {json.dumps(value)}"])
    return 0


def cmd_history(args) -> int:
    """List every version, oldest first."""
    rows = ToolLibrary().policy_history()
    payload = {"versions": [{"version": r["version"], "note": r["note"],
                             "created_at": str(r["created_at"]), "value": r["value"]}
                            for r in rows]}
    emit(payload, args.json, [f"v{r['version']:<4} {str(r['created_at'])[:19]}  {r['note']}"
                              for r in rows])
    return 0


def cmd_rollback(args) -> int:
    """Make an earlier version apply again, as a new version."""
    version = ToolLibrary().rollback_policy(args.version)
    emit({"version": version, "restored": args.version}, args.json,
         [f"policy version {version} restores version {args.version}"])
    return 0


def cmd_tune(args) -> int:
    """Calibrate the rule on the given sets; apply it only if the held-back part improves."""
    from .tune import apply, tune

    library = ToolLibrary()
    report = tune(args.eval, library)
    report["applied"] = None
    if args.apply and report["improves"]:
        report["applied"] = apply(report, library)
        message = f"applied as policy version {report['applied']}"
    elif args.apply:
        message = ("refused: the held-back figures do not improve on the current policy; "
                   "nothing was written")
    else:
        message = ("dry run: the held-back figures " + ("improve" if report["improves"] else
                                                        "do not improve") +
                   "; --apply writes the proposal only when they improve")
    report["message"] = message
    before, after = report["held_back_before"], report["held_back_after"]
    lines = [f"sources: {report['sources']} (tuned on {report['tuned_on']}, held back "
             f"{report['held_back']})", f"current:  {json.dumps(report['current'])}",
             f"proposed: {json.dumps(report['proposed'])}", "held back:  before -> after"]
    lines += [f"  {name}: {before[name]} -> {after[name]}" for name in before]
    emit(report, args.json, lines + [message])
    return 1 if args.apply and not report["improves"] else 0


def add_parsers(sub) -> None:
    """Add `sea policy ...`."""
    policy = sub.add_parser("policy", help="the versioned policy: thresholds, weights, limits")
    psub = policy.add_subparsers(dest="policy_command", required=True)

    add = subcommand_adder(psub)
    add("show", cmd_show, "the policy in force")
    add("set", cmd_set, "store a new version with KEY (dotted) set to VALUE (JSON or text)",
        ("key", {}), ("value", {}), ("--note", {"default": ""}))
    add("history", cmd_history, "every version")
    add("rollback", cmd_rollback, "make version N apply again (as a new version)",
        ("version", {"type": int}))
    add("tune", cmd_tune, "calibrate the reuse rule on labelled sets and logged outcomes",
        ("--eval", {"action": "append", "required": True, "metavar": "FILE"}),
        ("--apply", {"action": "store_true",
                     "help": "write the proposal if the held-back figures improve"}))
