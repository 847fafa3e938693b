"""What verify and call report, through the real Docker sandbox, the warm pool and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import sandbox_containers

from sandbox.core import RawRun, verify_report

IMPL = "def add(a, b):\n    return a + b\n"
TESTS = ("from tool import add\n\n"
         "def test_small():\n    assert add(1, 2) == 3\n\n"
         "def test_wrong():\n    assert add(2, 2) == 5, 'two and two'\n\n"
         "class TestMore:\n    def test_neg(self):\n        assert add(-1, 1) == 0\n")


def test_failing_tests_carry_names_outcomes_and_messages(docker_sandbox):
    report = docker_sandbox.verify(IMPL, TESTS)
    assert report.status == "failed"
    assert (report.passed, report.failed) == (2, 1)
    outcomes = {t.name: t.outcome for t in report.tests}
    assert outcomes == {"test_small": "passed", "test_wrong": "failed",
                        "TestMore::test_neg": "passed"}
    (failure,) = report.failures()
    assert "two and two" in failure.message and "assert 4 == 5" in failure.message


def test_passing_suite_passes(docker_sandbox):
    tests = "from tool import add\n\ndef test_a():\n    assert add(1, 1) == 2\n"
    report = docker_sandbox.verify(IMPL, tests)
    assert report.ok and report.passed == 1 and report.duration > 0


def test_collection_error_is_an_error(docker_sandbox):
    report = docker_sandbox.verify(IMPL, "from tool import missing_name\n\n"
                                         "def test_a():\n    assert True\n")
    assert report.status == "error" and report.collection_errors
    assert "missing_name" in report.collection_errors[0]


def test_implementation_that_does_not_parse(docker_sandbox):
    report = docker_sandbox.verify("def add(a, b)\n    return a +\n", TESTS)
    assert report.status == "error"
    assert "SyntaxError" in " ".join(report.collection_errors)


def test_missing_function_is_a_clear_call_error(docker_sandbox):
    result = docker_sandbox.call(IMPL, "subtract", {"a": 1, "b": 2})
    assert not result.ok and result.error_type == "AttributeError"
    assert "subtract" in result.error


def test_exception_in_the_tool_is_reported(docker_sandbox):
    result = docker_sandbox.call("def f(x):\n    return 1 / x\n", "f", {"x": 0})
    assert result.status == "error" and result.error_type == "ZeroDivisionError"


def test_non_serialisable_result_says_so(docker_sandbox):
    result = docker_sandbox.call("def f():\n    return object()\n", "f", {})
    assert result.error_type == "NotJSONSerializable" and "object" in result.error


def test_non_json_arguments_are_refused_before_running(docker_sandbox):
    result = docker_sandbox.call(IMPL, "add", {"a": float("nan"), "b": 1})
    assert result.error_type == "InvalidArguments"


def test_huge_and_non_utf8_output_in_a_suite(docker_sandbox):
    tests = ("import sys\nfrom tool import add\n\n"
             "def test_noisy():\n"
             "    sys.stdout.buffer.write(b'\\xff\\xfe' * 10**6)\n"
             "    print('x' * 10**7)\n"
             "    assert add(1, 1) == 2\n")
    report = docker_sandbox.verify(IMPL, tests + "    assert False\n")
    assert report.status == "failed"
    assert len(report.tests[0].message) <= 20_000
    assert len(report.stdout) <= docker_sandbox.limits.output_bytes


def test_report_that_contradicts_the_exit_status_is_an_error():
    frame = {"mode": "verify", "timed_out": False, "child_exit": 1, "child_signal": None,
             "report": json.dumps({"exitstatus": 0, "tests": [
                 {"name": "test_a", "outcome": "passed"}], "collection_errors": []}),
             "report_overflow": False, "stdout": "", "stderr": "",
             "output_truncated": False, "duration": 0.1}
    from sandbox.core import Limits
    from sandbox.runner import FRAME_MARKER

    raw = RawRun(output=FRAME_MARKER + json.dumps(frame) + "\n", exit_code=0)
    report = verify_report(raw, "def test_a():\n    assert True\n", Limits())
    assert report.status == "error" and "exit status" in report.detail
    # The same report with a test the suite never declared is refused as well.
    frame["child_exit"] = 0
    raw = RawRun(output=FRAME_MARKER + json.dumps(frame) + "\n", exit_code=0)
    report = verify_report(raw, "def test_other():\n    assert True\n", Limits())
    assert report.status == "error" and "does not declare" in report.detail


def test_garbage_frame_is_an_error():
    from sandbox.core import Limits
    from sandbox.runner import FRAME_MARKER

    raw = RawRun(output=FRAME_MARKER + "{not json" * 1000, exit_code=0)
    assert verify_report(raw, "", Limits()).status == "error"


def test_warm_pool_is_single_use_and_leaves_nothing():
    from conftest import _sandbox

    sandbox = _sandbox("docker", pool_size=2)
    pool = sandbox.backend.pool
    assert pool.wait_ready(60)
    first_ids = {c.id for c in pool.waiting()}
    writer = "def f():\n    open('/tmp/left', 'w').write('x')\n    return 1\n"
    reader = "import os\ndef f():\n    return os.path.exists('/tmp/left')\n"
    assert sandbox.call(writer, "f", {}).ok
    assert pool.wait_ready(60)
    result = sandbox.call(reader, "f", {})
    assert result.ok and result.result is False
    assert pool.wait_ready(60)
    assert not first_ids & {c.id for c in pool.waiting()}  # both used ones were replaced
    report = sandbox.verify(IMPL, TESTS)
    assert report.status == "failed" and report.backend == "docker-warm"
    sandbox.close()
    assert sandbox_containers() == []


def test_idle_pool_expires():
    from conftest import _sandbox

    from sandbox.docker_backend import DockerBackend

    sandbox = _sandbox("docker")
    backend = DockerBackend(limits=sandbox.limits, pool_size=1, idle_timeout=1.0)
    assert backend.pool.wait_ready(60)
    import time

    deadline = time.monotonic() + 20
    while backend.pool.waiting() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert backend.pool.waiting() == []
    backend.close()
    assert sandbox_containers() == []


@pytest.mark.parametrize("backend", ["docker", "bwrap"])
def test_cli_verify_and_call_print_json(tmp_path, backend, request):
    request.getfixturevalue(f"{backend}_sandbox")  # skips or fails like the others
    code = tmp_path / "code.py"
    code.write_text(IMPL)
    tests = tmp_path / "tests.py"
    tests.write_text(TESTS)
    run = subprocess.run([sys.executable, "-m", "cli", "sandbox", "verify", "--code",
                          str(code), "--tests", str(tests), "--backend", backend, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert json.loads(run.stdout)["failed"] == 1
    run = subprocess.run([sys.executable, "-m", "cli", "sandbox", "call", "--code",
                          str(code), "--function", "add", "--args", '{"a": 2, "b": 3}',
                          "--backend", backend, "--json"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and json.loads(run.stdout)["result"] == 5


def test_missing_input_file_is_a_clear_error(docker_sandbox, tmp_path):
    missing = tmp_path / "nowhere.csv"
    # Not a verdict on the code: "infrastructure", which never reaches reflection.
    result = docker_sandbox.call(IMPL, "add", {"a": 1, "b": 2}, files=[missing])
    assert result.status == "infrastructure" and "nowhere.csv" in result.error
    report = docker_sandbox.verify(IMPL, TESTS, files=[missing])
    assert report.status == "infrastructure" and "nowhere.csv" in report.detail
    (tmp_path / "conftest.py").write_text("x = 1\n")
    report = docker_sandbox.verify(IMPL, TESTS, files=[tmp_path / "conftest.py"])
    assert report.status == "infrastructure" and "not allowed" in report.detail
