"""Composite tools: a learned workflow promoted to one tool that calls its components.

The model writes the composite's spec (with the workflow's parameters) and its own tests;
the implementation is composed here from the workflow's data flow, importing each component
as a module shipped beside it, pinned to the version the workflow ran. The frozen suite adds
replay tests built from the recorded runs: their real input files and arguments, and the
result and output files the sequence gave. It is registered only if the whole suite passes.
A composite whose components have newer versions is re-verified with them; when its replay
tests fail, it keeps the pinned versions.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from state.replies import SpecReply, TestsReply
from tools_store.models import ToolSpec

from .checks import check_implementation, check_tests
from .model import StepError, invoke_structured

SPEC_INSTRUCTIONS = (
    "Write the specification of ONE Python function that does the whole sequence of tool "
    "calls below (a composite of them). It must take exactly the given parameters, in that "
    "order, with those types. name: snake_case, descriptive, new. examples: three requests in "
    "users' words that it serves.")
TESTS_INSTRUCTIONS = (
    "Write a pytest suite for the specified composite function. Import it with `from tool "
    "import NAME`. It runs in another process, with a working directory of its own: a test "
    "gives it an input file with `put_file(name, text)` and reads a file it wrote with "
    "`read_file(name)` (both imported from tool too). Every test asserts something. Replay "
    "tests of recorded runs are added beside yours.")
# The tool runs in a worker process apart from the tests (the sandbox's judge): these helpers,
# composed beside the function, are how a test puts input files into the worker's working
# directory and reads back the files the function wrote there.
FILE_HELPERS = '''

def _plain(name):
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ValueError(f"not a plain file name: {name!r}")
    return name


def put_file(name, content, encoding="utf-8"):
    """Write an input file into the working directory (base64 content when encoding says so)."""
    data = _b64.b64decode(content) if encoding == "base64" else content.encode(encoding)
    with open(_plain(name), "wb") as fh:
        fh.write(data)


def read_file(name, encoding="utf-8"):
    """Return a file of the working directory as text (or as base64)."""
    with open(_plain(name), "rb") as fh:
        data = fh.read()
    return _b64.b64encode(data).decode("ascii") if encoding == "base64" else data.decode(encoding)


def file_sha256(name):
    """Return the sha256 of a file of the working directory."""
    with open(_plain(name), "rb") as fh:
        return _hashlib.sha256(fh.read()).hexdigest()
'''


def components_of(workflow: dict) -> list[dict]:
    """Return the workflow's tools with their versions, in call order, each once."""
    pins: dict[str, int] = {}
    for step in workflow["steps"]:
        if pins.setdefault(step["tool"], step["version"]) != step["version"]:
            raise StepError(f"the workflow uses two versions of {step['tool']}")
    return [{"name": name, "version": version} for name, version in pins.items()]


def compose(spec: ToolSpec, workflow: dict) -> str:
    """Return the composite's implementation: the workflow's calls with its data flow."""
    lines = [f'"""{spec.description} (composite of learned workflow {workflow["id"]})."""',
             "", "import base64 as _b64", "import hashlib as _hashlib",
             "import shutil as _shutil", ""]
    lines += [f"import {c['name']} as _{c['name']}" for c in components_of(workflow)]
    lines += ["", "", f"def {spec.name}({', '.join(p.name for p in spec.parameters)}):"]
    for number, step in enumerate(workflow["steps"], 1):
        arguments = []
        for arg, binding in step["bindings"].items():
            if "param" in binding:
                arguments.append(f"{arg}={binding['param']}")
            elif "from_step" in binding:
                arguments.append(f"{arg}=result_{binding['from_step']}")
            else:
                if binding["output"] != binding["as"]:
                    lines.append(f"    _shutil.copyfile({binding['output']!r}, "
                                 f"{binding['as']!r})")
                arguments.append(f"{arg}={binding['as']!r}")
        lines.append(f"    result_{number} = _{step['tool']}.{step['tool']}"
                     f"({', '.join(arguments)})")
    lines.append(f"    return result_{len(workflow['steps'])}")
    return "\n".join(lines) + "\n" + FILE_HELPERS


