"""The readable mirror of the library: ``<dir>/<name>/v<N>/{tool.py,test_tool.py,spec.json}``.

The database is the source of truth; the mirror is written after a commit and repaired
from the database (``reconcile``), so a failed write never loses a tool.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

from .models import ToolRecord


class FileMirror:
    """One folder per tool version, written through a staging folder renamed into place."""

    def __init__(self, root: Path):
        self.root = root

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

    def write(self, record: ToolRecord) -> None:
        """Write a version's files; nothing half-written is ever in place."""
        target = self.folder(record.name, record.version)
        staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
        staging.mkdir(parents=True)
        try:
            for filename, content in self.contents(record).items():
                (staging / filename).write_text(content)
            if target.exists():
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def reconcile(self, records: list[ToolRecord]) -> list[str]:
        """Make the mirror match ``records`` (every version); return what was repaired."""
        repairs: list[str] = []
        expected: set[Path] = set()
        for record in records:
            folder = self.folder(record.name, record.version)
            expected.add(folder)
            drifted = [f for f, text in self.contents(record).items()
                       if not (folder / f).exists() or (folder / f).read_text() != text]
            if drifted:
                self.write(record)
                repairs.append(f"rewrote {record.name} v{record.version}: {', '.join(drifted)}")
        if self.root.exists():
            for tool_dir in self.root.iterdir():
                if not tool_dir.is_dir():
                    continue
                for folder in tool_dir.iterdir():
                    if folder.is_dir() and folder not in expected:
                        shutil.rmtree(folder)
                        repairs.append(f"removed {tool_dir.name}/{folder.name}: not in the "
                                       "database")
                if not any(tool_dir.iterdir()):
                    tool_dir.rmdir()
        return repairs

    def remove(self) -> None:
        """Delete the whole mirror."""
        shutil.rmtree(self.root, ignore_errors=True)
