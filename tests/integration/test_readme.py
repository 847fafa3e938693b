"""The README's Python snippet runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

from servers import ROOT


def test_readme_python_snippet_runs(docker_sandbox):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## From Python", 1)[1]
    snippet = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    env = {**os.environ, "SEA_LIBRARY_SCHEMA": f"readme_{uuid.uuid4().hex[:8]}"}
    env.pop("SEA_MODEL", None)
    env.pop("OPENAI_API_KEY", None)  # no model configured: the scripted demo answers
    run = subprocess.run([sys.executable, "-c", snippet], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert lines[0] == "100 °F is 37.78 °C. 37.78"
    assert "[plan] single tool: convert 451 degrees Fahrenheit to Celsius" in lines
    assert lines[-1] == "451 °F is 232.78 °C."
