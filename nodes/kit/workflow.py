"""Learned workflows as the graph runs them: how a finished plan's data flowed, and replaying it.

Every argument of every step is either fed by an earlier step (its value, or a file it wrote)
or is a parameter of the workflow. The bindings say which; they identify the workflow, let a
later request run it by extracting only its parameters, and let a composite tool be composed
from it (``composite.py``).
"""

from __future__ import annotations

import hashlib
import json

from tools_store.models import Parameter, ToolSpec

from .dataflow import StepData, step_output


def learn_bindings(steps: list[dict], results: list[dict], specs: dict[str, ToolSpec]
                   ) -> tuple[list[dict], list[dict]]:
    """Return (recorded steps, parameters): how each argument of each step was obtained.

    An argument fed by an earlier step's value or file is internal; every other argument
    is a parameter of the workflow (and of a composite tool promoted from it).
    """
    params: list[dict] = []
    recorded = []
    for number, (step, result) in enumerate(zip(steps, results, strict=True), 1):
        spec = specs[result["tool"]["name"]]
        bindings = {}
        # Earlier steps whose result (not a file) this step was given.
        fed = [r["from_step"] for r in step.get("inputs", {}).values()
               if "from_step" in r and not results[r["from_step"] - 1]["files"]]
        for arg, value in result["arguments"].items():
            ref = step.get("inputs", {}).get(arg, {})
            origin = result["origins"].get(value) if isinstance(value, str) else None
            same = [n for n in fed if results[n - 1]["result"] == value]
            if "from_step" in ref and ref["from_step"] in fed:
                bindings[arg] = {"from_step": ref["from_step"]}
            elif same:
                bindings[arg] = {"from_step": same[0]}
            elif origin and "from_step" in origin:
                bindings[arg] = {"file_from_step": origin["from_step"],
                                 "output": origin["output"], "as": value}
            else:
                name = arg if arg not in {p["name"] for p in params} else f"{arg}_{number}"
                param = next(p for p in spec.parameters if p.name == arg)
                params.append(Parameter(name=name, type=param.type, required=True,
                                        description=param.description).model_dump())
                bindings[arg] = {"param": name}
        recorded.append({"tool": result["tool"]["name"], "version": result["tool"]["version"],
                         "request": step["request"], "outputs": step.get("outputs", []),
                         "bindings": bindings})
    return recorded, params


def workflow_key(recorded: list[dict]) -> str:
    """Return what identifies a workflow: tools, versions, data flow, output files."""
    shape = [{"tool": s["tool"], "version": s["version"], "outputs": s["outputs"],
              "bindings": {a: sorted(b) if "param" in b else b
                           for a, b in sorted(s["bindings"].items())}} for s in recorded]
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:32]


def workflow_steps(workflow: dict, arguments: dict) -> list[dict]:
    """Return the steps that run a recorded workflow with its pinned tools and ``arguments``."""
    return [{"request": s["request"], "inputs": {}, "outputs": s["outputs"],
             "tool": {"name": s["tool"], "version": s["version"]},
             "bindings": s["bindings"], "workflow_arguments": arguments}
            for s in workflow["steps"]]


def pinned_arguments(step: dict, results: list[dict], data: StepData) -> dict:
    """Return a workflow step's arguments from its bindings; put the files it needs in ``data``."""
    arguments = {}
    for arg, binding in step["bindings"].items():
        if "param" in binding:
            if binding["param"] in step["workflow_arguments"]:
                arguments[arg] = step["workflow_arguments"][binding["param"]]
        elif "from_step" in binding:
            arguments[arg] = results[binding["from_step"] - 1]["result"]
        else:
            name, content = step_output(results, binding["file_from_step"], binding["output"])
            data.add_file(binding["as"], content, {"from_step": binding["file_from_step"],
                                                   "output": name})
            arguments[arg] = binding["as"]
    return arguments


def workflow_spec(workflow: dict) -> ToolSpec:
    """Return the signature a workflow's arguments are extracted into."""
    return ToolSpec(name=f"workflow_{workflow['id']}",
                    description=f"Run the learned workflow for: {workflow['request']}",
                    parameters=[Parameter.model_validate(p) for p in workflow["params"]])
