"""The bubblewrap backend, for hosts without Docker.

bubblewrap gives namespaces, not a policy: this module adds a read-only root (the offline
Debian root filesystem), a read-only /dev, a clean environment, a seccomp filter, rlimits,
and a cgroup for memory, pids and CPU. Each run gets a user namespace whose three users (the
runner, the tests, the implementation) map onto three fresh host users, written by this
process while bubblewrap waits. When it cannot apply those it refuses to run; it never falls
back to a plain subprocess.

Why this module is long: bubblewrap brings no policy of its own, so the seccomp filter,
the rlimits and the cgroup that make it one are built here, beside the command line.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

from .core import Limits, RawRun, SandboxUnavailable, run_uids
from .image import RUNNER, rootfs_dir
from .runner import UIDS_VARIABLE

CGROUP_ROOT = Path("/sys/fs/cgroup")
OUTPUT_LIMIT = 4 * 1024 * 1024
SETUP_TIMEOUT = 10.0


class Cgroup:
    """A throwaway cgroup (v1 or v2) holding one run's processes."""

    def __init__(self, limits: Limits):
        self.name = f"sea-{uuid.uuid4().hex[:12]}"
        self.dirs: dict[str, Path] = {}
        self.v2 = (CGROUP_ROOT / "cgroup.controllers").exists()
        try:
            if self.v2:
                self._make("unified", CGROUP_ROOT)
                self._write("unified", "memory.max", limits.memory_mb << 20)
                self._write("unified", "memory.swap.max", 0, optional=True)
                self._write("unified", "pids.max", limits.pids)
                self._write("unified", "cpu.max", f"{int(limits.cpus * 100000)} 100000")
            else:
                for controller in ("memory", "pids", "cpu"):
                    self._make(controller, self._v1_parent(controller))
                self._write("memory", "memory.limit_in_bytes", limits.memory_mb << 20)
                self._write("memory", "memory.memsw.limit_in_bytes", limits.memory_mb << 20,
                            optional=True)
                self._write("pids", "pids.max", limits.pids)
                self._write("cpu", "cpu.cfs_period_us", 100000)
                self._write("cpu", "cpu.cfs_quota_us", int(limits.cpus * 100000))
        except OSError as exc:
            self.remove()
            raise SandboxUnavailable(f"bubblewrap refuses to run: the cgroup limits for memory, "
                                     f"pids and CPU cannot be applied ({exc})") from exc

    @staticmethod
    def _v1_parent(controller: str) -> Path:
        # Nest under our own cgroup so the machine's limits still apply around ours.
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            if controller in names.split(","):
                candidate = CGROUP_ROOT / controller / path.lstrip("/")
                if candidate.is_dir() and os.access(candidate, os.W_OK):
                    return candidate
        return CGROUP_ROOT / controller

    def _make(self, key: str, parent: Path) -> None:
        path = parent / self.name
        path.mkdir()
        self.dirs[key] = path

    def _write(self, key: str, name: str, value, optional: bool = False) -> None:
        try:
            (self.dirs[key] / name).write_text(str(value))
        except OSError:
            if not optional:
                raise

    def enter(self) -> None:
        """Move the calling process into the cgroup (runs in the child before exec)."""
        for path in self.dirs.values():
            (path / "cgroup.procs").write_text(str(os.getpid()))

    def pids(self) -> list[int]:
        """List the processes still in the cgroup."""
        key = "unified" if self.v2 else "pids"
        try:
            text = (self.dirs[key] / "cgroup.procs").read_text()
        except (OSError, KeyError):
            return []
        return [int(p) for p in text.split()]

    def oom_killed(self) -> bool:
        """Tell whether the kernel killed something here for want of memory."""
        events = ("unified", "memory.events") if self.v2 else ("memory", "memory.oom_control")
        try:
            text = (self.dirs[events[0]] / events[1]).read_text()
        except (OSError, KeyError):
            return False
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit() and int(value) > 0:
                return True
        return False

    def kill_all(self) -> None:
        """Kill every process in the cgroup until none is left."""
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        """Kill what is left and delete the cgroup."""
        self.kill_all()
        for path in self.dirs.values():
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


