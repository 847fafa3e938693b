"""Versioned policies: thresholds per embedding model, ranking weights, retries, limits.

Each change is a new row, so a policy can be read as it was and rolled back; the newest row
applies, laid over the defaults (a policy written before a key existed still gets it).
"""

from __future__ import annotations

import json

import psycopg
from psycopg.types.json import Jsonb

from .embeddings import LOCAL_ID

DEFAULT_POLICY = {
    # Re-ranking: the seed's weights, kept as policy so they can change without a release.
    "weights": {"similarity": 0.7, "success": 0.2, "usage": 0.1},
    # Thresholds on raw cosine similarity, per embedding model: MiniLM's similarities run
    # far lower than OpenAI's, so one pair cannot serve both.
    "thresholds": {
        LOCAL_ID: {"reuse": 0.34, "verify": 0.28},
        "default": {"reuse": 0.80, "verify": 0.65},
    },
    "max_retries": 2,
    "min_tests": 3,
    # The mutation gate: a passing suite must kill this share of its implementation's
    # mutants (at most max_mutants of them; 0 turns the gate off) before the tool counts as
    # verified; a weaker suite is sent back to be strengthened, at most max_strengthen times.
    "min_mutation_score": 0.7,
    "max_mutants": 20,
    "max_strengthen": 2,
    "history_turns": 6,
    "served_requests_indexed": 20,
}


def overlay(base: dict, changes: dict) -> dict:
    """Return a copy of ``base`` with ``changes`` applied, merging nested dicts one level."""
    merged = json.loads(json.dumps(base))
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key].update(value)
        else:
            merged[key] = value
    return merged


def current(conn: psycopg.Connection) -> dict:
    """Return the newest policy over the defaults."""
    row = conn.execute("SELECT value FROM policies ORDER BY version DESC LIMIT 1").fetchone()
    return overlay(DEFAULT_POLICY, row["value"] if row else {})


def store(conn: psycopg.Connection, changes: dict, note: str = "") -> int:
    """Store a new policy version with ``changes`` applied; return its version."""
    with conn.transaction():
        conn.execute("LOCK TABLE policies IN EXCLUSIVE MODE")
        value = overlay(current(conn), changes)
        version = conn.execute("SELECT coalesce(max(version), 0) + 1 AS v "
                               "FROM policies").fetchone()["v"]
        conn.execute("INSERT INTO policies (version, value, note) VALUES (%s, %s, %s)",
                     (version, Jsonb(value), note))
    return version


def thresholds(policy: dict, model_id: str) -> dict:
    """Return the reuse / verify thresholds of ``policy`` for an embedding model."""
    table = policy["thresholds"]
    return table.get(model_id) or table["default"]