def replayable(runs: list[dict], limit: int, max_bytes: int) -> list[dict]:
    """Return the successful runs whose input files are all still there and small enough."""
    chosen = []
    for run in runs:
        paths = [Path(f["path"]) for f in run["files"].values() if f.get("path")]
        if len(paths) != len(run["files"]) or not all(p.is_file() for p in paths):
            continue
        if sum(p.stat().st_size for p in paths) > max_bytes:
            continue
        chosen.append(run)
        if len(chosen) == limit:
            break
    return chosen


def replay_tests(spec: ToolSpec, workflow: dict, runs: list[dict]) -> str:
    """Return pytest tests that replay recorded runs: real inputs, the outputs they gave."""
    # The inputs travel in the test itself, so the suite replays wherever it is verified
    # again (a component's new version, a repair), whatever became of the session's files.
    lines = ["", "", f"# Replay tests: recorded runs of learned workflow {workflow['id']}.",
             "import json as _json", "",
             f"from tool import file_sha256 as _file_sha256, put_file as _put_file, {spec.name}",
             "", "", "def _replay_files(files):",
             "    for name, content in files.items():",
             "        _put_file(name, content, 'base64')"]
    for run in runs:
        files = {name: base64.b64encode(Path(f["path"]).read_bytes()).decode()
                 for name, f in sorted(run["files"].items())}
        lines += ["", "", f"def test_replay_run_{run['id']}():",
                  f"    _replay_files({files!r})",
                  f"    result = {spec.name}(**_json.loads({json.dumps(run['arguments'])!r}))",
                  "    assert _json.loads(_json.dumps(result)) == "
                  f"_json.loads({json.dumps(run['result'])!r})"]
        lines += [f"    assert _file_sha256({name!r}) == {digest!r}"
                  for name, digest in sorted(run["outputs"].items())]
    return "\n".join(lines) + "\n"


def write_spec(workflow: dict, library, chat_model) -> tuple[ToolSpec, dict]:
    """Ask the model for the composite's spec, held to the workflow's parameters."""
    expected = [(p["name"], p["type"]) for p in workflow["params"]]
    sequence = "\n".join(f"{n}. {s['tool']} v{s['version']}: {s['request']}"
                         for n, s in enumerate(workflow["steps"], 1))
    body = (f"Sequence:\n{sequence}\n\nParameters (name, type, description):\n"
            + "\n".join(f"- {p['name']} ({p['type']}): {p['description']}"
                        for p in workflow["params"])
            + f"\n\nReturns: {json.dumps(workflow['returns'])}")

    def check(reply: SpecReply) -> None:
        given = [(p.name, p.type) for p in reply.parameters]
        if given != expected:
            raise ValueError(f"the parameters must be exactly {expected}, in that order")
        if library.name_taken(reply.name):
            raise ValueError(f"a tool named {reply.name!r} already exists; choose another name")

    reply, usage = invoke_structured(chat_model, "spec", SPEC_INSTRUCTIONS,
                                     workflow["standalone"] or workflow["request"], body,
                                     SpecReply, check)
    return ToolSpec.model_validate(reply.model_dump()), usage


