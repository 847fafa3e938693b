"""Attacks from the hardening notes, run for real against each backend.

Each test asserts that the attack was contained within bounded time and that nothing is left
on the host: no runner process, no container, no cgroup. Network attacks aim only at a
listener the test opens on the host's loopback.
"""

from __future__ import annotations

import os
import resource
import socket
import threading
import time
import tracemalloc
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import ATTACK_TIMEOUT, sandbox_cgroups, sandbox_containers, sandbox_processes

from sandbox.core import UID_FLOOR

# The host must regain control within the limit, its grace and container teardown.
BOUND = ATTACK_TIMEOUT + 3.0 + 10.0


def attack(sandbox, code: str, args: dict | None = None):
    """Call ``f`` of ``code`` in the sandbox, check time and leftovers, return the result."""
    started = time.monotonic()
    result = sandbox.call(code, "f", args or {})
    elapsed = time.monotonic() - started
    assert elapsed < BOUND, f"the attack held the host for {elapsed:.1f} s"
    assert_nothing_left(sandbox)
    return result


def assert_nothing_left(sandbox) -> None:
    """No sandbox process, container or cgroup survives a run."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        leftovers = sandbox_processes() + [str(p) for p in sandbox_cgroups()]
        if sandbox.backend.name.startswith("docker"):
            leftovers += [c.short_id for c in sandbox_containers()]
        if not leftovers:
            return
        time.sleep(0.2)
    pytest.fail(f"left on the host after the run: {leftovers}")


def test_infinite_loop_times_out(any_sandbox):
    result = attack(any_sandbox, "def f():\n    while True:\n        pass\n")
    assert result.status == "timeout"


def test_sleep_forever_times_out(any_sandbox):
    result = attack(any_sandbox, "import time\ndef f():\n    time.sleep(10**6)\n")
    assert result.status == "timeout"


def test_child_ignoring_sigterm_and_double_fork_is_killed(any_sandbox):
    code = (
        "import os, signal, time\n"
        "def f():\n"
        "    if os.fork() == 0:\n"
        "        if os.fork() == 0:\n"
        "            signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "            time.sleep(10**6)\n"
        "        os._exit(0)\n"
        "    return 'parent done'\n"
    )
    result = attack(any_sandbox, code)
    assert result.ok and result.result == "parent done"


def test_memory_bomb_reports_out_of_memory(any_sandbox):
    result = attack(any_sandbox, "def f():\n    return len(bytearray(600 * 1024 * 1024))\n")
    assert result.status == "out_of_memory"
    assert "256 MB" in result.error


def test_fill_tmp_is_bounded(any_sandbox):
    code = (
        "def f():\n"
        "    written = 0\n"
        "    try:\n"
        "        with open('/tmp/fill', 'wb') as fh:\n"
        "            while written < 2 * 1024**3:\n"
        "                fh.write(b'x' * 2**20); written += 2**20\n"
        "    except OSError as exc:\n"
        "        return ['stopped', written // 2**20, type(exc).__name__]\n"
        "    return ['unbounded', written // 2**20]\n"
    )
    result = attack(any_sandbox, code)
    assert result.status in ("ok", "out_of_memory")
    if result.ok:
        assert result.result[0] == "stopped" and result.result[1] <= 64


def test_fill_dev_shm_is_bounded(any_sandbox):
    code = (
        "def f():\n"
        "    try:\n"
        "        with open('/dev/shm/fill', 'wb') as fh:\n"
        "            for _ in range(1024):\n"
        "                fh.write(b'x' * 2**20)\n"
        "    except OSError as exc:\n"
        "        return type(exc).__name__\n"
        "    return 'wrote 1 GB'\n"
    )
    result = attack(any_sandbox, code)
    assert result.status in ("ok", "out_of_memory") and result.result != "wrote 1 GB"


def test_fork_bomb_is_contained(any_sandbox):
    code = (
        "import os\n"
        "def f():\n"
        "    while True:\n"
        "        try:\n"
        "            os.fork()\n"
        "        except OSError:\n"
        "            pass\n"
    )
    result = attack(any_sandbox, code)
    assert not result.ok and result.status in ("timeout", "error", "out_of_memory")


def test_ten_thousand_threads_are_refused(any_sandbox):
    code = (
        "import threading, time\n"
        "def f():\n"
        "    started = 0\n"
        "    try:\n"
        "        for _ in range(10000):\n"
        "            threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        "            started += 1\n"
        "    except RuntimeError:\n"
        "        return started\n"
        "    return started\n"
    )
    result = attack(any_sandbox, code)
    assert not result.ok or result.result < 100  # the pids cap stops threads too


def test_hundred_thousand_open_files_are_refused(any_sandbox):
    code = (
        "def f():\n"
        "    handles = []\n"
        "    try:\n"
        "        for _ in range(100000):\n"
        "            handles.append(open('/dev/null'))\n"
        "    except OSError:\n"
        "        return len(handles)\n"
        "    return len(handles)\n"
    )
    result = attack(any_sandbox, code)
    assert result.ok and result.result < 1024


def test_one_huge_file_is_refused(any_sandbox):
    code = (
        "def f():\n"
        "    try:\n"
        "        with open('/tmp/huge', 'wb') as fh:\n"
        "            fh.seek(10 * 1024**3)\n"
        "            fh.write(b'x')\n"
        "    except OSError as exc:\n"
        "        return type(exc).__name__\n"
        "    return 'created'\n"
    )
    result = attack(any_sandbox, code)
    assert result.result != "created"


def test_hundred_thousand_tiny_files_are_bounded(any_sandbox):
    code = (
        "def f():\n"
        "    made = 0\n"
        "    try:\n"
        "        for i in range(100000):\n"
        "            open(f'/tmp/t{i}', 'w').close(); made += 1\n"
        "    except OSError:\n"
        "        return made\n"
        "    return made\n"
    )
    result = attack(any_sandbox, code)
    if any_sandbox.backend.name == "bwrap":
        # bubblewrap's tmpfs takes no inode cap; its memory cgroup bounds it and the tmpfs
        # dies with the run, which attack() checks.
        assert result.status in ("ok", "out_of_memory", "error")
    else:
        assert not result.ok or result.result < 100000


def test_gigabytes_on_stdout_are_capped_and_host_memory_stays_flat(any_sandbox):
    code = (
        "import sys\n"
        "def f():\n"
        "    chunk = 'y' * 65536\n"
        "    for _ in range(40000):\n"
        "        sys.stdout.write(chunk)\n"
        "    return 'done'\n"
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = attack(any_sandbox, code)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert len(result.stdout) <= any_sandbox.limits.output_bytes
    assert grown_mb < 100


def test_invalid_utf8_and_escape_sequences_are_made_safe(any_sandbox):
    code = (
        "import sys\n"
        "def f():\n"
        "    sys.stdout.buffer.write(b'\\xff\\xfe bad \\x1b[2J\\x1b]0;title\\x07 end')\n"
        "    sys.stdout.flush()\n"
        "    return 'ok'\n"
    )
    result = attack(any_sandbox, code)
    assert result.ok and "\ufffd" in result.stdout and "end" in result.stdout
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\\x1b[2J" in result.stdout  # shown, not interpreted


@pytest.mark.parametrize("target", ["/", "/etc", "/usr", "/home", "/opt/sea"])
def test_writes_outside_tmp_fail(any_sandbox, target):
    code = (
        "import os\n"
        "def f(target):\n"
        "    try:\n"
        "        open(os.path.join(target, 'owned'), 'w').write('x')\n"
        "    except OSError as exc:\n"
        "        return type(exc).__name__\n"
        "    return 'written'\n"
    )
    result = attack(any_sandbox, code, {"target": target})
    assert result.ok and result.result != "written"


def test_executing_a_file_from_tmp_fails(docker_sandbox):
    # Docker only: bubblewrap cannot mount its /tmp noexec (the notes on bwrap say so).
    code = (
        "import os, shutil, subprocess\n"
        "def f():\n"
        "    shutil.copy('/bin/true', '/tmp/t'); os.chmod('/tmp/t', 0o755)\n"
        "    try:\n"
        "        subprocess.run(['/tmp/t'], check=True)\n"
        "    except OSError as exc:\n"
        "        return type(exc).__name__\n"
        "    return 'executed'\n"
    )
    result = attack(docker_sandbox, code)
    assert result.ok and result.result == "PermissionError"


def test_host_secrets_are_invisible(any_sandbox, monkeypatch):
    secret = f"sea-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("SEA_TEST_SECRET", secret)
    code = (
        "import os, glob\n"
        "def f():\n"
        "    seen = [repr(dict(os.environ))]\n"
        "    paths = ['/proc/1/environ', '/etc/shadow', '/root/.ssh/id_rsa']\n"
        "    for path in paths + glob.glob('/home/*/.ssh/*'):\n"
        "        try:\n"
        "            seen.append(open(path, 'rb').read().decode('latin-1'))\n"
        "        except OSError:\n"
        "            pass\n"
        "    return '\\n'.join(seen)\n"
    )
    result = attack(any_sandbox, code)
    assert result.ok and secret not in result.result
    assert "root:" not in result.result  # /etc/shadow is unreadable


def test_proc_sys_and_cgroup_writes_fail(any_sandbox):
    code = (
        "def f():\n"
        "    outcomes = []\n"
        "    for path in ['/proc/sys/kernel/hostname', '/proc/sys/vm/drop_caches',\n"
        "                 '/sys/fs/cgroup/memory/memory.limit_in_bytes',\n"
        "                 '/sys/fs/cgroup/pids/pids.max', '/proc/sysrq-trigger']:\n"
        "        try:\n"
        "            with open(path, 'w') as fh:\n"
        "                fh.write('1')\n"
        "            outcomes.append('written ' + path)\n"
        "        except OSError:\n"
        "            outcomes.append('refused')\n"
        "    return outcomes\n"
    )
    result = attack(any_sandbox, code)
    assert result.ok and all(o == "refused" for o in result.result), result.result


def host_uid(uid: int, uid_map: str) -> int:
    """Translate a uid seen inside the sandbox into the host's, through its uid_map."""
    for line in uid_map.splitlines():
        inside, outside, count = (int(part) for part in line.split())
        if inside <= uid < inside + count:
            return outside + uid - inside
    raise AssertionError(f"uid {uid} is not mapped: {uid_map!r}")


