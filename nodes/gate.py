"""gate: admit a repaired version only when it keeps every promise of the old one.

The old frozen suite and the new regression tests must all have passed in the sandbox
(``verify`` ran them), and a replay of the tool's logged successful executions (up to the
policy's ``replay_limit`` distinct recent inputs, none the user marked wrong) must give the
same outputs when the new code is called in the sandbox. Anything less refuses the repair
and the current version stays.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from langgraph.runtime import Runtime

from sandbox import SandboxError
from sandbox.reports import CallResult, VerifyReport

from .kit.checks import same_output
from .kit.context import Context
from .kit.node import event, library, node, sandbox

REPLAY_AT_ONCE = 4  # sandbox calls of a replay that run at the same time


def replay(state: dict, runtime: Runtime[Context]) -> tuple[int, list[str]]:
    """Call the new code on past inputs (a few at once); return how many ran, what changed."""
    name = state["tool"]["name"]
    past = library(runtime).replay_set(name, int(state["policy"]["replay_limit"]))
    if not past:
        return 0, []
    runs = sandbox(runtime)

    def call(item: dict) -> CallResult:
        return runs.call(state["implementation"], name, item["inputs"],
                         files=runtime.context.input_files)

    with ThreadPoolExecutor(max_workers=min(REPLAY_AT_ONCE, len(past))) as workers:
        calls = list(workers.map(call, past))
    changed = []
    for item, result in zip(past, calls, strict=True):
        if result.status == "unavailable":
            raise SandboxError(f"the sandbox is unavailable: {result.error}")
        shown = json.dumps(item["inputs"])[:200]
        if not result.ok:
            changed.append(f"{shown} gave {json.dumps(item['output'])[:100]} and now fails "
                           f"({result.describe_error()[:200]})")
        elif not same_output(result.result, item["output"]):
            changed.append(f"{shown} gave {json.dumps(item['output'])[:100]} and now gives "
                           f"{json.dumps(result.result)[:100]}")
    return len(past), changed


@node("gate")
def gate(state: dict, runtime: Runtime[Context]) -> dict:
    """Pass a repair whose whole suite passed and whose replay matches, else refuse it."""
    report = VerifyReport.model_validate(state["report"])
    replayed, changed = 0, []
    if not report.ok:
        failing = ", ".join(t.name for t in report.failures()[:5])
        refused = (f"the fixed code did not pass the old tests and the regression test: "
                   f"{report.summary()}" + (f"; failing: {failing}" if failing else ""))
    else:
        replayed, changed = replay(state, runtime)
        refused = ("it changes the output of logged past executions: " + "; ".join(changed[:3])
                   if changed else "")
    repair = {**state["repair"], "refused": refused, "replayed": replayed}
    if refused:
        event("gate", f"repair refused: {refused}", level="error", passed=False)
    else:
        event("gate", f"suite passed ({report.summary()}); {replayed} past executions "
              "replayed with the same outputs", passed=True)
    return {"repair": repair}
