"""gate: admit a repaired version only when it keeps every promise of the old one.

Two checks, run in the sandbox at the same time: the old frozen suite plus the new
regression tests must all pass on the fix (the suite's hash is checked first, as ``verify``
does), and a replay of the tool's logged successful executions (up to the policy's
``replay_limit`` distinct recent inputs, none the user marked wrong) must give the same
outputs when the fix is called, each on the input files it read (calls that read other
files than the repair has at hand are not replayed, and the gate says how many). Anything
less refuses the repair and the current version stays.

A repair that passes both is then run against its mutants (the mutation gate, as after a
verification) and its score is kept with the version. It is never strengthened: its suite is
the frozen one plus the regression tests, and no test of it may change. ``register`` makes a
repair whose suite is too weak to trust experimental, as it would a new tool.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from langgraph.runtime import Runtime

from sandbox import SandboxError
from sandbox.reports import NOT_A_VERDICT, CallResult, no_verdict_message
from tools_store.cache import file_hashes
from tools_store.text import storable

from .kit.checks import same_output, tests_hash
from .kit.context import Context
from .kit.dataflow import failure_files
from .kit.model import StepError
from .kit.node import event, library, node, sandbox
from .verify import measure

AT_ONCE = 4  # sandbox runs of a gate that run at the same time


def changes(past: list[dict], calls: list[CallResult]) -> list[str]:
    """Describe each past execution whose replayed output differs from the logged one."""
    found = []
    for item, result in zip(past, calls, strict=True):
        if result.status in NOT_A_VERDICT:
            raise SandboxError(no_verdict_message(result.status, result.error))
        shown = json.dumps(item["inputs"])[:200]
        if not result.ok:
            found.append(f"{shown} gave {json.dumps(item['output'])[:100]} and now fails "
                         f"({result.describe_error()[:200]})")
        elif not same_output(storable(result.result), item["output"]):  # logged escaped
            found.append(f"{shown} gave {json.dumps(item['output'])[:100]} and now gives "
                         f"{json.dumps(result.result)[:100]}")
    return found


@node("gate")
def gate(state: dict, runtime: Runtime[Context]) -> dict:
    """Pass a repair whose whole suite passes and whose replay matches, else refuse it."""
    if tests_hash(state["tests"]) != state["tests_hash"]:
        raise StepError("the tests changed after they were frozen; refusing to verify")
    name, code = state["tool"]["name"], state["implementation"]
    files = failure_files(state, runtime.context.input_files)
    lib = library(runtime)
    # A past call runs again only on the files it read: on other files a right fix gives
    # other outputs, and was refused for it. Files are known for calls logged since they
    # were recorded (None before: such a call gets the files at hand, as it always did).
    try:
        at_hand = file_hashes(files) if files else []
    except OSError as exc:
        raise StepError(f"cannot read an input file of the repair ({exc.strerror})") from exc
    past, elsewhere = lib.replay_set(name, int(state["policy"]["replay_limit"]), at_hand)
    failing = lib.get(name, state["failure"]["version"])
    modules = lib.component_modules(failing) if failing.components else None  # a composite's
    runs = sandbox(runtime)
    with ThreadPoolExecutor(max_workers=min(AT_ONCE, 1 + len(past))) as workers:
        suite = workers.submit(runs.verify, code, state["tests"], files=files, modules=modules)
        calls = list(workers.map(lambda item: runs.call(
            code, name, item["inputs"], files=None if item["files"] == [] else files,
            modules=modules), past))
        report = suite.result()
    if report.status in NOT_A_VERDICT:
        raise SandboxError(no_verdict_message(report.status, report.detail))
    changed = changes(past, calls)
    if not report.ok:
        failing = ", ".join(t.name for t in report.failures()[:5])
        refused = (f"the fixed code did not pass the old tests and the regression test: "
                   f"{report.summary()}" + (f"; failing: {failing}" if failing else ""))
    elif changed:
        refused = "it changes the output of logged past executions: " + "; ".join(changed[:3])
    else:
        refused = ""
    if refused:
        event("gate", f"repair refused: {refused}", level="error", passed=False)
    else:
        event("gate", f"sandbox: {report.summary()}; {len(past)} past executions replayed "
              "with the same outputs" + (f"; {elsewhere} that read other files, not at hand, "
                                         "were not replayed" if elsewhere else ""),
              passed=True)
    update = {"report": report.model_dump(), "attempts": 1, "mutation": {},
              "repair": {**state["repair"], "refused": refused, "replayed": len(past)}}
    limit = state["policy"].get("max_mutants", 0)
    if not refused and limit > 0:
        update["mutation"] = measure(runs, code, state["tests"], report, files, limit, "gate")
    return update
