"""Where the project keeps its data, read from the environment in one place."""

from __future__ import annotations

import os
from pathlib import Path


def sea_home() -> Path:
    """Return the data directory (``SEA_HOME``, default ``.sea`` in the working directory)."""
    return Path(os.environ.get("SEA_HOME") or Path.cwd() / ".sea").resolve()
