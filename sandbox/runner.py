"""The runner that lives inside the sandbox and runs exactly one job.

Standard library and pytest only: it runs on the sandbox's own Python. It imports pytest up
front (so a warm container answers fast), then reads one job from stdin: a decimal byte count
on its own line followed by that many bytes of JSON. It forks a child that runs the untrusted
code with its stdout and stderr on pipes, collects the child's report from a private pipe,
kills every other process it can signal, and writes one framed line as the last thing on its
own stdout. The host treats that frame as untrusted input and checks it.
"""

import base64
import ctypes
import errno
import hashlib
import json
import os
import select
import signal
import stat
import sys
import time

import pytest  # noqa: F401  # imported ahead so a warm runner skips the import

FRAME_MARKER = "\x1eSEA-FRAME\x1e"
READY_LINE = "SEA-READY\n"
REPORT_LIMIT = 512 * 1024


def _make_undumpable():
    # Without this, code running as the same uid could read our memory or file descriptors
    # through /proc and write a forged frame to the container's stdout.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except Exception:
        pass


def _read_job():
    header = sys.stdin.buffer.readline(32)
    size = int(header.strip() or b"0")
    data = b""
    while len(data) < size:
        chunk = sys.stdin.buffer.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return json.loads(data.decode("utf-8"))


def _write_files(job, workdir):
    os.makedirs(workdir, exist_ok=True)
    for name, content in job.get("sources", {}).items():
        with open(os.path.join(workdir, name), "w", encoding="utf-8") as fh:
            fh.write(content)
    for name, hex_content in job.get("inputs", {}).items():
        path = os.path.join(workdir, name)
        with open(path, "wb") as fh:
            fh.write(bytes.fromhex(hex_content))
        os.chmod(path, 0o444)


class _Collector:
    """A pytest plugin that records each test's outcome."""

    def __init__(self):
        self.tests = []
        self.collection_errors = []

    def pytest_collectreport(self, report):
        if report.failed:
            self.collection_errors.append(str(report.longrepr)[-8000:])

    def pytest_runtest_logreport(self, report):
        name = report.nodeid.split("::", 1)[-1]
        if report.when == "call" or report.outcome != "passed":
            if report.when != "call" and report.outcome == "passed":
                return
            outcome = report.outcome
            if hasattr(report, "wasxfail"):
                outcome = "xfailed" if report.skipped else "xpassed"
            elif report.when != "call" and report.failed:
                outcome = "error"
            message = "" if report.passed else str(report.longrepr)[-8000:]
            self.tests.append(
                {"name": name, "outcome": outcome, "message": message,
                 "duration": round(report.duration, 4)}
            )


def _child_verify(workdir, report_fd):
    collector = _Collector()
    args = ["-q", "-p", "no:cacheprovider", "--rootdir", workdir, "-o", "addopts=",
            os.path.join(workdir, "test_tool.py")]
    exitstatus = int(pytest.main(args, plugins=[collector]))
    _send(report_fd, {"exitstatus": exitstatus, "tests": collector.tests,
                      "collection_errors": collector.collection_errors})
    return exitstatus


def _child_call(job, report_fd):
    sys.path.insert(0, os.getcwd())
    try:
        import importlib

        module = importlib.import_module("tool")
        function = getattr(module, job["function"], None)
        if not callable(function):
            raise AttributeError(f"the implementation defines no function {job['function']!r}")
        result = function(**job.get("args", {}))
    except BaseException as exc:  # report every failure of the untrusted code
        _send(report_fd, {"ok": False, "error_type": type(exc).__name__,
                          "error": str(exc)[:4000]})
        return 1
    try:
        encoded = json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        _send(report_fd, {"ok": False, "error_type": "NotJSONSerializable",
                          "error": f"the result of type {type(result).__name__} is not "
                                   f"JSON-serialisable: {exc}"[:4000]})
        return 1
    _send(report_fd, {"ok": True, "result_json": encoded})
    return 0


def _send(fd, payload):
    if os.getpid() != _CHILD_PID[0]:
        return  # a process the untrusted code forked must not add to the report
    data = json.dumps(payload).encode("utf-8")
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


_CHILD_PID = [0]


