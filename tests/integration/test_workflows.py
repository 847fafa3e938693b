"""Multi-step plans, session data and learned workflows against the real parts.

The scripted model answers from scripts written to tmp files; the library is a throwaway
schema of the real PostgreSQL and every call runs in the real Docker sandbox. The example is
the issue's: compute the margin per product of a CSV file (a file flows on), then keep the
products above a threshold.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from graph.runner import Agent
from nodes.kit import services
from nodes.kit.scripted import DEMO_SCRIPT
from tools_store.models import ToolSpec

ROOT = Path(__file__).resolve().parents[2]
PRODUCTS = "product,price,cost\napple,10,8\nbread,4,3.8\ncheese,25,15\ndates,8,7.5\n"
Q2 = "product,price,cost\neggs,5,2\nflour,3,2.9\n"
ABOVE_10 = [{"product": "apple", "margin_pct": "20.0"},
            {"product": "cheese", "margin_pct": "40.0"}]
REQUEST = ("compute the margin per product in products.csv, then keep only the products "
           "whose margin is above 10 %")
Q2_REQUEST = REQUEST.replace("products.csv", "q2.csv")
PARAPHRASE = "work out each product's margin from products.csv and keep the ones above 10 percent"
STEP_1 = "compute the margin per product in {file}"
STEP_2 = "keep only the rows of margins.csv whose margin_pct column is above {n}"

MARGINS_SPEC = {
    "name": "product_margins",
    "description": "Compute the margin of each product in a CSV file of products (price, "
                   "cost) and write them to margins.csv.",
    "parameters": [{"name": "path", "type": "string",
                    "description": "CSV file with product, price and cost columns"}],
    "returns": {"type": "integer", "description": "how many products were written"},
    "examples": ["compute the margin per product in products.csv",
                 "what margin does each product in sales.csv make?"]}
MARGINS_CODE = '''import csv


def product_margins(path):
    """Write margins.csv (product, margin_pct) for a CSV of products; return the count."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError("the file has no products")
    with open("margins.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["product", "margin_pct"])
        for row in rows:
            price, cost = float(row["price"]), float(row["cost"])
            if price <= 0:
                raise ValueError(f"{row['product']}: the price must be positive")
            writer.writerow([row["product"], round((price - cost) / price * 100, 2)])
    return len(rows)
'''
# The implementation runs in a process apart from its tests, with a working directory of its
# own: the tests read the input files verified with them (FIXTURE_FILES) by name, and see what
# a tool wrote only through what it returns.
MARGINS_TESTS = '''import pytest
from tool import product_margins


def test_counts_the_products():
    assert product_margins("p.csv") == 2


def test_counts_a_single_product():
    assert product_margins("c.csv") == 1


def test_an_empty_file_is_refused():
    with pytest.raises(ValueError):
        product_margins("e.csv")
'''
FILTER_SPEC = {
    "name": "filter_rows",
    "description": "Keep only the rows of a CSV file whose numeric column is above a "
                   "threshold; write them to selected.csv and return them.",
    "parameters": [{"name": "path", "type": "string", "description": "CSV file"},
                   {"name": "column", "type": "string", "description": "numeric column"},
                   {"name": "threshold", "type": "number",
                    "description": "rows with a value above it are kept"}],
    "returns": {"type": "array", "description": "the rows kept, as objects"},
    "examples": ["keep only the rows of scores.csv whose score column is above 50",
                 "keep only the rows of a CSV file whose column is above a threshold"]}
FILTER_CODE = '''import csv


def filter_rows(path, column, threshold):
    """Keep the rows whose column is above threshold; write selected.csv; return them."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if column not in (reader.fieldnames or []):
            raise ValueError(f"the file has no column {column!r}")
        rows = [row for row in reader if float(row[column]) > threshold]
    with open("selected.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return rows
'''
FILTER_TESTS = '''import pytest
from tool import filter_rows


def test_keeps_rows_above():
    assert [r["name"] for r in filter_rows("t.csv", "score", 50)] == ["b", "c"]


def test_keeps_the_rows_as_objects():
    assert filter_rows("t.csv", "score", 80) == [{"name": "c", "score": "90"}]


def test_unknown_column_is_refused():
    with pytest.raises(ValueError):
        filter_rows("t.csv", "price", 1)
'''
FIXTURE_FILES = {"p.csv": b"product,price,cost\na,10,8\nb,20,10\n",
                 "c.csv": b"product,price,cost\nc,3,2\n", "e.csv": b"product,price,cost\n",
                 "t.csv": b"name,score\na,10\nb,60\nc,90\n"}
# A later version of filter_rows that changed behaviour: it returns the first column only.
FILTER_CODE_V2 = FILTER_CODE.replace("    return rows\n",
                                     "    return [next(iter(r.values())) for r in rows]\n")
COMPOSITE_SPEC = {
    "name": "products_above_margin",
    "description": "Compute each product's margin from a CSV of products and keep the "
                   "products whose margin is above a threshold (writes selected.csv).",
    "parameters": [{"name": "path", "type": "string", "description": "CSV of products"},
                   {"name": "column", "type": "string", "description": "the margin column"},
                   {"name": "threshold", "type": "number", "description": "percent"}],
    "returns": {"type": "array"},
    "examples": ["which products in sales.csv have a margin above 20 %?"]}
# The composite's own tests give it files and read what it wrote through the helpers that
# are composed beside it (it runs in a process of its own).
COMPOSITE_TESTS = '''import csv
import io

from tool import products_above_margin, put_file, read_file


def _products():
    put_file("p.csv", "product,price,cost\\nx,10,5\\ny,10,9.5\\n")


def test_keeps_the_products_above():
    _products()
    assert [r["product"] for r in products_above_margin("p.csv", "margin_pct", 10)] == ["x"]


def test_writes_selected():
    _products()
    products_above_margin("p.csv", "margin_pct", 10)
    kept = csv.DictReader(io.StringIO(read_file("selected.csv")))
    assert [r["product"] for r in kept] == ["x"]


def test_a_high_threshold_keeps_nothing():
    _products()
    assert products_above_margin("p.csv", "margin_pct", 90) == []
'''


def two_steps(file: str, n: int, request: str, column: str = "margin_pct") -> dict:
    """Return the plan entry of a two-step request over ``file``."""
    return {"step": "plan", "request": request, "reply": {
        "kind": "multi", "standalone_request": request, "steps": [
            {"request": STEP_1.format(file=file), "inputs": {file: {"item": file}},
             "outputs": ["margins.csv"]},
            {"request": STEP_2.format(n=n).replace("margin_pct", column),
             "inputs": {"margins.csv": {"from_step": 1}}, "outputs": ["selected.csv"]}]}}


def args(pattern: str, arguments: dict) -> dict:
    return {"step": "args", "match": pattern, "reply": {"arguments": arguments}}


def base_script() -> list[dict]:
    """Replies every test shares: the steps' arguments, answers, the composite's spec."""
    workflow_args = {"column": "margin_pct", "threshold": 10}
    return [
        two_steps("products.csv", 10, REQUEST), two_steps("q2.csv", 10, Q2_REQUEST),
        args(r"^compute the margin per product in (\S+)$", {"path": "products.csv"}),
        args(r"margins\.csv whose margin_pct column is above 30$",
             {"path": "margins.csv", "column": "margin_pct", "threshold": 30}),
        args(r"margins\.csv whose profit column", {"path": "margins.csv",
                                                  "column": "profit", "threshold": 10}),
        args(r"margins\.csv whose margin_pct column is above 10$",
             {"path": "margins.csv", "column": "margin_pct", "threshold": 10}),
        args(r"in q2\.csv, then", {"path": "q2.csv", **workflow_args}),
        args(r"(then keep only|work out each)", {"path": "products.csv", **workflow_args}),
        # Discovery asks its judge about a step unless the evidence already decides it.
        {"step": "judge", "match": r"^compute the margin per product in \S+$", "reply": {
            "serves": True, "tool": "product_margins",
            "reason": "it computes the margin of each product of a CSV file"}},
        {"step": "judge", "match": r"^keep only the rows of \S+ whose", "reply": {
            "serves": True, "tool": "filter_rows",
            "reason": "it keeps the rows whose column is above a threshold"}},
        {"step": "spec", "match": "(?i)then keep|work out", "reply": COMPOSITE_SPEC},
        {"step": "tests", "match": "(?i)then keep|work out", "reply": {
            "tests": COMPOSITE_TESTS}},
        {"step": "answer", "match": ".", "reply": {"answer": "done"}},
    ]


def write_script(tmp_path: Path, extra: list[dict] = ()) -> Path:
    path = tmp_path / f"script-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps({"replies": list(extra) + base_script()}))
    return path


@pytest.fixture
def data(tmp_path) -> dict[str, str]:
    files = {}
    for name, text in (("products.csv", PRODUCTS), ("q2.csv", Q2)):
        (tmp_path / name).write_text(text)
        files[name] = str(tmp_path / name)
    return files


# What each tool served before the tests start (both tools present, and used).
SERVED = {"product_margins": "compute the margin per product in sales.csv",
          "filter_rows": "keep only the rows of sales.csv whose margin_pct column is above 25"}


@pytest.fixture
def agent(docker_sandbox, tmp_path):
    """An agent on a throwaway library where both tools exist, verified in the sandbox."""
    made = Agent(model=f"scripted:{write_script(tmp_path)}", sandbox_backend="docker",
                 sandbox_pool=0, library_schema=f"w_{uuid.uuid4().hex[:10]}")
    library = services.library(made.context.library_schema)
    for spec, code, tests in ((MARGINS_SPEC, MARGINS_CODE, MARGINS_TESTS),
                              (FILTER_SPEC, FILTER_CODE, FILTER_TESTS)):
        report = docker_sandbox.verify(code, tests, files=FIXTURE_FILES)
        assert report.ok, report.summary()
        record = library.register(ToolSpec.model_validate(spec), code, tests,
                                  report.model_dump())
        library.record_execution(record.name, 1, {}, None, True, request=SERVED[record.name])
    yield made
    library.drop()
    services.forget_library(made.context.library_schema)
    made.close()


def rows(path: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(Path(path).read_text())))


LOOP = ["enrich", "plan", "retrieve", "decide", "execute", "retrieve", "decide", "execute",
        "answer"]


def test_a_file_flows_from_the_first_step_to_the_second_and_a_later_turn_uses_it(agent,
                                                                                  data):
    first = agent.ask(REQUEST, "s1", files=[data["products.csv"]])
    assert first["route"] == LOOP + ["learn"], first["error"]
    assert [r["tool"]["name"] for r in first["step_results"]] == ["product_margins",
                                                                  "filter_rows"]
    assert first["step_results"][1]["arguments"]["path"] == "margins.csv"
    assert first["result"] == ABOVE_10
    items = {i["name"]: i for i in agent.session_items("s1")}
    assert {"products.csv", "margins.csv", "selected.csv", "result_t1_s1",
            "result_t1_s2"} <= set(items)
    assert items["products.csv"]["source"] == "upload"
    margins = items["margins.csv"]
    assert margins["kind"] == "table" and margins["shape"].startswith("4 rows x 2 columns")
    assert rows(margins["path"])[3] == {"product": "dates", "margin_pct": "6.25"}
    assert rows(items["selected.csv"]["path"]) == ABOVE_10
    assert items["result_t1_s2"]["value"] == ABOVE_10 and items["result_t1_s2"]["step"] == 2

    # A later turn of the session points at "that data": the stored margins.csv is used,
    # though no file comes with the request.
    later = "now keep only the rows of that data above 30 %"
    plan = {"step": "plan", "request": later, "reply": {
        "kind": "single", "standalone_request": STEP_2.format(n=30), "steps": [{
            "request": STEP_2.format(n=30), "inputs": {"margins.csv": {"item": "margins.csv"}},
            "outputs": ["selected.csv"]}]}}
    agent.context.model = f"scripted:{write_script(Path(data['q2.csv']).parent, [plan])}"
    second = agent.ask(later, "s1")
    assert second["route"] == ["enrich", "plan", "retrieve", "decide", "execute", "answer"]
    assert second["tool"]["name"] == "filter_rows" and not second["error"]
    assert second["result"] == [{"product": "cheese", "margin_pct": "40.0"}]
    assert second["step_results"][0]["origins"]["margins.csv"]["item"] == "margins.csv"
    items = {i["name"]: i for i in agent.session_items("s1")}
    assert rows(items["selected.csv"]["path"]) == second["result"]  # the newest
    assert rows(items["selected.t1.csv"]["path"]) == ABOVE_10  # the older one, renamed


def test_the_third_run_reuses_the_workflow_and_promotion_replays_the_recorded_runs(agent,
                                                                                   data):
    library = agent.library
    for session in ("r1", "r2"):
        state = agent.ask(REQUEST, session, files=[data["products.csv"]])
        assert "plan" in state["usage"] and state["result"] == ABOVE_10
    [workflow] = library.workflows.list()
    assert (workflow["uses"], workflow["successes"]) == (2, 2)
    assert [p["name"] for p in workflow["params"]] == ["path", "column", "threshold"]
    assert workflow["steps"][1]["bindings"]["path"] == {
        "file_from_step": 1, "output": "margins.csv", "as": "margins.csv"}

    # The third run of the same kind (other data): no planning reply (the script has none
    # for this request), the proven sequence with its pinned tools.
    third = agent.ask(Q2_REQUEST, "r3", files=[data["q2.csv"]])
    assert third["route"] == LOOP + ["learn"], third["error"]
    assert "plan" not in third["usage"] and third["workflow"]["id"] == workflow["id"]
    assert third["result"] == [{"product": "eggs", "margin_pct": "60.0"}]
    learned = [e["message"] for e in third["events"] if e["step"] == "learn"]
    assert any("composite products_above_margin v1 registered" in m for m in learned), learned

    # Promotion (due at 3 uses, 100 %): replay tests from the recorded runs.
    workflow = library.workflows.get(workflow["id"])
    composite = library.get("products_above_margin")
    assert workflow["composite"] == "products_above_margin"
    assert composite.components == [{"name": "product_margins", "version": 1},
                                    {"name": "filter_rows", "version": 1}]
    runs = library.workflows.runs(workflow["id"], successful=True)
    assert len(runs) == 3
    for run in runs:
        assert f"def test_replay_run_{run['id']}(" in composite.tests
        assert json.dumps(run["result"]) in composite.tests
    assert json.dumps({"path": "q2.csv", "column": "margin_pct", "threshold": 10}) \
        in composite.tests
    assert composite.report["passed"] == 6  # three of the model's, three replays

    # A paraphrase is served by the composite in one step.
    paraphrase = agent.ask(PARAPHRASE, "r4", files=[data["products.csv"]])
    assert paraphrase["route"] == ["enrich", "plan", "retrieve", "decide", "execute",
                                   "answer", "learn"], paraphrase["error"]
    assert paraphrase["tool"]["name"] == "products_above_margin"
    assert paraphrase["result"] == ABOVE_10
    selected = {i["name"]: i for i in agent.session_items("r4")}["selected.csv"]
    assert rows(selected["path"]) == ABOVE_10

    # A component changes behaviour: the composite's replay tests fail with it, and the
    # composite keeps the versions it was verified with.
    library.register(ToolSpec.model_validate(FILTER_SPEC), FILTER_CODE_V2, FILTER_TESTS,
                     reason="changed", new_version=True)
    outcome = agent.promote_workflow(workflow["id"])
    assert outcome["status"] == "kept", outcome
    assert {f"test_replay_run_{r['id']}" for r in runs} <= set(outcome["failed"])
    assert library.get("products_above_margin").version == 1
    assert library.get("products_above_margin").components[1] == {"name": "filter_rows",
                                                                  "version": 1}
    again = agent.ask(PARAPHRASE, "r5", files=[data["products.csv"]])
    assert again["result"] == ABOVE_10  # still the pinned filter_rows v1


def test_a_workflow_whose_tools_changed_is_planned_again(agent, data):
    library = agent.library
    for session in ("o1", "o2"):
        assert agent.ask(REQUEST, session, files=[data["products.csv"]])["result"] == ABOVE_10
    [learned] = library.workflows.list()
    # filter_rows is repaired: the workflow's pinned v1 may be the answer a user marked wrong.
    library.register(ToolSpec.model_validate(FILTER_SPEC), FILTER_CODE, FILTER_TESTS,
                     reason="repair", new_version=True)
    third = agent.ask(REQUEST, "o3", files=[data["products.csv"]])
    assert "plan" in third["usage"] and third["result"] == ABOVE_10  # planned, not replayed
    assert f"workflow {learned['id']}" in next(
        e["message"] for e in third["events"] if "out of date" in e["message"])
    assert [r["tool"]["version"] for r in third["step_results"]] == [1, 2]
    # Learned again with v2, at the same similarity as the old one: it is not hidden by it.
    agent.ask(REQUEST, "o4", files=[data["products.csv"]])
    fifth = agent.ask(REQUEST, "o5", files=[data["products.csv"]])
    assert "plan" not in fifth["usage"] and fifth["result"] == ABOVE_10
    assert fifth["workflow"]["id"] != learned["id"]
    # Before, a retired tool went on serving through the workflow that pinned it.
    library.remove("product_margins")
    [candidate] = [c for c in library.workflows.candidates(REQUEST) if c["id"] == learned["id"]]
    assert candidate["out_of_date"] == "product_margins is retired"


def test_bad_plans_end_in_clear_answers_and_lose_no_data(agent, data, tmp_path):
    first = agent.ask(REQUEST, "bad", files=[data["products.csv"]])
    assert not first["error"]
    multi = {"kind": "multi", "standalone_request": "x"}
    bad = {
        "use step 7": [{"request": STEP_1.format(file="products.csv")},
                       {"request": "y", "inputs": {"t": {"from_step": 7}}}],
        "go in a circle": [{"request": "a", "inputs": {"t": {"from_step": 2}}},
                           {"request": "b", "inputs": {"t": {"from_step": 1}}}],
        "do six things": [{"request": f"thing {i}"} for i in range(6)],
        "keep the selected rows above 30": [
            {"request": STEP_2.format(n=30).replace("margins.csv", "selected.csv"),
             "inputs": {"selected.csv": {"item": "selected.csv"}}}],
    }
    extra = [{"step": "plan", "request": r, "reply": {**multi, "steps": s}}
             for r, s in bad.items()]
    failing = REQUEST.replace("margin is", "profit is")
    extra.append(two_steps("products.csv", 10, failing, column="profit"))
    agent.context.model = f"scripted:{write_script(tmp_path, extra)}"
    Path(agent.library.sessions.get("bad", "selected.csv")["path"]).unlink()  # a lost file

    expected = {"use step 7": "step 2 uses the output of step 7, but the plan has 2 steps",
                "go in a circle": "steps 1 -> 2 -> 1 depend on each other (a cycle)",
                "do six things": "the plan has 6 steps; at most 5 are allowed",
                "keep the selected rows above 30": "uses 'selected.csv', but its file (made "
                "in turn 1) is no longer in the data directory"}
    for request, message in expected.items():
        state = agent.ask(request, "bad")
        assert state["route"] == ["enrich", "plan", "answer"], request
        assert message in state["answer"], state["answer"]

    # A failure in use of step 2, with no retries: no repair, the plan stops there.
    agent.context.max_retries = 0
    state = agent.ask(failing, "bad", files=[data["products.csv"]])
    assert state["route"] == LOOP
    assert ("step 2 of 2 ('keep only the rows of margins.csv whose profit column is above "
            "10') failed: filter_rows v1 failed: ValueError: the file has no column 'profit'"
            in state["answer"])
    assert "step 1 (product_margins): result_t6_s1, margins.csv" in state["answer"]
    items = {i["name"]: i for i in agent.session_items("bad")}
    assert items["margins.csv"]["available"] and items["result_t6_s1"]["value"] == 4
    assert rows(items["margins.csv"]["path"])[0] == {"product": "apple", "margin_pct": "20.0"}
    assert items["result_t1_s2"]["value"] == ABOVE_10
    assert not items["selected.csv"]["available"]  # the lost file is said to be lost
    assert len(agent.library.workflows.list()) == 1  # the failed plan taught nothing


def test_the_demo_runs_its_two_step_example_and_learns_it(docker_sandbox):
    agent = Agent(model=f"scripted:{DEMO_SCRIPT}", sandbox_backend="docker", sandbox_pool=0,
                  library_schema=f"w_{uuid.uuid4().hex[:10]}")
    try:
        request = "convert 100 degrees Fahrenheit to Celsius, then to Kelvin"
        state = agent.ask(request, "demo")
        assert state["route"].count("execute") == 2 and state["route"][-1] == "learn"
        assert [r["result"] for r in state["step_results"]] == [37.78, 310.93]
        assert state["answer"] == "100 °F is 37.78 °C, which is 310.93 K."
        assert [s["tool"] for s in agent.workflows()[0]["steps"]] == [
            "fahrenheit_to_celsius", "celsius_to_kelvin"]

        # On demand from the command line, before the promotion criteria are met.
        env = {**os.environ, "SEA_LIBRARY_SCHEMA": agent.context.library_schema}

        def sea(*arguments: str) -> dict:
            run = subprocess.run([sys.executable, "-m", "cli", "workflows", *arguments,
                                  "--json"], capture_output=True, text=True, timeout=300,
                                 cwd=ROOT, env=env)
            assert run.returncode == 0, run.stdout + run.stderr[-2000:]
            return json.loads(run.stdout)

        [listed] = sea("list")["workflows"]
        assert (listed["uses"], listed["successes"], listed["composite"]) == (1, 1, None)
        outcome = sea("promote", str(listed["id"]), "--model", f"scripted:{DEMO_SCRIPT}")
        assert outcome["status"] == "promoted" and outcome["tool"] == "fahrenheit_to_kelvin"
        shown = sea("show", str(listed["id"]))
        assert shown["composite"] == "fahrenheit_to_kelvin" and len(shown["runs"]) == 1
        composite = agent.library.get("fahrenheit_to_kelvin")
        assert f"def test_replay_run_{shown['runs'][0]['id']}(" in composite.tests
        assert "import celsius_to_kelvin as _celsius_to_kelvin" in composite.code
    finally:
        services.library(agent.context.library_schema).drop()
        services.forget_library(agent.context.library_schema)
        agent.close()


def test_memory_beyond_the_window_summarizes_and_finds_the_relevant_turns():
    from types import SimpleNamespace

    from langchain_core.messages import AIMessage, HumanMessage

    from nodes.enrich import enrich
    from nodes.kit.context import Context

    turns = [("convert 100 degrees Fahrenheit to Celsius", "100 °F is 37.78 °C."),
             ("count the vowels in Encyclopedia Britannica", "It has 9 vowels."),
             ("reverse the words of the quick brown fox", "fox brown quick the"),
             ("what is 2 + 2", "4")]
    messages = [m for q, a in turns for m in (HumanMessage(q), AIMessage(a))]
    session = f"memory-{uuid.uuid4().hex[:6]}"
    runtime = SimpleNamespace(context=Context(history_turns=1, session_id=session))
    update = enrich({"request": "and what is 98.6 F in celsius?", "messages": messages},
                    runtime)
    assert [t["content"] for t in update["history"]] == ["what is 2 + 2", "4"]
    memory = update["memory"]
    assert "Earlier in this session (3 turns before the recent ones):" in memory
    assert "2. asked 'count the vowels in Encyclopedia Britannica' -> 'It has 9 vowels.'" \
        in memory
    relevant = memory.split("Earlier turns most relevant to this request:\n")[1]
    assert relevant.startswith("turn 1: user: convert 100 degrees Fahrenheit to Celsius")
    assert "vowels" not in relevant and update["turn"] == 5
    # Each older turn's embedding is stored once, for the turns to come.
    library = services.library()
    rows = library._reader().execute("SELECT turn FROM session_turns WHERE session_id = %s "
                                     "ORDER BY turn", (session,)).fetchall()
    assert [r["turn"] for r in rows] == [1, 2, 3]


def test_sea_ask_continues_a_session_with_its_data(agent, data, tmp_path):
    later = "now keep only the rows of that data above 30 %"
    plan = {"step": "plan", "request": later, "reply": {
        "kind": "single", "standalone_request": STEP_2.format(n=30), "steps": [{
            "request": STEP_2.format(n=30), "inputs": {"margins.csv": {"item": "margins.csv"}},
            "outputs": ["selected.csv"]}]}}
    script = write_script(tmp_path, [plan])
    env = {**os.environ, "SEA_LIBRARY_SCHEMA": agent.context.library_schema}

    def sea_ask(*arguments: str) -> dict:
        run = subprocess.run([sys.executable, "-m", "cli", "ask", *arguments, "--session",
                              "cli-session", "--model", f"scripted:{script}", "--in-process",
                              "--json"], capture_output=True, text=True, timeout=300,
                             cwd=ROOT, env=env)
        assert run.returncode == 0, run.stdout + run.stderr[-2000:]
        return json.loads(run.stdout)

    first = sea_ask(REQUEST, "--data", data["products.csv"])
    assert [s["tool"] for s in first["steps"]] == ["product_margins", "filter_rows"]
    assert first["steps"][0]["kept"] == ["result_t1_s1", "margins.csv"]
    second = sea_ask(later)  # no file given: the session's margins.csv is used
    assert second["result"] == [{"product": "cheese", "margin_pct": "40.0"}]
    names = [i["name"] for i in agent.session_items("cli-session")]
    assert set(names[:2]) == {"selected.csv", "result_t2"} and "selected.t1.csv" in names