IDENTITY = "import os\ndef ids():\n    return [os.getuid(), open('/proc/self/uid_map').read()]\n"


def test_no_docker_socket_no_capabilities_non_root(any_sandbox):
    code = (
        "import os\n"
        "def f():\n"
        "    status = open('/proc/self/status').read().splitlines()\n"
        "    caps = {l.split(':')[0]: l.split()[1] for l in status if l.startswith('Cap')}\n"
        "    return {'uid': os.getuid(), 'map': open('/proc/self/uid_map').read(),\n"
        "            'socket': os.path.exists('/var/run/docker.sock')\n"
        "            or os.path.exists('/run/docker.sock'), 'caps': caps,\n"
        "            'NoNewPrivs': [l for l in status if l.startswith('NoNewPrivs')]}\n"
    )
    result = attack(any_sandbox, code)
    assert result.ok, result.error
    # A fresh high user of its own: not root, not the host's nobody.
    assert host_uid(result.result["uid"], result.result["map"]) >= UID_FLOOR
    assert result.result["socket"] is False
    caps = result.result["caps"]
    assert all(int(caps[k], 16) == 0 for k in ("CapEff", "CapPrm", "CapInh", "CapAmb")), caps


def test_tests_and_implementation_run_as_different_fresh_users(any_sandbox):
    tests = ("import os\nfrom tool import ids\n\n"
             "def test_other_user():\n"
             "    uid, uid_map = ids()\n"
             "    assert uid != os.getuid()\n"
             "    print('USERS', uid, repr(uid_map), os.getuid())\n")
    report = any_sandbox.verify(IDENTITY, tests)
    assert report.ok, report
    first = attack(any_sandbox, IDENTITY.replace("ids", "f"))
    second = attack(any_sandbox, IDENTITY.replace("ids", "f"))
    hosts = {host_uid(*r.result) for r in (first, second)}
    assert len(hosts) == 2 and min(hosts) >= UID_FLOOR  # a new user for every run