def promote(workflow: dict, library, sandbox, chat_model, policy: dict) -> dict:
    """Promote a workflow to a composite tool (or re-verify one); return the outcome."""
    if workflow.get("composite"):
        return refresh(workflow, library, sandbox)
    settings = policy["promotion"]
    runs = replayable(library.workflows.runs(workflow["id"], 50, successful=True),
                      settings["replay_runs"], settings["replay_bytes"])
    if not runs:
        return _note(library, workflow, {"status": "failed", "reason": "no recorded run can "
                                         "be replayed (their input files are gone or too big)"})
    try:
        components = components_of(workflow)
        spec, _ = write_spec(workflow, library, chat_model)
        code = compose(spec, workflow)
        check_implementation(code, spec)
        request = workflow["standalone"] or workflow["request"]
        own, _ = invoke_structured(
            chat_model, "tests", TESTS_INSTRUCTIONS, request,
            "Specification:\n" + json.dumps(spec.model_dump(), indent=2), TestsReply,
            lambda r: check_tests(r.tests, spec, policy["min_tests"]))
    except (StepError, ValueError) as exc:
        return _note(library, workflow, {"status": "failed", "reason": str(exc)[:500]})
    suite = own.tests.rstrip() + "\n" + replay_tests(spec, workflow, runs)
    modules = {f"{c['name']}.py": library.get(c["name"], c["version"]).code
               for c in components}
    for pin in components:  # a component that is itself a composite brings its own
        modules.update(library.component_modules(library.get(pin["name"], pin["version"])))
    report = sandbox.verify(code, suite, modules=modules)
    if not report.ok:
        return _note(library, workflow, {
            "status": "failed", "reason": f"the composite's suite did not pass: "
            f"{report.summary()}", "failed": [t.name for t in report.failures()]})
    names = " -> ".join(f"{c['name']} v{c['version']}" for c in components)
    record = library.register(spec, code, suite, report.model_dump(), status="verified",
                              reason=f"composite of workflow {workflow['id']}: {names}",
                              components=components)
    library.workflows.set_composite(workflow["id"], record.name, record.version)
    return _note(library, workflow, {"status": "promoted", "tool": record.name,
                                     "version": record.version, "components": components,
                                     "replay_tests": [f"test_replay_run_{r['id']}"
                                                      for r in runs]})


def refresh(workflow: dict, library, sandbox) -> dict:
    """Re-verify a composite with its components' current versions; keep the pins if it fails."""
    record = library.get(workflow["composite"], workflow["composite_version"])
    current = [{"name": c["name"], "version": library.get(c["name"]).version}
               for c in record.components]
    if current == record.components:
        return {"status": "current", "tool": record.name, "version": record.version,
                "components": record.components}
    modules = {}
    for pin in current:
        component = library.get(pin["name"], pin["version"])
        modules[f"{component.name}.py"] = component.code
        modules.update(library.component_modules(component))
    report = sandbox.verify(record.code, record.tests, modules=modules)
    changed = ", ".join(f"{c['name']} v{c['version']}" for c, p in
                        zip(current, record.components, strict=True) if c != p)
    if not report.ok:
        return _note(library, workflow, {
            "status": "kept", "tool": record.name, "version": record.version,
            "components": record.components, "failed": [t.name for t in report.failures()],
            "reason": f"with {changed} the suite fails ({report.summary()}); the composite "
                      "keeps the versions it was verified with"})
    updated = library.register(record.spec, record.code, record.tests, report.model_dump(),
                               reason=f"components updated: {changed}", new_version=True,
                               components=current)
    library.workflows.set_composite(workflow["id"], updated.name, updated.version)
    return _note(library, workflow, {"status": "updated", "tool": updated.name,
                                     "version": updated.version, "components": current})


def _note(library, workflow: dict, outcome: dict) -> dict:
    library.workflows.note_promotion(workflow["id"], {**outcome, "at_uses": workflow["uses"]})
    return outcome


def due(workflow: dict, policy: dict) -> bool:
    """Tell whether a workflow has earned promotion and has not just failed one."""
    settings = policy["promotion"]
    last = workflow.get("promotion") or {}
    retry = not last or workflow["uses"] >= last.get("at_uses", 0) + settings["min_uses"]
    return (not workflow.get("composite") and retry
            and workflow["uses"] >= settings["min_uses"]
            and (workflow["success_rate"] or 0) >= settings["min_success_rate"])
