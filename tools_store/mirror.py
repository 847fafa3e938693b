"""The readable mirror of the library: ``<dir>/<name>/v<N>/{tool.py,test_tool.py,spec.json}``.

The database is the source of truth; the mirror is a mirror. It is written after a commit,
and a write that fails (a read-only folder, a full disk) is a pending repair, never a failed
registration. ``differences`` says how the files differ from the database without changing
anything; ``reconcile`` repairs them and never raises for a file it cannot fix.
"""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from pathlib import Path

from .models import ToolRecord


class FileMirror:
    """One folder per tool version, written through a staging folder renamed into place."""

    def __init__(self, root: Path):
        self.root = root
        self._lock = threading.Lock()
        # (name, version) -> why its files could not be written, until a write succeeds.
        self.pending: dict[tuple[str, int], str] = {}

    def folder(self, name: str, version: int) -> Path:
        """Return where a version's files live."""
        return self.root / name / f"v{version}"

    @staticmethod
    def contents(record: ToolRecord) -> dict[str, str]:
        """Return a version's files by name."""
        spec = record.spec.model_dump()
        spec.update(version=record.version, status=record.status, reason=record.reason,
                    code_hash=record.code_hash)
        if record.components:
            spec["components"] = record.components  # a composite's pinned component tools
        return {"tool.py": record.code, "test_tool.py": record.tests,
                "spec.json": json.dumps(spec, indent=2, sort_keys=True) + "\n"}

    def write(self, record: ToolRecord) -> str:
        """Write a version's files; return "" or why they could not be written.

        Nothing half-written is ever in place, and no staging folder is left behind.
        """
        key = (record.name, record.version)
        target = self.folder(record.name, record.version)
        staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
        try:
            staging.mkdir(parents=True)
            try:
                for filename, content in self.contents(record).items():
                    (staging / filename).write_text(content)
                if target.exists():
                    shutil.rmtree(target)
                staging.rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        except OSError as exc:
            problem = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self.pending[key] = problem
            return problem
        with self._lock:
            self.pending.pop(key, None)
        return ""

    def differences(self, records: list[ToolRecord], since: float | None = None) -> list[dict]:
        """Say how the files differ from ``records`` (every version); change nothing.

        Folders changed at or after ``since`` (when ``records`` were read) are left out: they
        may belong to a registration that committed meanwhile.
        """
        found: list[dict] = []
        expected: set[Path] = set()
        for record in records:
            folder = self.folder(record.name, record.version)
            expected.add(folder)
            drifted = [f for f, text in self.contents(record).items()
                       if _read(folder / f) != text]
            if drifted:
                found.append({"kind": "drifted" if folder.is_dir() else "missing",
                              "name": record.name, "version": record.version,
                              "files": drifted})
        for folder in self._folders():
            if folder in expected or (since is not None and _mtime(folder) >= since):
                continue
            found.append({"kind": "staging" if folder.name.startswith(".") else "extra",
                          "path": f"{folder.parent.name}/{folder.name}"})
        return found

    def reconcile(self, records: list[ToolRecord], since: float | None = None) -> list[str]:
        """Make the mirror match ``records``; return what was repaired, or could not be."""
        by_key = {(r.name, r.version): r for r in records}
        repairs: list[str] = []
        for difference in self.differences(records, since):
            if "path" in difference:
                path = difference["path"]
                try:
                    shutil.rmtree(self.root / path)
                    repairs.append(f"removed {path}: " + ("a staging leftover"
                                   if difference["kind"] == "staging" else "not in the database"))
                except OSError as exc:
                    repairs.append(f"could not remove {path}: {exc}")
                continue
            name, version = difference["name"], difference["version"]
            problem = self.write(by_key[(name, version)])
            repairs.append(f"could not rewrite {name} v{version}: {problem}" if problem else
                           f"rewrote {name} v{version}: {', '.join(difference['files'])}")
        for tool_dir in self._tool_dirs():
            try:
                tool_dir.rmdir()  # only when empty
            except OSError:
                pass
        return repairs

    def _tool_dirs(self) -> list[Path]:
        try:
            return [d for d in self.root.iterdir() if d.is_dir()]
        except OSError:
            return []

    def _folders(self) -> list[Path]:
        folders = []
        for tool_dir in self._tool_dirs():
            try:
                folders += [f for f in tool_dir.iterdir() if f.is_dir()]
            except OSError:
                continue
        return folders

    def remove(self) -> None:
        """Delete the whole mirror."""
        shutil.rmtree(self.root, ignore_errors=True)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
