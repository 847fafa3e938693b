"""strengthen: a passing suite too weak to trust gets new tests before it is frozen for good.

The mutation gate (in ``verify``) ran the suite against mutants of the implementation. When it
killed fewer than the policy's ``min_mutation_score``, the model sees the surviving mutants as
diffs and may only *add* test functions: the old suite is kept byte for byte (its hash is
checked, and the grown suite must start with exactly it), no name of it may be redefined. In
one sandbox run the grown suite runs on the implementation and on every survivor. The added
tests are taken only if they pass on the implementation and kill at least one survivor;
otherwise they are refused. Refused tests that fail on the implementation are evidence that the
implementation is wrong: while retries remain, ``reflect`` sees them (they still are not
frozen). Rounds are counted in ``strengthened`` and bounded by ``max_strengthen``.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from sandbox.core import declared_tests
from sandbox.mutation import rerun_survivors
from sandbox.reports import MutationReport, VerifyReport
from state.replies import StrengthenReply

from .impl import implementation_prompt
from .kit.checks import check_added_tests, extend_suite, tests_hash
from .kit.context import Context
from .kit.model import StepError, invoke_structured
from .kit.node import event, model, node, sandbox

INSTRUCTIONS = (
    "Your pytest suite passes on the implementation, but it also passes on the mutants shown: "
    "small changes to the implementation that a good suite would catch. Write NEW test "
    "functions, from the specification, that pass on the implementation as it is and fail on "
    "at least one mutant. Reply with only the new test functions (and any imports they need): "
    "they are appended to the frozen suite, which cannot change; do not repeat or rename its "
    "tests. Use only the standard library and pytest; arguments and results cross as JSON.")


def suite_too_weak(mutation: dict | None, policy: dict) -> bool:
    """Tell whether a measured suite killed fewer mutants than the policy asks.

    A single survivor never fails the gate: with few mutants it decides the score alone, and
    it may be an equivalent mutant (one no test can kill) that the generator did not see.
    """
    score = (mutation or {}).get("score")
    return score is not None and score < policy.get("min_mutation_score", 0) and (
        mutation.get("survived", 0) + mutation.get("unclean", 0) >= 2)


def _prompt(state: dict, mutation: MutationReport) -> str:
    survivors = "\n\n".join(f"{m.id} ({m.description}):\n{m.diff}"
                            for m in mutation.survivors())
    body = (implementation_prompt(state) + "\n\nThe implementation (it passes the suite):\n"
            + state["implementation"] + f"\n\n{mutation.summary()}; at least "
            f"{state['policy']['min_mutation_score']:.0%} is needed. The mutants it lets "
            f"survive:\n\n{survivors}")
    reason = (state.get("strengthen") or {}).get("reason")
    return body + (f"\n\nYour previous tests were refused: {reason}" if reason else "")


@node("strengthen")
def strengthen(state: dict, runtime: Runtime[Context]) -> dict:
    """Ask for tests that kill the surviving mutants; take them only if they do."""
    mutation = MutationReport.model_validate(state["mutation"])
    update: dict = {"strengthened": 1}

    def refuse(reason: str, **extra) -> dict:
        event("strengthen", f"new tests refused: {reason}", level="warning")
        return {**update, "strengthen": {"outcome": "refused", "reason": reason, **extra}}

    try:
        reply, usage = invoke_structured(
            model(runtime), "strengthen", INSTRUCTIONS, state["standalone_request"],
            _prompt(state, mutation), StrengthenReply,
            lambda r: check_added_tests(state["tests"], r.tests))
    except StepError as exc:
        return refuse(f"no usable tests: {exc}")
    update["usage"] = {"strengthen": usage}
    try:
        suite = extend_suite(state["tests"], reply.tests,
                             f"the mutation gate (round {state.get('strengthened', 0) + 1})",
                             frozen_hash=state["tests_hash"])
    except ValueError as exc:
        raise StepError(f"refusing to strengthen: {exc}") from exc
    on_implementation, grown = rerun_survivors(
        sandbox(runtime), state["implementation"], suite, mutation,
        VerifyReport.model_validate(state["report"]), runtime.context.input_files,
        state["policy"]["max_mutants"])
    added = declared_tests(reply.tests)
    if on_implementation is None:
        return refuse("the run had no time left for the implementation", tests=reply.tests)
    if not on_implementation.ok:
        failing = {t.name.split("[", 1)[0] for t in on_implementation.failures()}
        if on_implementation.status == "failed" and failing <= added:
            return refuse(f"they fail on the implementation ({', '.join(sorted(failing))}): "
                          "if they follow the specification, the implementation is wrong",
                          tests=reply.tests, fails_on_implementation=True,
                          report=on_implementation.model_dump())
        return refuse(f"the grown suite does not pass on the implementation: "
                      f"{on_implementation.summary()}", tests=reply.tests)
    newly = grown.killed - mutation.killed
    if newly <= 0:
        return refuse("they pass on the implementation but kill none of the surviving "
                      "mutants", tests=reply.tests)
    event("strengthen", f"{len(added)} tests added, killing {newly} more mutants: "
          f"{grown.summary()}", tests=reply.tests, score=grown.score)
    return {**update, "tests": suite, "tests_hash": tests_hash(suite),
            "report": on_implementation.model_dump(), "mutation": grown.model_dump(),
            "strengthen": {"outcome": "accepted", "reason": "", "tests": reply.tests,
                           "killed": newly}}