def _run_child(job, workdir, report_w, out_w, err_w):
    _CHILD_PID[0] = os.getpid()
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)
    os.closerange(3, report_w)
    os.closerange(report_w + 1, 1024)
    os.chdir(workdir)
    code = 70
    try:
        if job["mode"] == "verify":
            code = _child_verify(workdir, report_w)
        else:
            code = _child_call(job, report_w)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _collect_outputs(job, workdir):
    """Read a call's declared output files (regular, no links, within the byte limit)."""
    room, files = int(job.get("outputs_limit", 0)), {}
    for name in job.get("outputs") or []:
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            continue
        try:
            fd = os.open(os.path.join(workdir, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as exc:
            files[name] = {"error": "the tool did not write it" if exc.errno == errno.ENOENT
                           else f"it could not be read ({exc.strerror})"}
            continue
        with os.fdopen(fd, "rb") as fh:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
            data = fh.read(room + 1) if regular else b""
        if not regular or len(data) > room:
            files[name] = {"error": "it is larger than the output file limit" if regular
                           else "it is not a regular file"}
            continue
        room -= len(data)
        files[name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                       "b64": base64.b64encode(data).decode("ascii")}
    return files


def _warm_up():
    """Run a trivial suite once so a pooled runner's job finds pytest's plugins loaded."""
    import contextlib
    import io
    import shutil

    folder = "/tmp/.warm"
    try:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "test_warm.py"), "w") as fh:
            fh.write("def test_warm():\n    assert True\n")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            pytest.main(["-q", "-p", "no:cacheprovider", "--rootdir", folder, folder])
    except Exception:
        pass
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        sys.modules.pop("test_warm", None)


def main():
    """Run the one job this runner was started for."""
    _make_undumpable()
    # A job already waiting means a cold start: warming up would only delay it.
    if not select.select([sys.stdin], [], [], 0)[0]:
        _warm_up()
    sys.stdout.write(READY_LINE)
    sys.stdout.flush()
    job = _read_job()
    started = time.monotonic()
    workdir = job.get("workdir", "/tmp/job")
    _write_files(job, workdir)
    cap = int(job.get("output_limit", 64 * 1024))
    timeout = float(job.get("timeout", 30))

    report_r, report_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _run_child(job, workdir, report_w, out_w, err_w)
    for fd in (report_w, out_w, err_w):
        os.close(fd)

    buffers = {report_r: bytearray(), out_r: bytearray(), err_r: bytearray()}
    limits = {report_r: REPORT_LIMIT, out_r: cap, err_r: cap}
    overflow = {report_r: False, out_r: False, err_r: False}
    open_fds = set(buffers)
    status = None
    timed_out = False
    while True:
        if status is None:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status = raw
        if status is not None and not open_fds:
            break
        if time.monotonic() - started > timeout:
            timed_out = True
            break
        readable, _, _ = select.select(list(open_fds), [], [], 0.02)
        for fd in readable:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.discard(fd)
                continue
            room = limits[fd] - len(buffers[fd])
            if room > 0:
                buffers[fd] += chunk[:room]
            if len(chunk) > room:
                overflow[fd] = True
        if status is not None and not readable:
            # The child is gone; a grandchild holding a pipe open must not keep us waiting.
            break

    # Single use: nothing the job started may outlive it (kill(-1) spares only us and init).
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass
    if status is None:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = None

    child_exit = None
    child_signal = None
    if status is not None:
        if os.WIFEXITED(status):
            child_exit = os.WEXITSTATUS(status)
        elif os.WIFSIGNALED(status):
            child_signal = os.WTERMSIG(status)
    frame = {
        "mode": job["mode"],
        "timed_out": timed_out,
        "child_exit": child_exit,
        "child_signal": child_signal,
        "report": bytes(buffers[report_r]).decode("utf-8", errors="replace"),
        "report_overflow": overflow[report_r],
        "stdout": bytes(buffers[out_r]).decode("utf-8", errors="replace"),
        "stderr": bytes(buffers[err_r]).decode("utf-8", errors="replace"),
        "output_truncated": overflow[out_r] or overflow[err_r],
        "duration": round(time.monotonic() - started, 4),
    }
    frame["files"] = _collect_outputs(job, workdir) if job["mode"] == "call" else {}
    sys.stdout.write("\n" + FRAME_MARKER + json.dumps(frame) + "\n")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
