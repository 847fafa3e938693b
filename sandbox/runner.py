"""The runner that lives inside the sandbox and runs exactly one job.

Standard library only, plus pytest once it has settled its users: it runs on the sandbox's own
Python. It starts with just the capabilities to change users and to signal, becomes its own
user, stacks a seccomp filter of its own on the backend's (no vsock sockets, no io_uring, no
foreign system call ABI), imports pytest (so a warm container answers fast), then reads one job
from stdin: a decimal byte count on its own line followed by that many bytes of JSON.

The implementation never runs in the process that judges it. For each job the runner forks:

- the *worker*, under the implementation's user: it imports ``tool.py`` from a folder of its
  own, with its working directory in a data folder holding the input files (on no import path),
  and answers calls one at a time as JSON over two pipes. It never holds the report channel.
- the *judge*, under the tests' user: it runs the frozen suite (verify) or makes the one call
  (call). There ``tool`` is a proxy whose functions send JSON arguments to the worker and return
  JSON-decoded results, re-raising the worker's exceptions by type and message. Only the judge
  holds the report socket, and the runner checks the sender of every chunk it reads from it.

The runner collects the report and the output, kills every other process, and writes one framed
line as the last thing on its own stdout. The host treats that frame as untrusted input too.
A call's declared output files are read after that kill from the worker's data folder, by a
short-lived child under the implementation's user, and travel in the frame beside the report.

The mutation gate's mode (mutate) runs one suite against several variants of the
implementation (its mutants): for each, a fresh worker with that code and a fresh judge, with
a time budget of its own and pytest's ``-x``; the frame carries every judge's report. Before
each variant's worker starts, every process of the implementation's user is killed and its
files in /tmp, /dev/shm and /dev/mqueue removed, so nothing of an earlier worker reaches it;
a variant that cannot start so is reported unclean, and the host does not count it killed.

Why this module is long: it must be one standard-library file that the sandbox's own
Python runs as is (no package to import from), and every defence of the verdict — users,
seccomp, the worker proxy, the private report channel, the frame, the mutate mode's
supervision — has to live in it.
"""

import base64
import builtins
import ctypes
import errno
import hashlib
import importlib
import importlib.abc
import importlib.util
import json
import os
import select
import signal
import socket
import stat
import struct
import sys
import tempfile
import threading
import time
import traceback

FRAME_MARKER = "\x1eSEA-FRAME\x1e"
READY_LINE = "SEA-READY\n"
REPORT_LIMIT = 512 * 1024
MESSAGE_LIMIT = 4 * 1024 * 1024  # one request to, or one reply from, the implementation
MAX_DEPTH = 64  # how deeply JSON may nest wherever it crosses a boundary
CLEAR_TIMEOUT = 2.0  # mutate mode: how long clearing one worker's leftovers may take
UIDS_VARIABLE = "SEA_UIDS"  # "runner,tests,implementation": set by the backend
TOOL_FILE = "tool.py"
TEST_FILE = "test_tool.py"
CONFTEST_FILE = "conftest.py"

pytest = None  # imported by main() once the runner is its own user


class DepthError(ValueError):
    """JSON nested deeper than MAX_DEPTH."""


def too_deep(value, limit=MAX_DEPTH):
    """Tell whether lists and dicts in ``value`` nest deeper than ``limit`` (no recursion)."""
    containers = (list, tuple, dict)
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, containers):
            continue
        depth += 1
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth) for child in children if isinstance(child, containers))
    return False


def _no_constants(name):
    raise ValueError(f"{name} is not a JSON value")


def decode_json(text, limit=MAX_DEPTH):
    """Parse JSON that crossed a boundary: no NaN or Infinity, at most ``limit`` deep."""
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise DepthError(f"nested deeper than {limit} levels") from None
    except MemoryError:
        raise ValueError("too large to parse") from None
    if too_deep(value, limit):
        raise DepthError(f"nested deeper than {limit} levels")
    return value


def encode_json(value, limit=MAX_DEPTH):
    """Encode a value that is about to cross a boundary, refusing what would not come back."""
    if too_deep(value, limit):
        raise DepthError(f"nested deeper than {limit} levels")
    try:
        return json.dumps(value, allow_nan=False)
    except RecursionError:
        raise DepthError(f"nested deeper than {limit} levels") from None


# --- users, capabilities and the extra seccomp filter ------------------------------------

_LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_DUMPABLE, PR_SET_KEEPCAPS, PR_SET_SECCOMP = 4, 8, 22
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4
SECCOMP_MODE_FILTER = 2
CAPABILITY_VERSION_3 = 0x20080522
SUPERVISOR_CAPS = (1 << 5) | (1 << 6) | (1 << 7)  # CAP_KILL, CAP_SETGID, CAP_SETUID
AF_VSOCK = 40
IO_URING_CALLS = (425, 426, 427)  # setup, enter, register: the same numbers on both machines
# machine: (audit architecture, socket() number, x32 ABI bit, the calls that make or open a
# System V shared memory segment, semaphore set or message queue, or a POSIX message queue:
# objects that outlive the process that made them, so one worker could leave word for the next)
ARCHITECTURES = {"x86_64": (0xC000003E, 41, 0x40000000, (29, 64, 68, 240)),
                 "aarch64": (0xC00000B7, 198, 0, (194, 190, 186, 180))}


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class _Instruction(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_Instruction))]