def test_unshare_mount_and_ptrace_fail(any_sandbox):
    code = (
        "import ctypes, os\n"
        "def f():\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    return {\n"
        "        'unshare_user': libc.unshare(0x10000000),\n"
        "        'unshare_mount': libc.unshare(0x00020000),\n"
        "        'mount': libc.mount(b'none', b'/tmp', b'tmpfs', 0, None),\n"
        "        'ptrace_init': libc.ptrace(16, 1, None, None),\n"
        "    }\n"
    )
    result = attack(any_sandbox, code)
    assert result.ok, result.error
    assert all(value == -1 for value in result.result.values()), result.result


def test_raw_sockets_fail(any_sandbox):
    code = (
        "import socket\n"
        "def f():\n"
        "    try:\n"
        "        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n"
        "    except OSError as exc:\n"
        "        return type(exc).__name__\n"
        "    return 'raw socket'\n"
    )
    result = attack(any_sandbox, code)
    assert result.ok and result.result == "PermissionError"


@pytest.fixture
def host_listener():
    """A TCP listener on the host's loopback that records every connection."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    hits: list = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                hits.append(conn)
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], hits
    stop.set()
    thread.join()
    server.close()


def test_no_network_but_loopback(any_sandbox, host_listener):
    port, hits = host_listener
    code = (
        "import os, socket\n"
        "def f(port):\n"
        "    interfaces = sorted(os.listdir('/sys/class/net')) if os.path.isdir(\n"
        "        '/sys/class/net') else [l.split(':')[0].strip()\n"
        "        for l in open('/proc/net/dev').read().splitlines()[2:]]\n"
        "    try:\n"
        "        socket.create_connection(('127.0.0.1', port), timeout=1).close()\n"
        "        reached = True\n"
        "    except OSError:\n"
        "        reached = False\n"
        "    return {'interfaces': interfaces, 'reached': reached}\n"
    )
    result = attack(any_sandbox, code, {"port": port})
    assert result.ok, result.error
    assert result.result["interfaces"] == ["lo"]
    assert result.result["reached"] is False and not hits


def test_plugin_autoload_is_off_and_environment_is_clean(any_sandbox):
    code = "import os\ndef f():\n    return dict(os.environ)\n"
    result = attack(any_sandbox, code)
    assert result.ok and result.result.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") == "1"
    assert "SEA_HOME" not in result.result and "DOCKER_HOST" not in result.result


def test_no_state_crosses_runs(any_sandbox):
    marker = f"/tmp/marker-{uuid.uuid4().hex}"
    writer = f"def f():\n    open({marker!r}, 'w').write('x')\n    return 1\n"
    reader = f"import os\ndef f():\n    return os.path.exists({marker!r})\n"
    assert attack(any_sandbox, writer).ok
    result = attack(any_sandbox, reader)
    assert result.ok and result.result is False
    assert not Path(marker).exists()  # nor did it land on the host


def test_os_exit_in_a_test_is_not_passed(any_sandbox):
    tests = ("import os\nfrom tool import f\n\ndef test_a():\n    assert f() == 1\n\n"
             "def test_b():\n    os._exit(0)\n\ndef test_c():\n    assert False\n")
    report = any_sandbox.verify("def f():\n    return 1\n", tests)
    assert report.status == "error" and not report.ok
    assert_nothing_left(any_sandbox)


def test_forged_report_is_not_passed(any_sandbox):
    # The implementation writes a fake "all passed" report where it can, then dies early.
    impl = (
        "import json, os, sys\n"
        "MARK = '\\x1eSEA-FRAME\\x1e'\n"
        "fake = {'exitstatus': 0, 'tests': [{'name': 'test_x', 'outcome': 'passed'}],\n"
        "        'collection_errors': []}\n"
        "frame = {'mode': 'verify', 'timed_out': False, 'child_exit': 0, 'child_signal': None,\n"
        "         'report': json.dumps(fake), 'report_overflow': False, 'stdout': '',\n"
        "         'stderr': '', 'output_truncated': False, 'duration': 0.1}\n"
        "for fd in range(3, 64):\n"
        "    try:\n"
        "        os.write(fd, json.dumps(fake).encode())\n"
        "    except OSError:\n"
        "        pass\n"
        "for path in ('/proc/1/fd/1', '/proc/self/fd/1'):\n"
        "    try:\n"
        "        open(path, 'w').write('\\n' + MARK + json.dumps(frame) + '\\n')\n"
        "    except OSError:\n"
        "        pass\n"
        "os._exit(0)\n"
        "def f():\n    return 0\n"
    )
    tests = "from tool import f\n\ndef test_real():\n    assert f() == 1\n"
    report = any_sandbox.verify(impl, tests)
    assert report.status != "passed", report
    assert_nothing_left(any_sandbox)


def test_skipped_only_suite_is_not_passed(any_sandbox):
    tests = ("import pytest\nfrom tool import f\n\n@pytest.mark.skip(reason='no')\n"
             "def test_a():\n    assert f() == 1\n")
    report = any_sandbox.verify("def f():\n    return 1\n", tests)
    assert report.status == "error" and "skipped" in report.detail


def test_empty_suite_is_not_passed(any_sandbox):
    report = any_sandbox.verify("def f():\n    return 1\n", "from tool import f\n")
    assert report.status == "error" and "no test ran" in report.detail


def test_ten_bombs_at_once_leave_the_host_responsive(any_sandbox):
    bombs = ["def f():\n    while True:\n        pass\n",
             "import os\ndef f():\n    while True:\n        try:\n            os.fork()\n"
             "        except OSError:\n            pass\n",
             "def f():\n    return len(bytearray(600 * 1024 * 1024))\n"]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=10) as pool:
        futures = [pool.submit(any_sandbox.call, bombs[i % 3], "f", {}) for i in range(10)]
        probe_start = time.monotonic()
        host_probe = sum(i * i for i in range(200000))  # the host still computes
        probe_time = time.monotonic() - probe_start
        normal = any_sandbox.call("def f():\n    return 42\n", "f", {})
        results = [f.result() for f in futures]
    assert host_probe > 0 and probe_time < 5
    assert normal.ok and normal.result == 42
    assert all(not r.ok for r in results)
    assert time.monotonic() - started < 120
    assert_nothing_left(any_sandbox)


def test_failures_while_creating_containers_leak_nothing(docker_sandbox):
    from sandbox import Limits, make_sandbox

    # Docker refuses a 1 MB memory limit at creation: the failure path must clean up. With
    # the daemon up that is an infrastructure fault (retried once), never the code's.
    broken = make_sandbox("docker", limits=replace(Limits(), memory_mb=1))
    for _ in range(20):
        result = broken.call("def f():\n    return 1\n", "f", {})
        assert result.status == "infrastructure" and "could not start" in result.error
    broken.close()
    assert_nothing_left(docker_sandbox)


def test_daemon_down_is_unavailable_not_timeout(monkeypatch):
    from sandbox import make_sandbox

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    sandbox = make_sandbox("docker")
    started = time.monotonic()
    report = sandbox.verify("def f():\n    return 1\n", "def test_a():\n    assert True\n")
    call = sandbox.call("def f():\n    return 1\n", "f", {})
    assert time.monotonic() - started < 15
    assert report.status == "unavailable" and "not reachable" in report.detail
    assert call.status == "unavailable" and call.error_type == "SandboxUnavailable"
    sandbox.close()


def test_missing_image_is_unavailable(docker_sandbox):
    from sandbox.core import Sandbox
    from sandbox.docker_backend import DockerBackend

    sandbox = Sandbox(DockerBackend(image="sea-sandbox:does-not-exist"))
    result = sandbox.call("def f():\n    return 1\n", "f", {})
    assert result.status == "unavailable" and "sea sandbox build" in result.error
    sandbox.close()


def test_bwrap_refuses_without_its_root_filesystem(tmp_path):
    from sandbox.bwrap_backend import BwrapBackend
    from sandbox.core import Sandbox

    sandbox = Sandbox(BwrapBackend(rootfs=tmp_path / "missing"))
    result = sandbox.call("def f():\n    return 1\n", "f", {})
    assert result.status == "unavailable" and "root filesystem" in result.error


def test_input_files_are_copied_read_only(any_sandbox, tmp_path):
    data = tmp_path / "sales.csv"
    data.write_text("a,b\n1,2\n")
    code = (
        "def f(path):\n"
        "    text = open(path).read()\n"
        "    try:\n"
        "        open(path, 'a').write('tampered')\n"
        "        writable = True\n"
        "    except OSError:\n"
        "        writable = False\n"
        "    return {'text': text, 'writable': writable}\n"
    )
    result = any_sandbox.call(code, "f", {"path": "sales.csv"}, files=[data])
    assert result.ok and result.result["text"] == "a,b\n1,2\n"
    assert result.result["writable"] is False
    assert data.read_text() == "a,b\n1,2\n"



def test_bwrap_seccomp_filter_denies_tracing_bpf_and_io_uring(bwrap_sandbox):
    code = (
        "import ctypes, os, threading\n"
        "def f():\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    out = {}\n"
        "    out['ptrace_traceme'] = libc.ptrace(0, 0, None, None)\n"
        "    out['bpf'] = libc.syscall(321, 0, None, 0)\n"
        "    out['io_uring_setup'] = libc.syscall(425, 1, None)\n"
        "    out['errno'] = ctypes.get_errno()\n"
        "    seen = []\n"
        "    worker = threading.Thread(target=seen.append, args=(1,))\n"
        "    worker.start(); worker.join()\n"
        "    out['threads_work'] = seen == [1]\n"
        "    return out\n"
    )
    result = attack(bwrap_sandbox, code)
    assert result.ok, result.error
    assert result.result["ptrace_traceme"] == -1 and result.result["bpf"] == -1
    assert result.result["io_uring_setup"] == -1 and result.result["errno"] == 1  # EPERM
    assert result.result["threads_work"] is True  # clone3 falls back to clone


# --- the implementation cannot forge its own verification -------------------------------------

WRONG_ADD = "def add(a, b):\n    return a - b\n"
ADD_SUITE = "from tool import add\n\n\ndef test_add():\n    assert add(40, 2) == 42\n"
PASSING_FRAME = (
    "import json\n"
    "MARK = '\\x1eSEA-FRAME\\x1e'\n"
    "FAKE = {'exitstatus': 0, 'tests': [{'name': 'test_add', 'outcome': 'passed'}],\n"
    "        'collection_errors': []}\n"
    "FRAME = '\\n' + MARK + json.dumps({'mode': 'verify', 'timed_out': False, 'child_exit': 0,\n"
    "    'child_signal': None, 'report': json.dumps(FAKE), 'report_overflow': False,\n"
    "    'stdout': '', 'stderr': '', 'output_truncated': False, 'duration': 0.1}) + '\\n'\n"
)
# Each is the wrong add plus one way to make `assert add(40, 2) == 42` come out passed.
TRICKS = {
    "forged_report_then_exit": PASSING_FRAME + (
        "import glob, os\n"
        "for fd in range(3, 256):\n"
        "    try:\n"
        "        os.write(fd, json.dumps(FAKE).encode())\n"
        "    except OSError:\n"
        "        pass\n"
        "for path in ['/proc/1/fd/1', '/proc/self/fd/1'] + glob.glob('/proc/[0-9]*/fd/*'):\n"
        "    try:\n"
        "        with open(path, 'w') as fh:\n"
        "            fh.write(json.dumps(FAKE) + FRAME)\n"
        "    except OSError:\n"
        "        pass\n"
        "os._exit(0)\n") + WRONG_ADD,
    "frames_on_stdout_and_stderr": PASSING_FRAME + (
        "import os\n"
        "os.write(1, FRAME.encode())\n"
        "os.write(2, FRAME.encode())\n") + WRONG_ADD,
    "test_runner_switched_off": (
        "import _pytest.python\n"
        "_pytest.python.Function.runtest = lambda self: None\n"
        "_pytest.python.pytest_pyfunc_call = lambda pyfuncitem: True\n") + WRONG_ADD,
    "pytest_patched_through_sys_modules": (
        "import sys\n"
        "for name, module in list(sys.modules.items()):\n"
        "    if name.startswith(('_py' + 'test', 'py' + 'test')):\n"
        "        for attr in ('runtest', 'pytest_pyfunc_call', 'pytest_runtest_call'):\n"
        "            if hasattr(module, attr):\n"
        "                setattr(module, attr, lambda *a, **k: True)\n"
        "        if hasattr(module, 'Function'):\n"
        "            module.Function.runtest = lambda self: None\n") + WRONG_ADD,
    "always_equal_object": (
        "class Anything:\n"
        "    def __eq__(self, other):\n"
        "        return True\n"
        "    __hash__ = None\n"
        "def add(a, b):\n"
        "    return Anything()\n"),
    "int_that_equals_everything": (
        "class Sly(int):\n"
        "    def __eq__(self, other):\n"
        "        return True\n"
        "    __hash__ = int.__hash__\n"
        "def add(a, b):\n"
        "    return Sly(a - b)\n"),
    "builtins_replaced": (
        "import builtins\n"
        "from _pytest.outcomes import Skipped\n"
        "builtins.AssertionError = Skipped\n"
        "builtins.isinstance = lambda *args: True\n") + WRONG_ADD,
    "exit_at_import": "import os\nos._exit(0)\n" + WRONG_ADD,
    "exit_in_the_call": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "kills_and_interrupts_its_parents": (
        "import os, signal\n"
        "def add(a, b):\n"
        "    for pid in (os.getppid(), 1, os.getpgid(0)):\n"
        "        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):\n"
        "            try:\n"
        "                os.kill(pid, sig)\n"
        "            except OSError:\n"
        "                pass\n"
        "    os.kill(-1, signal.SIGKILL)\n"),
    "signals_every_process": (
        "import glob, os, signal\n"
        "def add(a, b):\n"
        "    for path in glob.glob('/proc/[0-9]*'):\n"
        "        pid = int(path.rsplit('/', 1)[1])\n"
        "        for sig in (signal.SIGSTOP, signal.SIGINT, signal.SIGKILL):\n"
        "            if pid != os.getpid():\n"
        "                try:\n"
        "                    os.kill(pid, sig)\n"
        "                except OSError:\n"
        "                    pass\n"
        "    return a - b\n"),
    "plants_conftest_and_pytest_ini": (
        "import os\n"
        "HOOK = ('import pytest\\n'\n"
        "        '@pytest.hookimpl(hookwrapper=True)\\n'\n"
        "        'def pytest_runtest_makereport(item, call):\\n'\n"
        "        '    outcome = yield\\n'\n"
        "        '    outcome.get_result().outcome = \"passed\"\\n')\n"
        "for folder, dirs, files in os.walk('/tmp'):\n"
        "    for name, text in (('conftest.py', HOOK), ('pytest.ini', '[pytest]\\n'\n"
        "                       'python_functions = nothing\\n')):\n"
        "        try:\n"
        "            with open(os.path.join(folder, name), 'w') as fh:\n"
        "                fh.write(text)\n"
        "        except OSError:\n"
        "            pass\n") + WRONG_ADD,
    "reads_the_tests_for_the_answer": (
        "import glob\n"
        "def add(a, b):\n"
        "    for path in glob.glob('/tmp/**/test_*.py', recursive=True):\n"
        "        try:\n"
        "            if '42' in open(path).read():\n"
        "                return 42\n"
        "        except OSError:\n"
        "            pass\n"
        "    return a - b\n"),
}


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_wrong_add_never_passes(any_sandbox, trick):
    report = any_sandbox.verify(TRICKS[trick], ADD_SUITE)
    assert report.status in ("failed", "error", "timeout") and not report.ok, report.summary()
    assert report.passed == 0
    assert_nothing_left(any_sandbox)


def test_right_add_passes_and_its_calls_are_counted(any_sandbox):
    tests = ADD_SUITE + ("\n\ndef test_three_calls():\n"
                         "    assert [add(i, 1) for i in range(3)] == [1, 2, 3]\n")
    report = any_sandbox.verify("def add(a, b):\n    return a + b\n", tests)
    assert report.ok, report
    assert {t.name: t.tool_calls for t in report.tests} == {"test_add": 1, "test_three_calls": 3}
    assert report.tool_calls == 4
    wrong = any_sandbox.verify(WRONG_ADD, tests)
    assert wrong.status == "failed" and wrong.failed == 2
    assert "assert 38 == 42" in wrong.tests[0].message


# --- input files are hostile on the host ------------------------------------------------------

def _refusal(sandbox, path: Path) -> tuple[str, str, float, int]:
    """Verify and call with ``path`` as input; return both errors, the time and peak memory."""
    outcome: dict = {}

    def run() -> None:
        tracemalloc.start()
        started = time.monotonic()
        outcome["report"] = sandbox.verify("def f():\n    return 1\n",
                                           "from tool import f\n\ndef test_f():\n"
                                           "    assert f() == 1\n", files=[path])
        outcome["call"] = sandbox.call("def f():\n    return 1\n", "f", {}, files=[path])
        outcome["elapsed"] = time.monotonic() - started
        outcome["peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(30)  # a guard against hanging, not a speed target
    assert not worker.is_alive(), f"refusing {path} hung"
    report, call = outcome["report"], outcome["call"]
    # Refused before anything ran: not a verdict on the code, so never reflected on.
    assert report.status == "input" and call.status == "input"
    print(f"{path.name}: refused in {outcome['elapsed']:.3f} s, peak {outcome['peak']} bytes")
    return report.detail, call.error, outcome["elapsed"], outcome["peak"]


@pytest.mark.parametrize("kind", ["fifo", "dev_zero", "sparse_3gb", "link_to_root_only"])
def test_hostile_input_files_are_refused_quickly_with_bounded_memory(any_sandbox, tmp_path,
                                                                      kind):
    if kind == "fifo":
        path = tmp_path / "data.csv"
        os.mkfifo(path)
        expected = "is a FIFO, not a regular file"
    elif kind == "dev_zero":
        path = Path("/dev/zero")
        expected = "is a character device, not a regular file"
    elif kind == "sparse_3gb":
        path = tmp_path / "big.csv"
        with open(path, "wb") as fh:
            fh.truncate(3 * 1024**3)
        expected = f"is {3 * 1024**3} bytes"
    else:
        secret = tmp_path / "secret.txt"
        secret.write_text("root only\n")
        secret.chmod(0o600)
        path = tmp_path / "data.csv"
        path.symlink_to(secret)
        expected = "is a symbolic link"
    detail, error, elapsed, peak = _refusal(any_sandbox, path)
    assert expected in detail and expected in error, (detail, error)
    assert peak < 4 * 1024**2  # nothing of the file was read into memory


def test_inputs_named_like_modules_or_config_change_nothing(any_sandbox, tmp_path):
    files = {"statistics.py": "def mean(values):\n    return 'shadowed'\n",
             "__init__.py": "raise ImportError('the data folder was imported as a package')\n",
             "pytest.ini": "[pytest]\npython_functions = nothing_matches\n"}
    paths = []
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        paths.append(tmp_path / name)
    impl = ("import statistics\n\n"
            "def f(name):\n    return [statistics.mean([1, 2, 3]), open(name).read()]\n")
    tests = ("from tool import f\n\n"
             "def test_the_standard_library_is_the_standard_library():\n"
             "    assert f('statistics.py')[0] == 2\n\n"
             "def test_the_tool_opens_inputs_by_plain_name():\n"
             "    assert 'python_functions' in f('pytest.ini')[1]\n\n"
             "def test_the_tests_see_them_too():\n"
             "    assert open('__init__.py').read().startswith('raise')\n")
    report = any_sandbox.verify(impl, tests, files=paths)
    assert report.ok and report.passed == 3, report
    call = any_sandbox.call(impl, "f", {"name": "statistics.py"}, files=paths)
    assert call.ok and call.result == [2, files["statistics.py"]], call


# --- depth and size caps on what crosses the boundary ------------------------------------------

NESTED = ("def f(depth):\n    value = []\n    for _ in range(depth):\n        value = [value]\n"
          "    return value\n")


def test_deep_arguments_and_results_end_in_clear_errors(any_sandbox):
    deep: list = []
    for _ in range(100):
        deep = [deep]
    refused = any_sandbox.call("def f(x):\n    return 1\n", "f", {"x": deep})
    assert refused.error_type == "InvalidArguments" and "deeper than 64" in refused.error
    for depth in (64, 100_000):  # 65 levels with the outer list, and far more
        result = attack(any_sandbox, NESTED, {"depth": depth})
        assert result.error_type == "ResultTooDeep" and "deeper than 64" in result.error, result
    legal = attack(any_sandbox, NESTED, {"depth": 63})  # 64 levels with the outer list
    assert legal.ok, legal
    # An implementation that writes its own JSON cannot smuggle depth past the judge either.
    sneaky = ("import json\n\ndef f():\n"
              "    json.dumps = lambda *a, **k: '[' * 100000 + ']' * 100000\n    return 1\n")
    result = attack(any_sandbox, sneaky)
    assert result.error_type == "ResultTooDeep" and "deeper than 64" in result.error, result


def test_deep_values_inside_a_suite_fail_clearly(any_sandbox):
    tests = ("import pytest\nfrom tool import f\n\n"
             "def test_deep_argument_is_refused():\n"
             "    x = []\n    for _ in range(100):\n        x = [x]\n"
             "    with pytest.raises(Exception, match='deeper than 64'):\n        f(x)\n\n"
             "def test_deep_result():\n    assert f(100)\n")
    report = any_sandbox.verify(NESTED, tests)
    outcomes = {t.name: t for t in report.tests}
    assert outcomes["test_deep_argument_is_refused"].outcome == "passed", report
    assert outcomes["test_deep_result"].outcome == "failed"
    assert "ResultTooDeep" in outcomes["test_deep_result"].message
    assert report.status == "failed"


# --- a smaller shared surface ------------------------------------------------------------------

def test_vsock_and_io_uring_are_refused(any_sandbox):
    code = (
        "import ctypes, socket\n"
        "def f():\n"
        "    try:\n"
        "        socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)\n"
        "        vsock = 'created'\n"
        "    except OSError as exc:\n"
        "        vsock = [type(exc).__name__, exc.errno]\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    ring = [libc.syscall(425, 1, None), ctypes.get_errno()]\n"
        "    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()  # others still work\n"
        "    return {'vsock': vsock, 'io_uring': ring}\n"
    )
    result = attack(any_sandbox, code)
    assert result.ok, result.error
    assert result.result == {"vsock": ["PermissionError", 1], "io_uring": [-1, 1]}


def test_ipc_objects_that_outlive_a_process_are_refused(any_sandbox):
    # System V segments, semaphores and queues, and POSIX message queues, outlive the process
    # that made them: in the mutation gate's run one worker could leave word for the next.
    code = (
        "import ctypes, os\n"
        "def f():\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    made = {}\n"
        "    for name, call in [('shm', lambda: libc.shmget(0x5ea, 4096, 0o1666)),\n"
        "                       ('sem', lambda: libc.semget(0x5ea, 1, 0o1666)),\n"
        "                       ('msg', lambda: libc.msgget(0x5ea, 0o1666)),\n"
        "                       ('mq', lambda: libc.mq_open(b'/sea', os.O_CREAT | os.O_RDWR,\n"
        "                                                   0o600, None))]:\n"
        "        made[name] = [call(), ctypes.get_errno()]\n"
        "    return made\n"
    )
    result = attack(any_sandbox, code)
    assert result.ok, result.error
    assert result.result == {name: [-1, 1] for name in ("shm", "sem", "msg", "mq")}


HOG = (
    "import ctypes, os, time\n"
    "def f(hold):\n"
    "    libc = ctypes.CDLL(None, use_errno=True)\n"
    "    instances = 0\n"
    "    while instances < 1000 and libc.inotify_init() >= 0:\n"
    "        instances += 1\n"
    "    children = 0\n"
    "    while children < 1000:\n"
    "        try:\n"
    "            pid = os.fork()\n"
    "        except OSError:\n"
    "            break\n"
    "        if pid == 0:\n"
    "            time.sleep(60)\n"
    "            os._exit(0)\n"
    "        children += 1\n"
    "    time.sleep(hold)\n"
    "    return [instances, children, os.getuid(), open('/proc/self/uid_map').read()]\n"
)


def test_concurrent_runs_do_not_share_per_user_limits(any_sandbox):
    # Each run takes every inotify instance its user may have (a per-user kernel limit, 128 by
    # default) and forks up to its pids cap, then holds them while the other does the same.
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(any_sandbox.call, HOG, "f", {"hold": 2.0}) for _ in range(2)]
        results = [run.result() for run in runs]
    assert all(r.ok for r in results), [r.describe_error() for r in results]
    limit = int(Path("/proc/sys/fs/inotify/max_user_instances").read_text())
    for instances, children, _, _ in (r.result for r in results):
        assert instances >= min(limit, 200) - 8 and children >= any_sandbox.limits.pids // 2
    assert len({host_uid(r.result[2], r.result[3]) for r in results}) == 2
    assert_nothing_left(any_sandbox)


def test_a_worker_that_keeps_printing_does_not_hold_the_verdict(any_sandbox):
    # The implementation's process outlives the suite; its endless output is capped and the
    # verdict comes when the tests end, not at the time limit.
    impl = ("import sys, threading\n\n"
            "def _spam():\n    while True:\n        sys.stdout.write('x' * 1000)\n\n"
            "threading.Thread(target=_spam, daemon=True).start()\n\n"
            "def add(a, b):\n    return a + b\n")
    report = any_sandbox.verify(impl, ADD_SUITE)
    assert report.ok and report.output_truncated, report.summary()
    assert len(report.stdout) <= any_sandbox.limits.output_bytes
    assert_nothing_left(any_sandbox)


def test_a_build_removes_older_runners_images_but_not_one_in_use(docker_sandbox):
    from sandbox.docker_backend import connect
    from sandbox.image import IMAGE_REPOSITORY, image_tag, remove_replaced

    client = connect()

    def tags() -> set[str]:
        return {t for image in client.images.list(name=IMAGE_REPOSITORY) for t in image.tags}

    # Two images of their own (committed layers), as older runners' builds would be.
    base = client.containers.create(image_tag(), command=["true"])
    old, in_use = (f"old-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for tag in (old, in_use):
        base.commit(IMAGE_REPOSITORY, tag)
    base.remove(force=True)
    holder = client.containers.create(f"{IMAGE_REPOSITORY}:{in_use}", command=["true"])
    try:
        removed = remove_replaced(client, keep=image_tag(), log=lambda _m: None)
        assert f"{IMAGE_REPOSITORY}:{old}" in removed
        assert tags() >= {f"{IMAGE_REPOSITORY}:{in_use}", image_tag()}
        assert f"{IMAGE_REPOSITORY}:{old}" not in tags()
    finally:
        holder.remove(force=True)
        remove_replaced(client, keep=image_tag(), log=lambda _m: None)
    assert tags() == {image_tag()}
