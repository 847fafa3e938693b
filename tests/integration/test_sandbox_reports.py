"""What verify and call report, through the real Docker sandbox, the warm pool and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import sandbox_containers

from sandbox.core import RawRun, call_result, verify_report

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


def test_a_head_start_serves_one_run_and_is_never_left_behind():
    from conftest import _sandbox

    sandbox = _sandbox("docker")
    sandbox.head_start()
    writer = "def f():\n    open('/tmp/left', 'w').write('x')\n    return 1\n"
    reader = "import os\ndef f():\n    return os.path.exists('/tmp/left')\n"
    first = sandbox.call(writer, "f", {})
    assert first.ok and first.backend == "docker-warm"
    second = sandbox.call(reader, "f", {})  # not replaced: a fresh cold container
    assert second.ok and second.result is False and second.backend == "docker"
    sandbox.close()
    assert sandbox_containers() == []


def test_an_unused_head_start_is_removed_when_the_sandbox_closes():
    import time

    from conftest import _sandbox

    sandbox = _sandbox("docker")
    sandbox.head_start()
    deadline = time.monotonic() + 60
    while not sandbox_containers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(sandbox_containers()) == 1, "the head start started no container"
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


def test_cli_says_what_is_wrong_with_its_input_before_any_container(docker_sandbox,
                                                                    tmp_path):
    code = tmp_path / "code.py"
    code.write_bytes(b"def add(a, b):\n    return a + b  # \xa1\n")  # Latin-1, not UTF-8
    tests = tmp_path / "tests.py"
    tests.write_text(TESTS)

    def sea(*args):
        return subprocess.run([sys.executable, "-m", "cli", "sandbox", *args],
                              capture_output=True, text=True, timeout=120)

    run = sea("call", "--code", str(code), "--function", "add", "--args", "{}")
    assert run.returncode == 1 and run.stderr.strip().splitlines()[-1] == (
        f"error: ValueError: the code file {code} is not UTF-8 text (byte a1 at offset 35)")
    run = sea("verify", "--code", str(tests), "--tests", str(code))
    assert f"the test file {code} is not UTF-8 text" in run.stderr
    deep = '{"a": ' + "[" * 40_000 + "]" * 40_000 + "}"  # past the JSON parser's recursion
    run = sea("call", "--code", str(tests), "--function", "add", "--args", deep)
    assert run.returncode == 2 and "--args is not a JSON object" in run.stdout
    run = sea("call", "--code", str(tests), "--function", "add", "--args", "{}",
              "--timeout", "0")
    assert run.returncode == 1 and "timeout must be above 0" in run.stderr
    assert sandbox_containers() == []
    # A suite that does not collect shows why, not only "could not be collected".
    code.write_text("def add(a, b:\n    return a + b\n")
    run = sea("verify", "--code", str(code), "--tests", str(tests))
    assert run.returncode == 1 and "SyntaxError" in run.stdout, run.stdout


def test_missing_input_file_is_a_clear_error(docker_sandbox, tmp_path):
    missing = tmp_path / "nowhere.csv"
    # Not a verdict on the code: "input", refused before anything ran, never reflected on.
    result = docker_sandbox.call(IMPL, "add", {"a": 1, "b": 2}, files=[missing])
    assert result.status == "input" and "nowhere.csv" in result.error
    report = docker_sandbox.verify(IMPL, TESTS, files=[missing])
    assert report.status == "input" and "nowhere.csv" in report.detail
    (tmp_path / "conftest.py").write_text("x = 1\n")
    report = docker_sandbox.verify(IMPL, TESTS, files=[tmp_path / "conftest.py"])
    assert report.status == "input" and "not allowed" in report.detail


def _raw(report: str, **frame_fields) -> RawRun:
    from sandbox.runner import FRAME_MARKER

    frame = {"mode": "verify", "timed_out": False, "child_exit": 0, "child_signal": None,
             "report": report, "report_overflow": False, "stdout": "", "stderr": "",
             "output_truncated": False, "duration": 0.1, **frame_fields}
    return RawRun(output="noise\n" + FRAME_MARKER + json.dumps(frame) + "\n", exit_code=0)


PASSING = json.dumps({"exitstatus": 0, "tests": [{"name": "test_a", "outcome": "passed"}],
                      "collection_errors": []})


def test_a_report_from_elsewhere_or_overflowed_is_an_error():
    from sandbox.core import Limits

    tests = "def test_a():\n    assert True\n"
    assert verify_report(_raw(PASSING), tests, Limits()).ok  # the control
    report = verify_report(_raw(PASSING, report_foreign=True), tests, Limits())
    assert report.status == "error" and "other than the judge" in report.detail
    report = verify_report(_raw(PASSING, report_overflow=True), tests, Limits())
    assert report.status == "error" and "overflowed" in report.detail
    call = call_result(_raw(json.dumps({"ok": True, "result_json": "1"}), mode="call",
                            report_foreign=True), Limits())
    assert call.status == "error" and "other than the judge" in call.error
    unavailable = verify_report(_raw("", error="the sandbox runner could not separate its "
                                               "users: no CAP_SETUID"), tests, Limits())
    assert unavailable.status == "unavailable" and "CAP_SETUID" in unavailable.detail


def test_call_counts_are_bounded_on_the_host():
    from sandbox.core import Limits

    tests = "def test_a():\n    assert True\n"
    counted = json.loads(PASSING)
    counted["tests"][0]["tool_calls"] = 3
    report = verify_report(_raw(json.dumps(counted)), tests, Limits())
    assert report.ok and report.tool_calls == 3 and report.tests[0].tool_calls == 3
    for forged in (-1, 10**12, "many"):
        counted["tests"][0]["tool_calls"] = forged
        assert verify_report(_raw(json.dumps(counted)), tests, Limits()).status == "error"


def test_deep_json_from_the_sandbox_is_refused_without_crashing():
    from sandbox.core import Limits, declared_tests

    deep = "[" * 100_000 + "]" * 100_000
    call = call_result(_raw(json.dumps({"ok": True, "result_json": deep}), mode="call"),
                       Limits())
    assert call.error_type == "ResultTooDeep" and "deeper than 64" in call.error
    just_over = "[" * 65 + "]" * 65
    call = call_result(_raw(json.dumps({"ok": True, "result_json": just_over}), mode="call"),
                       Limits())
    assert call.error_type == "ResultTooDeep"
    legal = call_result(_raw(json.dumps({"ok": True, "result_json": "[" * 64 + "]" * 64}),
                             mode="call"), Limits())
    assert legal.ok
    report = verify_report(_raw(deep), "def test_a():\n    assert True\n", Limits())
    assert report.status == "error"
    assert declared_tests("-" * 100_000 + "1") == set()  # MemoryError in the parser
    assert declared_tests("x = " + "(" * 5000 + ")" * 5000) == set()


def test_printable_escapes_every_control_and_format_character():
    from sandbox.reports import TestOutcome, printable

    hidden = ["\x1b", "\r", "\x00", "\x7f", "\x85", "\x9b", "\u200b", "\u200e", "\u202e",
              "\u2066", "\u2069", "\u2028", "\u2029", "\ufeff", "\u00ad", "\U000e0001"]
    for char in hidden:
        shown = printable(f"a{char}b")
        assert char not in shown and shown.startswith("a\\") and shown.endswith("b"), shown
    assert printable("\u202e") == "\\u202e" and printable("\x9b") == "\\x9b"
    assert printable("\U000e0001") == "\\U000e0001"
    kept = "line\n\ttabbed é 日本語 ✓ 🙂"
    assert printable(kept) == kept
    assert printable("x" * 100_000) == "x" * 100_000
    # Test names come from the sandbox too.
    outcome = TestOutcome(name="test_a[\x1b[2J\u202eevil]", outcome="passed")
    assert outcome.name == "test_a[\\x1b[2J\\u202eevil]"
    from sandbox.core import Limits

    named = json.loads(PASSING)
    named["tests"][0]["name"] = "test_a[\u2066\r]"
    report = verify_report(_raw(json.dumps(named)), "def test_a():\n    assert True\n",
                           Limits())
    assert report.ok and report.tests[0].name == "test_a[\\u2066\\x0d]"


CONTRACT_IMPL = '''
class BadInput(ValueError):
    pass


def f(x):
    if x == "neg":
        raise ValueError("negative numbers are not allowed")
    if x == "bad":
        raise BadInput("bad input here")
    if x == "key":
        return {}["missing"]
    if x == "file":
        return open("nowhere.csv").read()
    if x == "bytes":
        return b"\\xff".decode("utf-8")
    if x == "exit":
        raise SystemExit(3)
    return (x, {1: "one"})
'''
CONTRACT_TESTS = '''
import pytest
from tool import f, BadInput


def test_tuples_arrive_as_lists_and_keys_as_strings():
    assert f(2) == [2, {"1": "one"}]


def test_builtin_exceptions_keep_type_and_message():
    with pytest.raises(ValueError, match="negative"):
        f("neg")
    with pytest.raises(KeyError) as info:
        f("key")
    assert info.value.args == ("missing",)
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        f("file")
    with pytest.raises(UnicodeDecodeError):
        f("bytes")


def test_own_exceptions_keep_their_name_and_builtin_base():
    with pytest.raises(ValueError, match="bad input"):
        f("bad")
    with pytest.raises(BadInput) as info:
        f("bad")
    assert type(info.value).__name__ == "BadInput"


def test_leaving_the_process_is_a_failure():
    f("exit")


def test_a_failure_shows_where_the_implementation_raised():
    f("key")
'''


def test_the_tool_is_a_json_proxy_with_exceptions_by_type(any_sandbox):
    report = any_sandbox.verify(CONTRACT_IMPL, CONTRACT_TESTS)
    outcomes = {t.name: t for t in report.tests}
    failing = {"test_leaving_the_process_is_a_failure",
               "test_a_failure_shows_where_the_implementation_raised"}
    assert {n for n, t in outcomes.items() if t.outcome == "passed"} == set(outcomes) - failing
    assert report.status == "failed" and report.failed == 2
    assert "SystemExit: 3" in outcomes["test_leaving_the_process_is_a_failure"].message
    where = outcomes["test_a_failure_shows_where_the_implementation_raised"].message
    assert "raised in the implementation" in where and 'return {}["missing"]' in where
    call = any_sandbox.call(CONTRACT_IMPL, "f", {"x": "neg"})
    assert call.error_type == "ValueError" and "negative" in call.error
    call = any_sandbox.call(CONTRACT_IMPL, "f", {"x": "bad"})
    assert call.error_type == "BadInput"