def _prctl(option, arg=0):
    if _LIBC.prctl(option, arg, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def _set_capabilities(mask):
    data = (_CapData * 2)()
    data[0].effective = data[0].permitted = mask
    if _LIBC.capset(ctypes.byref(_CapHeader(CAPABILITY_VERSION_3, 0)), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def _become(uid, keep=0):
    """Take ``uid`` as every user and group id, keeping only the capabilities in ``keep``."""
    if keep:
        _prctl(PR_SET_KEEPCAPS, 1)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    _set_capabilities(keep)
    if keep:
        _prctl(PR_SET_KEEPCAPS, 0)
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (uid, uid, uid):
        raise OSError(errno.EPERM, f"could not become user {uid}")


def _filter_program():
    """Return the classic BPF program denying vsock, io_uring, lasting IPC and foreign ABIs."""
    machine = os.uname().machine
    if machine not in ARCHITECTURES:
        raise OSError(errno.ENOSYS, f"no seccomp filter is written for {machine}")
    arch, socket_call, x32_bit, ipc_calls = ARCHITECTURES[machine]
    load, equal, any_bit, ret = 0x20, 0x15, 0x45, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | errno.EPERM  # SECCOMP_RET_ALLOW, _ERRNO(EPERM)
    # (operation, constant, where to go when true, when false): None is the next step.
    steps = [(load, 4, None, None), (equal, arch, None, "deny"), (load, 0, None, None),
             (any_bit, x32_bit, "deny", None)]
    steps += [(equal, call, "deny", None) for call in IO_URING_CALLS + ipc_calls]
    steps += [(equal, socket_call, None, "allow"), (load, 16, None, None),  # the family
              (equal, AF_VSOCK, "deny", "allow")]
    targets = {"allow": len(steps), "deny": len(steps) + 1}
    code = []
    for index, (operation, constant, yes, no) in enumerate(steps):
        jump = [targets.get(label, index + 1) - index - 1 for label in (yes, no)]
        code.append((operation, *jump, constant))
    code += [(ret, 0, 0, allow), (ret, 0, 0, deny)]
    return code


def _install_filter():
    code = _filter_program()
    instructions = (_Instruction * len(code))(*(_Instruction(*step) for step in code))
    program = _Program(len(code), instructions)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    if _LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "the seccomp filter was refused")


def _supervise():
    """Become the runner's own user with only its three capabilities; return the users."""
    text = os.environ.pop(UIDS_VARIABLE, "")
    try:
        runner, tests, worker = (int(part) for part in text.split(","))
    except ValueError:
        raise OSError(errno.EINVAL, f"{UIDS_VARIABLE} must name three users") from None
    if len({runner, tests, worker}) != 3:
        raise OSError(errno.EINVAL, "the runner, the tests and the implementation need "
                                    "distinct users")
    _become(runner, keep=SUPERVISOR_CAPS)
    _install_filter()
    # Code running under another user cannot read our memory or descriptors through /proc
    # anyway; undumpable also keeps the kernel from relaxing that.
    _prctl(PR_SET_DUMPABLE, 0)
    return {"tests": tests, "worker": worker}


# --- the channel between the judge and the worker -------------------------------------------

class ChannelError(Exception):
    """The other end broke the protocol: closed mid-message or sent too much."""


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd, size):
    """Read ``size`` bytes; None at a clean end of file before the first byte."""
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, min(size - len(data), 1 << 20))
        if not chunk:
            if data:
                raise ChannelError("the channel closed in the middle of a message")
            return None
        data += chunk
    return bytes(data)


def send_message(fd, text):
    """Send one length-prefixed message."""
    data = text.encode("utf-8")
    if len(data) > MESSAGE_LIMIT:
        raise ChannelError(f"a message of {len(data)} bytes is over the limit of "
                           f"{MESSAGE_LIMIT}")
    _write_all(fd, struct.pack(">Q", len(data)) + data)


def receive_message(fd):
    """Receive one length-prefixed message; None when the other end has gone."""
    header = _read_exact(fd, 8)
    if header is None:
        return None
    (size,) = struct.unpack(">Q", header)
    if size > MESSAGE_LIMIT:
        raise ChannelError(f"a message of {size} bytes is over the limit of {MESSAGE_LIMIT}")
    body = _read_exact(fd, size) if size else b""
    if body is None:
        raise ChannelError("the channel closed in the middle of a message")
    return body.decode("utf-8", errors="replace")


# --- the worker: the implementation's process ------------------------------------------------

def _describe_error(exc, source):
    """Describe an exception of the implementation as JSON the judge can raise again."""
    try:
        kind = type(exc)
        try:
            message = str(exc)
        except BaseException:  # an exception whose __str__ fails is still an exception
            message = "(the exception could not be shown)"
        try:
            args = json.loads(encode_json(list(exc.args), 8))
            if len(json.dumps(args)) > 4000:
                args = None
        except BaseException:
            args = None
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == source]
        for frame in frames:
            frame.filename = TOOL_FILE  # the worker's private folder means nothing to a reader
        return {"type": str(kind.__name__)[:200],
                "builtin": kind.__module__ == "builtins",
                "bases": [c.__name__ for c in kind.__mro__ if c.__module__ == "builtins"][:20],
                "args": args, "message": str(message)[:4000],
                "trace": "".join(traceback.format_list(frames[-5:]))[-2000:]}
    except BaseException:  # an exception type built to break this still gets reported
        return _plain_error("Exception", "(the implementation raised an exception that could "
                                         "not be described)")


def _plain_error(kind, message):
    return {"type": kind, "builtin": False, "bases": [], "args": None, "message": message,
            "trace": ""}