# Denied outright (EPERM): tracing, namespaces, mounts, kernel keyrings, BPF, modules and the
# like, much as Docker's default profile denies them.
DENIED_SYSCALLS = [
    "ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root",
    "chroot", "unshare", "setns", "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
    "userfaultfd", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff",
    "init_module", "finit_module", "delete_module", "acct", "open_by_handle_at",
    "name_to_handle_at", "syslog", "io_uring_setup", "io_uring_enter", "io_uring_register",
]
# clone() may not create namespaces; clone3() says ENOSYS so that libc falls back to clone().
NAMESPACE_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                   0x40000000, 0x00000080]


def seccomp_program():
    """Return a file holding the compiled seccomp filter, or raise SandboxUnavailable."""
    try:
        import pyseccomp as seccomp

        rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        for name in DENIED_SYSCALLS:
            rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
        for flag in NAMESPACE_FLAGS:
            rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone",
                           seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
        # No vsock: it reaches the hypervisor or the host, around the network namespace.
        rules.add_rule(seccomp.ERRNO(errno.EPERM), "socket",
                       seccomp.Arg(0, seccomp.EQ, socket.AF_VSOCK))
        rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        program = tempfile.TemporaryFile()
        rules.export_bpf(program)
        program.seek(0)
        return program
    except Exception as exc:  # no libseccomp: refuse rather than run unfiltered
        raise SandboxUnavailable(f"bubblewrap refuses to run: no seccomp filter could be "
                                 f"built ({exc}); install libseccomp2") from exc


