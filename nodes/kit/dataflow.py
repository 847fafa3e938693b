"""Plans with data flow: checking a plan, and moving values and files between its steps.

A step's inputs are literal values, outputs of earlier steps (``{"from_step": n}``, numbered
from 1) or session items (``{"item": name}``). Values pass as JSON; a step that wrote files
passes its file, which the next step finds in its working directory. What a finished step gave
is kept in ``step_results`` (tool, arguments, result, the files it wrote as session items, and
where every file it was given came from), which is also what a workflow is learned from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from state.replies import PlanReply, StepInput
from tools_store.errors import ItemMissing
from tools_store.models import ToolSpec

LISTED_ITEMS = 15


def ref_of(source: StepInput) -> dict:
    """Return an input's source as the one key that names it."""
    if source.from_step is not None:
        return {"from_step": source.from_step}
    if source.item is not None:
        return {"item": source.item}
    return {"value": source.value}


def plan_steps(reply: PlanReply) -> list[dict]:
    """Return the plan's steps as state dicts; a single request is a plan of one step."""
    steps = reply.steps
    if not steps:
        return [{"request": reply.standalone_request, "inputs": {}, "outputs": []}]
    return [{"request": s.request, "inputs": {n: ref_of(r) for n, r in s.inputs.items()},
             "outputs": list(dict.fromkeys(s.outputs))} for s in steps]