def _exports(module):
    """Name what the tests may import from the implementation: functions and exceptions."""
    functions, exceptions = {}, {}
    for name, value in list(vars(module).items())[:1000]:
        if name.startswith("__"):
            continue
        if isinstance(value, type) and issubclass(value, BaseException):
            exceptions[name] = [c.__name__ for c in value.__mro__
                                if c.__module__ == "builtins"][:20]
        elif callable(value) and not isinstance(value, type):
            doc = getattr(value, "__doc__", None)
            functions[name] = doc[:500] if isinstance(doc, str) else None
    return {"functions": functions, "exceptions": exceptions}


def _serve(module, text, source):
    """Answer one call request with the result or the error, as JSON text."""
    try:
        request = decode_json(text, MAX_DEPTH + 2)
        name, args, kwargs = request["function"], request["args"], request["kwargs"]
    except (ValueError, KeyError, TypeError) as exc:
        return json.dumps({"ok": False, "error": _plain_error(
            "InvalidArguments", f"the call request was refused: {exc}")})
    function = getattr(module, str(name), None)
    if not callable(function):
        return json.dumps({"ok": False, "error": _plain_error(
            "AttributeError", f"the implementation defines no function {name!r}")})
    try:
        result = function(*args, **kwargs)
    except BaseException as exc:  # every failure of the untrusted code is its answer
        return json.dumps({"ok": False, "error": _describe_error(exc, source)})
    try:
        encoded = encode_json(result)
    except DepthError:
        return json.dumps({"ok": False, "error": _plain_error(
            "ResultTooDeep", f"the result of {name} is nested deeper than {MAX_DEPTH} levels")})
    except BaseException as exc:
        return json.dumps({"ok": False, "error": _plain_error(
            "NotJSONSerializable", f"the result of type {type(result).__name__} is not "
                                   f"JSON-serialisable: {exc}"[:4000])})
    if len(encoded) > MESSAGE_LIMIT - 64:
        return json.dumps({"ok": False, "error": _plain_error(
            "ResultTooLarge", f"the result of {name} is {len(encoded)} bytes of JSON; the "
                              f"limit is {MESSAGE_LIMIT - 64}")})
    return '{"ok": true, "result": ' + encoded + "}"


def _clear_user(folders):
    """As the implementation's user: end every process of it, then remove its files.

    Mutate mode runs one worker after another under that user. Without this, the first
    worker (or a process it started in a session of its own) could tell later variants that
    they are mutants, and an honest tool's files in /tmp would carry over into a mutant's run.
    kill(-1) signals every process of the user at once, so none can fork away from it.
    """
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass  # none was left
    me = os.getuid()
    for folder in folders:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            path = os.path.join(folder, name)
            try:
                if os.lstat(path).st_uid == me:
                    _remove_tree(path)
            except OSError:
                pass
    return 0


def _remove_tree(root):
    """Remove ``root`` and what it holds, without recursion (any depth) or trusting its modes."""
    stack = [(root, False)]
    while stack:
        path, emptied = stack.pop()
        try:
            if emptied:
                os.rmdir(path)
            elif not stat.S_ISDIR(os.lstat(path).st_mode):
                os.unlink(path)
            else:
                os.chmod(path, 0o700)  # a folder its owner made unreadable or unwritable
                stack.append((path, True))
                stack.extend((os.path.join(path, name), False) for name in os.listdir(path))
        except OSError:
            pass


def _run_worker(job, uid, requests, replies, out_w, err_w, path, data_dir):
    _enter_child(uid, out_w, err_w, keep=(requests, replies))
    code_dir = tempfile.mkdtemp(prefix="sea-code-")
    # Named by the runner, so it can collect a call's output files from here afterwards.
    os.mkdir(data_dir, 0o700)
    source = os.path.join(code_dir, TOOL_FILE)
    # The implementation and the modules shipped beside it (a composite's components).
    for name, text in job["sources"].items():
        if name != TEST_FILE and "/" not in name and not name.startswith("."):
            _write_text(os.path.join(code_dir, name), text)
    _write_inputs(job, data_dir)
    os.chdir(data_dir)  # the tool opens its inputs by their plain names
    sys.path[:] = [code_dir] + path[1:]  # the data folder is on no import path
    try:
        module = importlib.import_module("tool")
        hello = {"ok": True, **_exports(module)}
    except BaseException as exc:  # a broken implementation is reported, not fatal
        module, hello = None, {"ok": False, "error": _describe_error(exc, source)}
    send_message(replies, json.dumps(hello))
    while module is not None:
        try:
            text = receive_message(requests)
        except ChannelError:
            return 1
        if text is None:
            return 0
        send_message(replies, _serve(module, text, source))
    return 1


# --- the judge: pytest (or the one call) with a proxy for the implementation ---------------

class ToolError(Exception):
    """An exception of the implementation with no builtin counterpart, by its type name."""

    def __init__(self, *args):
        # Every builtin base accepts this, even those whose own __init__ wants more.
        BaseException.__init__(self, *args)

    def __str__(self):
        return str(self.args[0]) if len(self.args) == 1 else BaseException.__str__(self)


_ERROR_CLASSES = {}


def error_class(name, bases=()):
    """Return the class the judge raises for the implementation's exception type ``name``."""
    name = name if name.isidentifier() else "ToolError"
    base = next((getattr(builtins, b) for b in bases if isinstance(getattr(builtins, b, None),
                 type) and issubclass(getattr(builtins, b), Exception)), Exception)
    key = (name, base)
    if key not in _ERROR_CLASSES:
        parents = (ToolError,) if base is Exception else (base, ToolError)
        _ERROR_CLASSES[key] = type(name, parents, {"__module__": "tool",
                                                   "__init__": ToolError.__init__,
                                                   "__str__": ToolError.__str__})
    return _ERROR_CLASSES[key]