class BwrapBackend:
    """Run each job under bubblewrap in the offline Debian root filesystem."""

    name = "bwrap"

    def __init__(self, limits: Limits | None = None, rootfs: Path | None = None):
        self.limits = limits or Limits()
        self.rootfs = rootfs or rootfs_dir()
        self._in_flight: set = set()  # (bubblewrap, cgroup) of each run now (``abort``)
        self._aborted = False

    def check(self) -> None:
        """Raise SandboxUnavailable unless bubblewrap, the root filesystem and root exist."""
        if not shutil.which("bwrap"):
            raise SandboxUnavailable("bubblewrap is not installed (apt-get install bubblewrap)")
        if not (self.rootfs / "usr/bin/python3").exists():
            raise SandboxUnavailable(f"no sandbox root filesystem at {self.rootfs}; build it "
                                     "with `sea sandbox build --method offline`")
        if os.getuid() != 0:
            raise SandboxUnavailable("bubblewrap refuses to run: mapping the run's three users "
                                     "onto fresh host users needs root")

    def command(self, seccomp_fd: int, info_fd: int, block_fd: int) -> list[str]:
        """Return the bubblewrap command line for one run."""
        lim = self.limits
        return [
            "bwrap", "--seccomp", str(seccomp_fd), "--unshare-all", "--unshare-user",
            # bubblewrap reports its child and waits while we write the user mappings.
            "--info-fd", str(info_fd), "--userns-block-fd", str(block_fd),
            "--die-with-parent", "--new-session", "--as-pid-1",
            "--ro-bind", str(self.rootfs), "/",
            "--proc", "/proc", "--dev", "/dev",
            "--size", str(lim.tmp_mb << 20), "--perms", "1777", "--tmpfs", "/tmp",
            # This checkout's runner, read-only, without writing into the shared root.
            "--perms", "0755", "--tmpfs", "/opt", "--ro-bind", str(RUNNER), "/opt/sea/runner.py",
            "--remount-ro", "/opt", "--remount-ro", "/dev",
            "--clearenv", "--setenv", "HOME", "/tmp", "--setenv", "PATH", "/usr/bin:/bin",
            "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
            "--setenv", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1",
            "--setenv", UIDS_VARIABLE, "0,1,2",
            "--uid", "0", "--gid", "0", "--hostname", "sandbox",
            # Capabilities inside the run's own user namespace only.
            "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
            "--cap-add", "CAP_KILL", "--chdir", "/tmp",
            "/usr/bin/python3", "-I", "/opt/sea/runner.py",
        ]

    @staticmethod
    def _map_users(info_fd: int, block_fd: int, base: int) -> None:
        """Map the run's users 0, 1, 2 onto ``base``.. once bubblewrap names its child."""
        data = b""
        deadline = time.monotonic() + SETUP_TIMEOUT
        while time.monotonic() < deadline:
            if not select.select([info_fd], [], [], 0.1)[0]:
                continue
            chunk = os.read(info_fd, 4096)
            if not chunk:
                break
            data += chunk
        try:
            child = int(json.loads(data)["child-pid"])
            for name in ("uid_map", "gid_map"):
                Path(f"/proc/{child}/{name}").write_text(f"0 {base} 3\n")
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise SandboxUnavailable(f"bubblewrap refuses to run: the run's users could not "
                                     f"be mapped ({exc})") from exc
        os.write(block_fd, b"1")

    def run(self, job: bytes) -> RawRun:
        """Run one job under bubblewrap inside a fresh cgroup."""
        self.check()
        lim = self.limits
        base = run_uids()[0]
        cgroup = Cgroup(lim)

        def limit_child() -> None:
            cgroup.enter()
            resource.setrlimit(resource.RLIMIT_NOFILE, (lim.nofile, lim.nofile))
            resource.setrlimit(resource.RLIMIT_FSIZE, (lim.fsize_mb << 20, lim.fsize_mb << 20))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            # bubblewrap itself runs as the run's first fresh user, which owns nothing here.
            os.setgroups([])
            os.setgid(base)
            os.setuid(base)

        started = time.monotonic()
        chunks: list[bytes] = []
        try:
            program = seccomp_program()
        except SandboxUnavailable:
            cgroup.remove()
            raise
        info_r, info_w = os.pipe()
        block_r, block_w = os.pipe()
        try:
            proc = subprocess.Popen(self.command(program.fileno(), info_w, block_r),
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, preexec_fn=limit_child,
                                    close_fds=True, pass_fds=[program.fileno(), info_w, block_r])
        except (OSError, subprocess.SubprocessError) as exc:
            for fd in (info_r, info_w, block_r, block_w):
                os.close(fd)
            cgroup.remove()
            raise SandboxUnavailable(f"bubblewrap could not start ({exc})") from exc
        finally:
            program.close()  # bubblewrap has read (or inherited) it
        os.close(info_w)
        os.close(block_r)
        try:
            self._map_users(info_r, block_w, base)
        except SandboxUnavailable:
            proc.kill()
            proc.wait()
            cgroup.remove()
            raise
        finally:
            os.close(info_r)
            os.close(block_w)

        def pump() -> None:
            # Keep the tail: the runner's frame is the last thing it writes.
            size = 0
            while True:
                chunk = proc.stdout.read(65536)
                if not chunk:
                    return
                chunks.append(chunk)
                size += len(chunk)
                while size > OUTPUT_LIMIT and len(chunks) > 1:
                    size -= len(chunks.pop(0))

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        host_timed_out = False
        self._in_flight.add((proc, cgroup))
        if self._aborted:  # aborted while this run was starting
            self.abort()
        try:
            try:
                proc.stdin.write(job)
                proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                proc.wait(timeout=lim.timeout + lim.grace)
            except subprocess.TimeoutExpired:
                host_timed_out = True
            cgroup.kill_all()
            proc.kill()
            proc.wait()
            reader.join(timeout=5)
            duration = time.monotonic() - started
            oom = cgroup.oom_killed()
        finally:
            self._in_flight.discard((proc, cgroup))
            cgroup.remove()
        return RawRun(output=b"".join(chunks).decode("utf-8", "replace"),
                      exit_code=proc.returncode, oom_killed=oom,
                      host_timed_out=host_timed_out, duration=duration, backend=self.name)

    def head_start(self) -> None:
        """Nothing to start ahead: a run needs no daemon and no container."""

    def abort(self) -> None:
        """Kill the runs in flight, every process of each run's cgroup included."""
        self._aborted = True  # before the look: a run starting now sees one or the other
        for proc, cgroup in list(self._in_flight):
            try:
                cgroup.kill_all()
                proc.kill()
            except OSError:
                pass  # it ended meanwhile

    def close(self) -> None:
        """Nothing is held between runs."""