def _cycle(steps: list[dict]) -> list[int]:
    """Return the steps (numbered from 1) of a dependency cycle, or []."""
    needs = {i + 1: {r["from_step"] for r in s["inputs"].values() if "from_step" in r}
             for i, s in enumerate(steps)}
    state: dict[int, int] = {}
    trail: list[int] = []

    def visit(n: int) -> list[int]:
        state[n] = 1
        trail.append(n)
        for m in sorted(needs.get(n, ())):
            if m not in needs:
                continue
            if state.get(m) == 1:
                return trail[trail.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        state[n] = 2
        trail.pop()
        return []

    for n in needs:
        if n not in state and (found := visit(n)):
            return found
    return []


def check_plan(steps: list[dict], items: list[dict], max_steps: int) -> str:
    """Return why the plan cannot run (unknown references, cycles, too many steps), or ''."""
    if len(steps) > max_steps:
        return (f"the plan has {len(steps)} steps; at most {max_steps} are allowed "
                "(policy max_steps): split the request")
    known = {i["name"]: i for i in items}
    for number, step in enumerate(steps, 1):
        for ref in step["inputs"].values():
            if "from_step" in ref and not 1 <= ref["from_step"] <= len(steps):
                return (f"step {number} uses the output of step {ref['from_step']}, but the "
                        f"plan has {len(steps)} steps")
            if "item" in ref and ref["item"] not in known:
                names = ", ".join(list(known)[:12]) or "none yet"
                return (f"step {number} uses session data {ref['item']!r}, which does not "
                        f"exist (this session has: {names})")
            if "item" in ref and not known[ref["item"]].get("available", True):
                item = known[ref["item"]]
                return (f"step {number} uses {ref['item']!r}, but its file (made in turn "
                        f"{item['turn']}) is no longer in the data directory; give the file "
                        "again (upload or --data)")
    cycle = _cycle(steps)
    if cycle:
        return ("steps " + " -> ".join(map(str, cycle)) + " depend on each other (a cycle), "
                "so none of them can run first")
    for number, step in enumerate(steps, 1):
        for ref in step["inputs"].values():
            if ref.get("from_step", 0) >= number:
                return (f"step {number} uses the output of step {ref['from_step']}, which "
                        "runs after it")
    return ""


def current_step(state: dict) -> dict:
    """Return the step being served (a request without a plan is its own step)."""
    steps = state.get("steps") or []
    index = state.get("step", 0)
    if index < len(steps):
        return steps[index]
    return {"request": state.get("standalone_request") or state.get("request", ""),
            "inputs": {}, "outputs": []}


def step_label(state: dict) -> str:
    """Return 'step 2 of 3 (request)' for multi-step plans, '' for a single step."""
    steps = state.get("steps") or []
    if len(steps) < 2:
        return ""
    index = min(state.get("step", 0), len(steps) - 1)
    return f"step {index + 1} of {len(steps)} ({steps[index]['request']!r})"


def items_listing(items: list[dict]) -> str:
    """Render the session's data for a prompt: what "that data" may refer to."""
    lines = []
    for item in items[:LISTED_ITEMS]:
        line = f"- {item['name']}: {item['kind']}, {item['shape']}; turn {item['turn']}"
        if item.get("preview"):
            line += f"; = {item['preview']}"
        if not item.get("available", True):
            line += " (its file is gone: it cannot be used)"
        lines.append(line)
    if len(items) > LISTED_ITEMS:
        lines.append(f"- ... and {len(items) - LISTED_ITEMS} older items")
    return "Session data (newest first):\n" + "\n".join(lines) if lines else ""


def short_item(item: dict) -> dict:
    """Return what the state keeps of an item for the listing."""
    preview = ""
    if item["kind"] in ("value", "table") and item.get("value") is not None:
        preview = json.dumps(item["value"])
        preview = preview if len(preview) <= 80 else preview[:77] + "..."
    return {"name": item["name"], "kind": item["kind"], "shape": item["shape"],
            "turn": item["turn"], "available": item["available"], "preview": preview}


def looks_like_file(name: str) -> bool:
    """Tell whether an input name is a file name (it has a suffix)."""
    return bool(PurePosixPath(name).suffix)


@dataclass
class StepData:
    """What a step is given: values by input name, files by name in its working directory."""

    values: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    origins: dict[str, dict] = field(default_factory=dict)  # file name -> item / from_step

    def add_file(self, name: str, data: bytes, origin: dict) -> None:
        """Put a file in the working directory (a second file of that name is refused)."""
        if name in self.files and self.files[name] != data:
            raise ItemMissing(f"two different files would both be named {name!r}")
        self.files[name] = data
        self.origins[name] = origin


def step_output(results: list[dict], number: int, wanted: str) -> tuple[str, bytes]:
    """Return (name, bytes) of the file step ``number`` wrote that an input asks for."""
    written = results[number - 1]["files"]
    name = wanted if wanted in written else next(iter(written)) if len(written) == 1 else ""
    if not name:
        raise ItemMissing(f"step {number} wrote several files ({', '.join(written)}); the "
                          "plan must name the one it means")
    path = Path(written[name]["path"])
    if not path.is_file():
        raise ItemMissing(f"the file {name!r} that step {number} wrote is gone")
    return name, path.read_bytes()


def resolve_inputs(step: dict, results: list[dict], sessions, session: str) -> StepData:
    """Gather a step's inputs: values, files of earlier steps, session items."""
    data = StepData()
    for name, ref in step.get("inputs", {}).items():
        if "value" in ref:
            data.values[name] = ref["value"]
        elif "from_step" in ref:
            earlier = results[ref["from_step"] - 1]
            if earlier["files"]:
                output, content = step_output(results, ref["from_step"], name)
                shipped = name if looks_like_file(name) else output
                data.add_file(shipped, content, {"from_step": ref["from_step"],
                                                 "output": output})
                data.values[name] = shipped
            else:
                data.values[name] = earlier["result"]
        else:
            item = sessions.get(session, ref["item"])
            if item["path"] is None:
                data.values[name] = item["value"]
                continue
            shipped = name if looks_like_file(name) else item["name"]
            data.add_file(shipped, sessions.read(session, item["name"]), {"item": item["name"]})
            data.values[name] = shipped
    return data


def add_named_files(data: StepData, arguments: dict, results: list[dict], sessions,
                    session: str) -> None:
    """Ship the files that string arguments name: earlier steps' outputs, session items."""
    outputs = {name: number for number, r in enumerate(results, 1) for name in r["files"]}
    for value in arguments.values():
        if not isinstance(value, str) or value in data.files or "/" in value:
            continue
        if value in outputs:
            name, content = step_output(results, outputs[value], value)
            data.add_file(value, content, {"from_step": outputs[value], "output": name})
        elif looks_like_file(value):
            try:
                item = sessions.get(session, value)
            except ItemMissing:
                continue  # a file name the tool will write, or a literal
            if item["path"] is not None:
                data.add_file(value, sessions.read(session, value), {"item": value})


def bind_values(values: dict, spec: ToolSpec) -> dict:
    """Return the inputs whose names are parameters of the tool: they need no extraction."""
    names = {p.name for p in spec.parameters}
    return {k: v for k, v in values.items() if k in names}


def failure_files(state: dict, input_files: list[str]) -> list[str] | dict[str, bytes]:
    """Return the files a repair runs with: those the failed call was given, else the user's."""
    kept = (state.get("failure") or {}).get("files")
    if not kept:
        return input_files
    try:
        return {name: Path(path).read_bytes() for name, path in kept.items()}
    except OSError as exc:
        raise ItemMissing(f"a file the failed step was given is gone ({exc.strerror})") from exc