def _construct(kind, args, message):
    """Instantiate ``kind`` like the original (same args, same message), or return None."""
    if isinstance(args, list):
        try:
            error = kind(*args)
            if str(error) == message:
                return error
        except Exception:
            pass
    try:
        return kind(message)
    except Exception:
        return None


def remote_error(info):
    """Rebuild the implementation's exception: builtin types by name, others by type name."""
    if not isinstance(info, dict):
        info = _plain_error("InvalidReply", "the implementation sent a malformed error")
    name = str(info.get("type") or "")[:200]
    message = str(info.get("message", ""))[:4000]
    bases = [b for b in info.get("bases") or [] if isinstance(b, str)][:20]
    builtin = getattr(builtins, name, None)
    kinds = [builtin] if (info.get("builtin") is True and isinstance(builtin, type)
                          and issubclass(builtin, Exception)) else []
    # Failing that, the nearest builtin base that can be built (UnicodeDecodeError needs five
    # arguments; UnicodeError makes do with the message).
    kinds = [*kinds, *(error_class(name, bases[i:]) for i in range(len(bases))),
             error_class(name)]
    error = next(e for e in (_construct(k, info.get("args"), message) for k in kinds)
                 if e is not None)
    trace = info.get("trace")
    if isinstance(trace, str) and trace:
        error.add_note("raised in the implementation:\n" + trace[-2000:].rstrip())
    return error


class ToolProxy:
    """The judge's side of the channel: calls the implementation with JSON, counts calls."""

    def __init__(self, requests, replies):
        self.requests = requests
        self.replies = replies
        self.calls = 0
        self.broken = ""
        self._hello = None
        self._lock = threading.Lock()

    def _exchange(self, text, what):
        __tracebackhide__ = True
        with self._lock:
            if self.broken:
                raise error_class("ImplementationExited")(self.broken)
            try:
                if text is not None:
                    send_message(self.requests, text)
                reply = receive_message(self.replies)
            except (OSError, ChannelError) as exc:
                self.broken = f"the channel to the implementation broke during {what}: {exc}"
                raise error_class("ImplementationExited")(self.broken) from None
            if reply is None:
                self.broken = f"the implementation's process ended during {what}"
                raise error_class("ImplementationExited")(self.broken)
            return reply

    def hello(self):
        """Return what the implementation exports (waiting for it to import)."""
        if self._hello is None:
            try:
                hello = decode_json(self._exchange(None, "its import"), 4)
                if not isinstance(hello, dict):
                    raise ValueError("not an object")
            except ValueError as exc:
                hello = {"ok": False, "error": _plain_error(
                    "InvalidReply", f"the implementation's greeting was malformed: {exc}")}
            self._hello = hello
        return self._hello

    def switch(self, requests, replies):
        """Talk to another worker from now on (the mutate mode: one worker per variant)."""
        self.requests, self.replies = requests, replies
        self.calls, self.broken, self._hello = 0, "", None

    def call(self, name, args, kwargs):
        """Call ``name`` in the worker; return its JSON-decoded result or raise its error."""
        __tracebackhide__ = True
        hello = self.hello()  # a switched-to worker greets first, once
        if not hello.get("ok"):
            raise remote_error(hello.get("error"))
        try:
            if too_deep([*args, *kwargs.values()], MAX_DEPTH + 1):
                raise DepthError
            text = encode_json({"function": name, "args": list(args), "kwargs": kwargs},
                               MAX_DEPTH + 2)
        except DepthError:
            raise error_class("InvalidArguments")(
                f"the arguments to {name} are nested deeper than {MAX_DEPTH} levels") from None
        except (TypeError, ValueError) as exc:
            raise error_class("InvalidArguments")(
                f"the arguments to {name} must be JSON values: {exc}") from None
        self.calls += 1  # a call that reaches the implementation
        reply = self._exchange(text, f"a call to {name}")
        try:
            answer = decode_json(reply, MAX_DEPTH + 1)
            if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
                raise ValueError("not a reply")
        except DepthError:
            raise error_class("ResultTooDeep")(
                f"the result of {name} is nested deeper than {MAX_DEPTH} levels") from None
        except ValueError as exc:
            raise error_class("InvalidReply")(
                f"the implementation's reply to {name} was malformed: {exc}") from None
        if answer["ok"] and "result" in answer:
            return answer["result"]
        raise remote_error(answer.get("error"))


def _remote_function(proxy, name, doc):
    def function(*args, **kwargs):
        __tracebackhide__ = True
        return proxy.call(name, args, kwargs)

    function.__name__ = function.__qualname__ = name
    function.__module__ = "tool"
    function.__doc__ = doc
    return function


class ToolFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serve ``import tool`` in the judge with the proxy module."""

    def __init__(self, proxy):
        self.proxy = proxy

    def find_spec(self, fullname, path=None, target=None):
        """Claim the module named tool, nothing else."""
        return importlib.util.spec_from_loader(fullname, self) if fullname == "tool" else None

    def create_module(self, spec):
        """Use the default module object."""
        return None

    def exec_module(self, module):
        """Fill the module with proxies, or raise the implementation's import error."""
        hello = self.proxy.hello()
        if not hello.get("ok"):
            raise remote_error(hello.get("error"))
        for name, doc in (hello.get("functions") or {}).items():
            setattr(module, str(name), _remote_function(self.proxy, str(name),
                                                        doc if isinstance(doc, str) else None))
        for name, bases in (hello.get("exceptions") or {}).items():
            setattr(module, str(name), error_class(str(name), bases if isinstance(
                bases, list) else []))


