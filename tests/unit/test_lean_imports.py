"""Deferred package initialisers: left out of the graph's import, complete when used.

Each check runs in a fresh interpreter: deferring only works before the package is imported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> str:
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.strip()


def test_the_graph_imports_without_the_deferred_initialisers():
    out = _python(
        "import sys\n"
        "from cli.lean_imports import install\n"
        "install()\n"
        "import graph.runner\n"
        "print(sorted(m for m in ('langgraph_sdk.client', 'httpx', 'langsmith.types.run')"
        " if m in sys.modules))\n")
    assert out == "[]"


def test_without_deferring_the_graph_imports_them():
    # The check above means something only while these packages do pull them in.
    out = _python(
        "import sys\n"
        "import graph.runner\n"
        "print(all(m in sys.modules for m in ('langgraph_sdk.client', 'langsmith.types.run')))\n")
    assert out == "True"


def test_a_deferred_package_is_complete_when_used():
    out = _python(
        "import sys\n"
        "from cli.lean_imports import install\n"
        "install()\n"
        "import langgraph.runtime\n"  # imports langgraph_sdk.auth.types, not the client
        "import langgraph_sdk, langsmith.types\n"
        "assert 'langgraph_sdk.client' not in sys.modules\n"
        "from langgraph_sdk import get_client\n"  # the first read runs the __init__
        "assert 'langgraph_sdk.client' in sys.modules and callable(get_client)\n"
        "assert langgraph_sdk.auth.types.BaseUser is not None\n"
        "assert langsmith.types.Run.__name__ == 'Run'\n"
        "assert type(langgraph_sdk) is type(sys)\n"
        "try:\n"
        "    langgraph_sdk.no_such_name\n"
        "except AttributeError as exc:\n"
        "    print(exc)\n")
    assert out == "module 'langgraph_sdk' has no attribute 'no_such_name'"


def test_a_package_already_imported_is_left_alone():
    out = _python(
        "import langgraph_sdk\n"
        "from cli.lean_imports import defer_package_init\n"
        "print(defer_package_init('langgraph_sdk'), defer_package_init('no_such_package_x'))\n")
    assert out == "False False"
