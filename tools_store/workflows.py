"""Learned workflows: tool sequences that served multi-step requests, with their runs.

A workflow is keyed by what it does (its tools, their versions, how data flows between
them), so a second run of the same sequence adds to the first one's evidence. Its requests
are embedded in ``workflow_texts`` (pgvector, compared within one embedding model) beside
its steps' requests (a request nearer one step than the whole asks for that step only), its
runs kept in ``workflow_runs`` with the real inputs and outputs, which the replay tests of a
composite tool are built from. The store returns candidates; the graph decides.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg.types.json import Jsonb

from .errors import WorkflowNotFound

_COLUMNS = ("id, request_pattern AS request, standalone, key, steps, params, returns, uses, "
            "successes, composite, composite_version, promotion, created_at, updated_at")


def _workflow(row: dict) -> dict:
    item = dict(row)
    item["success_rate"] = row["successes"] / row["uses"] if row["uses"] else None
    for key in ("created_at", "updated_at"):
        item[key] = str(row[key])
    return item


def _out_of_date(workflow: dict, tools: dict[str, dict]) -> str:
    """Say why a workflow no longer runs as recorded ("" when it does).

    It pins its tools' versions: once one is retired, or repaired (the pinned version may be
    the one a user marked wrong), the recorded sequence is not what the library offers now.
    A promoted workflow runs its composite, which pins its components itself (re-verified
    with new ones only on promotion): only the composite counts then.
    """
    pinned = ([(workflow["composite"], workflow["composite_version"])] if workflow["composite"]
              else [(s["tool"], s["version"]) for s in workflow["steps"]])
    for name, version in pinned:
        tool = tools.get(name)
        if tool is None or tool["status"] == "retired":
            return f"{name} is retired"
        if tool["current_version"] != version:
            return f"it runs {name} v{version}, and v{tool['current_version']} is current"
    return ""


class WorkflowStore:
    """Record, find and count workflows of one library schema."""

    def __init__(self, connect: Callable[[], psycopg.Connection],
                 reader: Callable[[], psycopg.Connection], index, model_id: str):
        self._connect, self._reader, self._index = connect, reader, index
        self.model_id = model_id

    def record(self, key: str, request: str, standalone: str, steps: list[dict],
               params: list[dict], returns: dict, run: dict, success: bool) -> dict:
        """Add a run to the workflow with ``key``, creating the workflow on its first run."""
        with self._connect() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"workflow-{key}",))
            row = conn.execute("SELECT id FROM workflow_patterns WHERE key = %s",
                               (key,)).fetchone()
            created = row is None
            if created:
                row = conn.execute(
                    "INSERT INTO workflow_patterns (request_pattern, key, standalone, steps, "
                    "params, returns) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                    (request, key, standalone, Jsonb(steps), Jsonb(params),
                     Jsonb(returns))).fetchone()
        if created:
            for step in steps:
                self.index_text(row["id"], step["request"], "step")
        return self.add_run(row["id"], run, success)

    def add_run(self, workflow_id: int, run: dict, success: bool) -> dict:
        """Keep one run of a workflow and count it; index its request when it worked."""
        with self._connect() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO workflow_runs (workflow_id, session_id, request, arguments, files, "
                "result, outputs, success, error, reused) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (workflow_id, run.get("session_id", ""), run.get("request", "")[:2000],
                 Jsonb(run.get("arguments", {})), Jsonb(run.get("files", {})),
                 Jsonb(run.get("result")), Jsonb(run.get("outputs", {})), success,
                 run.get("error", "")[:4000], bool(run.get("reused"))))
            conn.execute("UPDATE workflow_patterns SET uses = uses + 1, successes = successes + "
                         "%s, updated_at = now() WHERE id = %s", (int(success), workflow_id))
        if success and run.get("request", "").strip():
            self.index_text(workflow_id, run["request"].strip())
        return self.get(workflow_id)

    def index_text(self, workflow_id: int, text: str, kind: str = "request") -> None:
        """Embed a request the workflow served (or one of its steps' requests), once."""
        present = self._reader().execute(
            "SELECT 1 FROM workflow_texts WHERE workflow_id = %s AND model = %s AND kind = %s "
            "AND text = %s", (workflow_id, self.model_id, kind, text)).fetchone()
        if present:
            return
        vector = self._index.embed([text])[0]
        with self._connect() as conn:
            conn.execute("INSERT INTO workflow_texts (workflow_id, model, kind, text, embedding) "
                         "VALUES (%s, %s, %s, %s, %s::vector) ON CONFLICT DO NOTHING",
                         (workflow_id, self.model_id, kind, text,
                          str([float(x) for x in vector])))

    def candidates(self, query: str, k: int = 3) -> list[dict]:
        """Return the workflows whose requests are nearest ``query``, best first.

        Each has ``similarity`` (its nearest request), ``matched_text``,
        ``step_similarity`` (its nearest single step's request) and ``out_of_date`` (why its
        pinned tools are no longer the library's, or "").
        """
        reader = self._reader()
        if not reader.execute("SELECT 1 FROM workflow_texts WHERE model = %s LIMIT 1",
                              (self.model_id,)).fetchone():
            return []  # nothing learned yet: no embedding needed
        vector = str([float(x) for x in self._index.embed_query(query)])
        rows = reader.execute(
            "WITH sims AS (SELECT workflow_id, kind, text, "
            "  1 - (embedding <=> %s::vector) AS similarity FROM workflow_texts "
            "  WHERE model = %s), "
            "best AS (SELECT DISTINCT ON (workflow_id) workflow_id, text, similarity FROM sims "
            "  WHERE kind = 'request' ORDER BY workflow_id, similarity DESC), "
            "steps AS (SELECT workflow_id, max(similarity) AS step_similarity FROM sims "
            "  WHERE kind = 'step' GROUP BY workflow_id) "
            f"SELECT {_COLUMNS}, best.similarity, best.text AS matched_text, "
            "coalesce(steps.step_similarity, 0) AS step_similarity "
            "FROM best JOIN workflow_patterns w ON w.id = best.workflow_id "
            "LEFT JOIN steps ON steps.workflow_id = best.workflow_id "
            "ORDER BY best.similarity DESC, w.id DESC LIMIT %s",
            (vector, self.model_id, k)).fetchall()
        found = [_workflow(r) for r in rows]
        names = {s["tool"] for w in found for s in w["steps"]} | {
            w["composite"] for w in found if w["composite"]}
        tools = {t["name"]: t for t in reader.execute(
            "SELECT name, current_version, status FROM tools WHERE name = ANY(%s)",
            (sorted(names),)).fetchall()}
        for item in found:
            item["out_of_date"] = _out_of_date(item, tools)
        return found

    def get(self, workflow_id: int) -> dict:
        """Return one workflow."""
        row = self._reader().execute(f"SELECT {_COLUMNS} FROM workflow_patterns WHERE id = %s",
                                     (workflow_id,)).fetchone()
        if row is None:
            raise WorkflowNotFound(f"no workflow {workflow_id}")
        return _workflow(row)

    def list(self) -> list[dict]:
        """Return every learned workflow, most used first."""
        rows = self._reader().execute(
            f"SELECT {_COLUMNS} FROM workflow_patterns WHERE key IS NOT NULL "
            "ORDER BY uses DESC, id").fetchall()
        return [_workflow(r) for r in rows]

    def runs(self, workflow_id: int, limit: int = 20, successful: bool | None = None
             ) -> list[dict]:
        """Return a workflow's runs, newest first."""
        rows = self._reader().execute(
            "SELECT * FROM workflow_runs WHERE workflow_id = %s "
            "AND (%s::boolean IS NULL OR success = %s) ORDER BY id DESC LIMIT %s",
            (workflow_id, successful, successful, limit)).fetchall()
        return [{**r, "created_at": str(r["created_at"])} for r in rows]

    def set_composite(self, workflow_id: int, name: str, version: int) -> None:
        """Point a workflow at the composite tool it was promoted to."""
        with self._connect() as conn:
            conn.execute("UPDATE workflow_patterns SET composite = %s, composite_version = %s, "
                         "updated_at = now() WHERE id = %s", (name, version, workflow_id))

    def note_promotion(self, workflow_id: int, outcome: dict) -> None:
        """Keep the outcome of the last promotion attempt (shown by `sea workflows show`)."""
        with self._connect() as conn:
            conn.execute("UPDATE workflow_patterns SET promotion = %s WHERE id = %s",
                         (Jsonb(outcome), workflow_id))