class _Collector:
    """A pytest plugin that records each test's outcome and how often it called the tool."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.tests = []
        self.collection_errors = []
        self._first = 0
        self._calls = 0

    def pytest_collectreport(self, report):
        if report.failed:
            self.collection_errors.append(str(report.longrepr)[-8000:])

    def pytest_runtest_logstart(self, nodeid, location):
        self._first = len(self.tests)
        self._calls = self.proxy.calls

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
                 "duration": round(report.duration, 4), "tool_calls": 0}
            )

    def pytest_runtest_logfinish(self, nodeid, location):
        calls = self.proxy.calls - self._calls
        for entry in self.tests[self._first:]:
            entry["tool_calls"] = calls


def _suite_args(folder, tests, conftest=None, stop_first=False):
    """Lay the suite out in ``folder`` and return pytest's arguments, pinned to that folder.

    The configuration file, the root, the conftest search and the temporary folder all stay
    inside ``folder``, which only this process's user can enter. A ``conftest`` the host sent
    (fixtures for the suite, never the implementation) is the only conftest pytest sees.
    """
    suite = os.path.join(folder, "suite")
    os.mkdir(suite)
    test_file = os.path.join(suite, TEST_FILE)
    ini = os.path.join(suite, "pytest.ini")
    _write_text(test_file, tests)
    _write_text(ini, "[pytest]\n")
    if conftest is not None:
        _write_text(os.path.join(suite, CONFTEST_FILE), conftest)
    return ["-q", "-p", "no:cacheprovider", "-c", ini, "--rootdir", suite, "--confcutdir",
            suite, "--basetemp", os.path.join(folder, "tmp"), "-o", "addopts=",
            *(["-x"] if stop_first else []), test_file]


def _judge_suite(job, proxy, report):
    folder = tempfile.mkdtemp(prefix="sea-tests-")
    args = _suite_args(folder, job["sources"][TEST_FILE], job["sources"].get(CONFTEST_FILE),
                       bool(job.get("stop_first")))
    data = os.path.join(folder, "data")
    os.mkdir(data)
    _write_inputs(job, data)
    os.chdir(data)  # the tests, too, see the inputs by their plain names
    collector = _Collector(proxy)
    exitstatus = int(pytest.main(args, plugins=[collector]))
    _send_report(report, {"exitstatus": exitstatus, "tests": collector.tests,
                          "collection_errors": collector.collection_errors})
    return exitstatus


def _variant_loop(job, proxy, collector, report, control):
    """Return a pytest plugin that runs the collected suite once per variant.

    The suite is collected once (against the implementation's worker); then, for each
    variant, the runner starts a fresh worker with that code, and a fork of this judge runs
    every collected test against it, so no variant sees another's test state. Each fork has a
    time budget; a variant the job's time cannot cover is not run.
    """
    variants = job["variants"]
    stop_first = job.get("stop_first") or []
    budget = float(job.get("variant_timeout", 2.0))
    deadline = time.monotonic() + float(job.get("timeout", 30)) - 1.0

    class VariantLoop:
        def __init__(self):
            self.results = []

        @pytest.hookimpl(tryfirst=True)
        def pytest_runtestloop(self, session):
            if collector.collection_errors:
                return True  # every variant gets the collection's errors
            for index in range(len(variants)):
                left = deadline - time.monotonic()
                started = "no" if left < min(budget, 0.2) else _next_worker(control, proxy,
                                                                            index)
                if started != "ok":
                    self.results.append({"not_run": True, "unclean": started == "unclean"})
                    continue
                first = bool(stop_first[index]) if index < len(stop_first) else True
                self.results.append(_run_variant(session, proxy, collector, first,
                                                 min(budget, left),
                                                 (report, control.fileno())))
            return True

    return VariantLoop()


def _next_worker(control, proxy, index):
    """Ask the runner for a fresh worker running variant ``index``; switch the proxy to it.

    Return "ok", "unclean" (the runner could not clear what earlier workers left) or "no".
    """
    try:
        control.sendall(struct.pack(">I", index))
        reply, fds, _, _ = socket.recv_fds(control, 16, 2)
    except OSError:
        return "no"
    if len(fds) != 2:
        for fd in fds:
            os.close(fd)
        return "unclean" if reply == b"unclean" else "no"
    for fd in (proxy.requests, proxy.replies):
        os.close(fd)
    proxy.switch(*fds)
    return "ok"


def _run_variant(session, proxy, collector, stop_first, budget, private):
    """Run the collected tests in a fork against the current worker; return its verdict."""
    started = time.monotonic()
    result_r, result_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(result_r)
        for fd in private:  # the tests run here: they get neither the report nor the control
            os.close(fd)
        code = 70
        try:
            code = _run_items(session, collector, stop_first, result_w)
        finally:
            os._exit(code)
    os.close(result_w)
    data, status, timed_out, ended = bytearray(), None, False, False

    def drain(wait):
        nonlocal data, ended
        while not ended and time.monotonic() - started <= budget and select.select(
                [result_r], [], [], wait)[0]:
            chunk = os.read(result_r, 65536)
            ended = not chunk
            data += chunk[:max(0, REPORT_LIMIT - len(data))]

    while status is None:
        if time.monotonic() - started > budget:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            break
        drain(0.01)
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status = raw
            drain(0)  # what it wrote just before it ended (a process it started may hold the
        elif ended:  # pipe open: the fork's own end is what counts)
            time.sleep(0.002)
    os.close(result_r)
    return {"timed_out": timed_out,
            "child_exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "child_signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "report": bytes(data).decode("utf-8", errors="replace"),
            "duration": round(time.monotonic() - started, 4)}


def _run_items(session, collector, stop_first, result_w):
    """Run every collected test once (stopping at the first failure if asked); report it."""
    collector.tests = []
    session.config.option.maxfail = 1 if stop_first else 0
    if stop_first:  # a mutant's verdict needs the failing test's name, not its traceback
        session.config.option.tbstyle = "line"
    session.shouldfail = session.shouldstop = False
    session.testsfailed = 0
    items = session.items
    for index, item in enumerate(items):
        following = items[index + 1] if index + 1 < len(items) else None
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=following)
        if session.shouldfail or session.shouldstop:
            break
    exitstatus = 1 if session.testsfailed else (0 if items else 5)
    for test in collector.tests:
        test["message"] = test["message"][-3000:]
    _write_all(result_w, json.dumps({"exitstatus": exitstatus, "tests": collector.tests,
                                     "collection_errors": []}).encode("utf-8"))
    return exitstatus


def _judge_variants(job, proxy, report, control):
    folder = tempfile.mkdtemp(prefix="sea-tests-")
    args = _suite_args(folder, job["sources"][TEST_FILE], job["sources"].get(CONFTEST_FILE))
    data = os.path.join(folder, "data")
    os.mkdir(data)
    _write_inputs(job, data)
    os.chdir(data)
    collector = _Collector(proxy)
    loop = _variant_loop(job, proxy, collector, report,
                         socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=control))
    # Output is captured per process (sys), never in files the forks would share.
    exitstatus = int(pytest.main(["--capture=sys", "-p", "no:logging", *args],
                                 plugins=[collector, loop]))
    runs = loop.results
    if collector.collection_errors or len(runs) != len(job["variants"]):
        runs = [{"report": json.dumps({"exitstatus": exitstatus, "tests": [],
                                       "collection_errors": collector.collection_errors}),
                 "child_exit": exitstatus}] * len(job["variants"])
    _send_report(report, {"variants": runs})
    return 0


def _judge_call(job, proxy, report):
    try:
        module = importlib.import_module("tool")
        function = getattr(module, job["function"], None)
        if not callable(function) or isinstance(function, type):
            raise AttributeError(f"the implementation defines no function {job['function']!r}")
        result = function(**job.get("args", {}))
        encoded = json.dumps(result)
        if len(encoded) > REPORT_LIMIT - 1024:
            raise error_class("ResultTooLarge")(
                f"the result is {len(encoded)} bytes of JSON; the limit is {REPORT_LIMIT - 1024}")
    except BaseException as exc:  # the call's failure is the report
        _send_report(report, {"ok": False, "error_type": type(exc).__name__,
                              "error": str(exc)[:4000]})
        return 1
    _send_report(report, {"ok": True, "result_json": encoded})
    return 0


def _send_report(fd, payload):
    _write_all(fd, json.dumps(payload).encode("utf-8"))


def _run_judge(job, uid, requests, replies, report, out_w, err_w, control=None):
    _enter_child(uid, out_w, err_w, keep=(requests, replies, report) + (
        (control,) if control is not None else ()))
    _prctl(PR_SET_DUMPABLE, 0)
    proxy = ToolProxy(requests, replies)
    sys.meta_path.insert(0, ToolFinder(proxy))
    if job["mode"] == "verify":
        return _judge_suite(job, proxy, report)
    if job["mode"] == "mutate":
        return _judge_variants(job, proxy, report, control)
    return _judge_call(job, proxy, report)


# --- shared by both children -------------------------------------------------------------

def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def _write_inputs(job, folder):
    step = 1 << 21  # decode in slices: two processes write their copies at once
    for name, hex_content in job.get("inputs", {}).items():
        path = os.path.join(folder, name)
        with open(path, "wb") as fh:
            for start in range(0, len(hex_content), step):
                fh.write(bytes.fromhex(hex_content[start:start + step]))
        os.chmod(path, 0o444)


def _enter_child(uid, out_w, err_w, keep):
    """Become ``uid`` with no capabilities, output on the pipes, only ``keep`` still open."""
    os.setsid()
    _become(uid)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


def _child(target, *args):
    """Run ``target`` in a freshly forked child and never return."""
    code = 70
    try:
        code = target(*args)
    except BaseException:  # the child ends here whatever happens
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


# --- the declared output files of a call --------------------------------------------------

def _collect_outputs(job, folder):
    """Read a call's declared output files (regular, no links, within the byte limit)."""
    room, files = int(job.get("outputs_limit", 0)), {}
    for name in job.get("outputs") or []:
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            continue
        try:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
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


def _run_collector(job, uid, folder, files_w, devnull_w):
    """Send the declared output files as JSON, read as the implementation's user.

    Only that user can enter the worker's data folder, and by now every process of it is
    dead, so nothing changes the files while they are read. What they hold is the
    implementation's output: the host checks sizes and hashes again and trusts no more.
    """
    _enter_child(uid, files_w, devnull_w, keep=())
    _write_all(1, json.dumps(_collect_outputs(job, folder)).encode("utf-8"))
    return 0


def _outputs(job, uid, folder):
    """Return the call's declared output files as the collector reports them (or {})."""
    files_r, files_w = os.pipe()
    devnull_w = os.open(os.devnull, os.O_WRONLY)
    collector = os.fork()
    if collector == 0:
        os.close(files_r)
        _child(_run_collector, job, uid, folder, files_w, devnull_w)
    os.close(files_w)
    os.close(devnull_w)
    # base64 grows by a third; names, sizes and hashes are small beside it.
    limit = int(job.get("outputs_limit", 0)) * 4 // 3 + 65536
    data, deadline = bytearray(), time.monotonic() + 10
    while len(data) <= limit and time.monotonic() < deadline:
        if not select.select([files_r], [], [], 0.1)[0]:
            continue
        chunk = os.read(files_r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(files_r)
    try:
        os.kill(collector, signal.SIGKILL)
    except OSError:
        pass
    try:
        os.waitpid(collector, 0)
    except ChildProcessError:
        pass
    try:
        files = json.loads(bytes(data[:limit + 1]).decode("utf-8"))
    except ValueError:
        return {}
    return files if isinstance(files, dict) else {}


# --- the runner ----------------------------------------------------------------------------

def _warm_up(path):
    """Run a trivial suite once so a pooled runner's job finds pytest's plugins loaded."""
    import contextlib
    import io
    import shutil

    folder = tempfile.mkdtemp(prefix="sea-warm-")
    try:
        args = _suite_args(folder, "def test_warm():\n    assert True\n")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            pytest.main(args)
    except Exception:
        pass
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        sys.modules.pop(TEST_FILE[:-3], None)
        sys.path[:] = path  # pytest put the warm-up folder on the path: no such entry may stay


def _sender(ancillary):
    """Return (pid, uid) of the process that wrote a chunk to the report socket."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(data) >= 12:
            pid, uid, _ = struct.unpack("3i", data[:12])
            return pid, uid
    return None


def _oom_kills():
    """Count the kernel's out-of-memory kills in this container's cgroup, where it is visible."""
    for path in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"):
        try:
            with open(path) as fh:
                lines = fh.read().splitlines()
        except OSError:
            continue
        for line in lines:
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
    return 0


def _frame(mode, **fields):
    frame = {"mode": mode, "timed_out": False, "child_exit": None, "child_signal": None,
             "report": "", "report_overflow": False, "report_foreign": False, "stdout": "",
             "stderr": "", "output_truncated": False, "duration": 0.0, "oom_kills": 0,
             "error": "", "files": {}}
    frame.update(fields)
    return frame


def _write_frame(frame):
    sys.stdout.write("\n" + FRAME_MARKER + json.dumps(frame) + "\n")
    sys.stdout.flush()


def _read_job():
    header = sys.stdin.buffer.readline(32)
    size = int(header.strip() or b"0")
    data = bytearray()
    while len(data) < size:
        chunk = sys.stdin.buffer.read(min(size - len(data), 1 << 20))
        if not chunk:
            break
        data += chunk
    return json.loads(data.decode("utf-8"))


def _reap(deadline, which=-1):
    """Collect exited children (a killed run leaves them), so none holds a pid slot."""
    while True:
        try:
            pid, _ = os.waitpid(which, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                return
            time.sleep(0.002)


def _start_worker(job, code, uids, path, out_w, err_w):
    """Fork a worker for ``code``; return its pid, the judge's ends of its pipes, its data folder.

    The worker gets the implementation and the modules shipped beside it, never the tests or
    their fixtures; its data folder is named here, so a call's output files can be collected
    from it after the run.
    """
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    sources = {name: text for name, text in job["sources"].items()
               if name not in (TEST_FILE, CONFTEST_FILE)}
    sources[TOOL_FILE] = code
    data_dir = os.path.join(tempfile.gettempdir(), "sea-data-" + os.urandom(8).hex())
    pid = os.fork()
    if pid == 0:
        # Its first act closes every descriptor but these: never the report or the control.
        _child(_run_worker, {**job, "sources": sources}, uids["worker"],
               requests_r, replies_w, out_w, err_w, path, data_dir)
    os.close(requests_r)
    os.close(replies_w)
    return pid, requests_w, replies_r, data_dir


class _Workers:
    """The mutate mode's workers: one at a time, each fresh, started when the judge asks."""

    def __init__(self, job, uids, path, control):
        self.job, self.uids, self.path, self.control = job, uids, path, control
        self.pid = None
        self.devnull = os.open(os.devnull, os.O_WRONLY)

    def serve(self):
        """Answer one request: end the last worker, start the asked variant's, pass its ends."""
        request = self.control.recv(4)
        if len(request) != 4:
            return False
        (index,) = struct.unpack(">I", request)
        variants = self.job.get("variants") or []
        if self.pid is not None:
            try:
                os.killpg(self.pid, signal.SIGKILL)  # the worker and what it started
            except OSError:
                pass
            _reap(time.monotonic() + 0.5, self.pid)
            self.pid = None
        if index >= len(variants):
            self.control.sendall(b"no")
            return True
        if not self._clear():  # the judge reports it: the host counts it as not killed
            self.control.sendall(b"unclean")
            return True
        self.pid, requests_w, replies_r, _ = _start_worker(
            self.job, variants[index], self.uids, self.path, self.devnull, self.devnull)
        socket.send_fds(self.control, [b"ok"], [requests_w, replies_r])
        os.close(requests_w)
        os.close(replies_r)
        return True

    def _clear(self):
        """Run ``_clear_user`` as the implementation's user; tell whether it finished in time."""
        try:
            pid = os.fork()
        except OSError:
            return False  # no process to spare: the previous worker's still hold them
        if pid == 0:
            _child(_run_clearer, self.uids["worker"], self.devnull)
        deadline, status = time.monotonic() + CLEAR_TIMEOUT, None
        while status is None and time.monotonic() < deadline:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status = raw
            else:
                time.sleep(0.002)
        if status is None:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        _reap_orphans()
        return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _run_clearer(uid, devnull):
    _enter_child(uid, devnull, devnull, keep=())
    # /dev/mqueue: Docker mounts it writable, and a file created there is a message queue.
    return _clear_user((tempfile.gettempdir(), "/dev/shm", "/dev/mqueue"))


def _reap_orphans():
    """Collect this process's exited children (killed workers' orphans come to PID 1).

    Called while the judge waits for its next worker, so the judge is never among them.
    """
    me = str(os.getpid())
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                state, parent = fh.read().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if state == "Z" and parent == me:
            try:
                os.waitpid(int(pid), os.WNOHANG)
            except ChildProcessError:
                pass


def _run_once(job, uids, path, cap, timeout):
    """Run one judge against its worker(s); return what was seen, every process killed after."""
    started = time.monotonic()
    oom_kills = _oom_kills()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    _, requests_w, replies_r, data_dir = _start_worker(job, job["sources"][TOOL_FILE], uids,
                                                       path, out_w, err_w)
    # Made after the first worker exists, so the implementation never holds them.
    collector_end, judge_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    collector_end.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    workers = control_end = None
    if job["mode"] == "mutate":
        control_end, judge_control = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        workers = _Workers(job, uids, path, control_end)
    judge = os.fork()
    if judge == 0:
        collector_end.close()
        _child(_run_judge, job, uids["tests"], requests_w, replies_r, judge_end.fileno(),
               out_w, err_w, judge_control.fileno() if workers else None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # nothing may interrupt us into silence
    judge_end.close()
    if workers:
        judge_control.close()
    for fd in (requests_w, replies_r, out_w, err_w):
        os.close(fd)

    report_fd = collector_end.fileno()
    buffers = {report_fd: bytearray(), out_r: bytearray(), err_r: bytearray()}
    limits = {report_fd: REPORT_LIMIT, out_r: cap, err_r: cap}
    overflow = {report_fd: False, out_r: False, err_r: False}
    foreign = False
    open_fds = set(buffers)
    status = None
    timed_out = False
    credentials = socket.CMSG_SPACE(struct.calcsize("3i"))
    while True:
        if status is None:
            done, raw = os.waitpid(judge, os.WNOHANG)
            if done:
                status = raw
        if status is not None and not open_fds:
            break
        if time.monotonic() - started > timeout:
            timed_out = True
            break
        # Once the report has ended the judge is on its way out: look for it often, since the
        # worker still holds the output pipes open; once it is gone, drain once and stop.
        finished = status is not None and report_fd not in open_fds
        wait = 0.0 if finished else (0.02 if report_fd in open_fds else 0.002)
        # In mutate mode the judge also asks, on its control socket, for each mutant's worker.
        watched = list(open_fds) + ([control_end] if workers else [])
        readable, _, _ = select.select(watched, [], [], wait)
        for fd in readable:
            if fd is control_end:
                if not workers.serve():
                    workers = None  # the judge is done asking
                continue
            if fd == report_fd:
                chunk, ancillary, _, _ = collector_end.recvmsg(65536, credentials)
                if chunk and _sender(ancillary) != (judge, uids["tests"]):
                    foreign = True  # only the judge itself may write the report
                    continue
            else:
                chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.discard(fd)
                continue
            room = limits[fd] - len(buffers[fd])
            if room > 0:
                buffers[fd] += chunk[:room]
            if len(chunk) > room:
                overflow[fd] = True
        if finished or (status is not None and not readable):
            # The judge is gone; a process holding a pipe open must not keep us waiting.
            break

    # Single use: nothing the job started may outlive it (kill(-1) spares only us).
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass
    if status is None:
        try:
            _, status = os.waitpid(judge, 0)
        except ChildProcessError:
            status = None
    _reap(time.monotonic() + 1.0)
    collector_end.close()
    if control_end is not None:
        control_end.close()
    for fd in (out_r, err_r):
        os.close(fd)

    child_exit = None
    child_signal = None
    if status is not None:
        if os.WIFEXITED(status):
            child_exit = os.WEXITSTATUS(status)
        elif os.WIFSIGNALED(status):
            child_signal = os.WTERMSIG(status)
    files = {}
    if job["mode"] == "call" and job.get("outputs") and not timed_out:
        files = _outputs(job, uids["worker"], data_dir)
    return {"files": files, "timed_out": timed_out, "child_exit": child_exit,
            "child_signal": child_signal,
            "report": bytes(buffers[report_fd]).decode("utf-8", errors="replace"),
            "report_overflow": overflow[report_fd], "report_foreign": foreign,
            "stdout": bytes(buffers[out_r]).decode("utf-8", errors="replace"),
            "stderr": bytes(buffers[err_r]).decode("utf-8", errors="replace"),
            "output_truncated": overflow[out_r] or overflow[err_r],
            "duration": round(time.monotonic() - started, 4),
            "oom_kills": _oom_kills() - oom_kills}


def main():
    """Run the one job this runner was started for."""
    global pytest
    try:
        uids, setup_error = _supervise(), ""
    except Exception as exc:  # the job must not run without its users and filter
        uids, setup_error = None, f"the sandbox runner could not separate its users: {exc}"
    path = list(sys.path)
    if not setup_error:
        import pytest
        # A job already waiting means a cold start: warming up would only delay it.
        if not select.select([sys.stdin], [], [], 0)[0]:
            _warm_up(path)
    sys.stdout.write(READY_LINE)
    sys.stdout.flush()
    job = _read_job()
    if setup_error:
        _write_frame(_frame(job.get("mode", ""), error=setup_error))
        os._exit(0)
    cap = int(job.get("output_limit", 64 * 1024))
    run = _run_once(job, uids, path, cap, float(job.get("timeout", 30)))
    _write_frame(_frame(job["mode"], **run))
    os._exit(0)


if __name__ == "__main__":
    main()
