"""The execution cache: a deterministic tool's result for the same code, arguments and files.

The key is the tool, its version and code hash, the arguments as canonical JSON and the
hashes of the input files, so a new version (or new code) never sees an older one's
entries. Entries live for the policy's ``cache_ttl_seconds``. Whether a tool may be cached
at all is its spec's ``deterministic`` flag, decided by the caller.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb


def file_hashes(files: list[str] | dict[str, bytes]) -> list[list[str]]:
    """Return [name, sha256] of each input file (paths, or contents by name), sorted by name."""
    if isinstance(files, dict):  # a plan's step: its files come from items and earlier steps
        return sorted([name, hashlib.sha256(data).hexdigest()] for name, data in files.items())
    return sorted([Path(p).name, hashlib.sha256(Path(p).read_bytes()).hexdigest()]
                  for p in files)


def cache_key(arguments: dict, files: list[list[str]]) -> str:
    """Return the key of a call: canonical JSON of its arguments and its files' hashes."""
    canonical = json.dumps({"arguments": arguments, "files": files}, sort_keys=True,
                           separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def get(conn: psycopg.Connection, name: str, version: int, code_hash: str,
        key: str) -> tuple[bool, object]:
    """Return (found, result) of an entry that has not expired."""
    row = conn.execute(
        "SELECT result FROM execution_cache WHERE tool_name = %s AND tool_version = %s "
        "AND code_hash = %s AND key = %s AND expires_at > now()",
        (name, version, code_hash, key)).fetchone()
    return (True, row["result"]) if row else (False, None)


def put(conn: psycopg.Connection, name: str, version: int, code_hash: str, key: str,
        arguments: dict, files: list[list[str]], result, ttl_seconds: int) -> None:
    """Store (or refresh) an entry that expires after ``ttl_seconds``."""
    conn.execute(
        "INSERT INTO execution_cache (tool_name, tool_version, code_hash, key, arguments, "
        "files, result, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, "
        "now() + make_interval(secs => %s)) ON CONFLICT (tool_name, tool_version, code_hash, "
        "key) DO UPDATE SET result = excluded.result, created_at = now(), "
        "expires_at = excluded.expires_at",
        (name, version, code_hash, key, Jsonb(arguments), Jsonb(files), Jsonb(result),
         ttl_seconds))
