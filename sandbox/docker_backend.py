"""The Docker backend: a fresh hardened container per run, optionally started ahead in a pool.

Why this module is long: the warm pool and the janitor share the container settings and
labels with the one-shot run, and belong with them.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .core import Limits, RawRun, SandboxError, SandboxFault, SandboxUnavailable, run_uids
from .image import image_tag
from .ownership import LABEL, owner_labels, sweeper  # noqa: F401  (LABEL re-exported)
from .runner import FRAME_MARKER, READY_LINE, UIDS_VARIABLE

LOG_LIMIT = "4m"
STREAM_LIMIT = 8 * 1024 * 1024  # the runner's stdout carries one frame: a few MB at most


def connect(timeout: float = 10.0):
    """Return a Docker client that has answered a ping, or raise SandboxUnavailable."""
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except Exception as exc:  # any failure here means no daemon to talk to
        raise SandboxUnavailable(f"the Docker daemon is not reachable ({_short(exc)}); "
                                 "start it, or use the bwrap backend") from exc


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


class DockerBackend:
    """Run each job in its own container, destroyed afterwards."""

    name = "docker"

    def __init__(self, limits: Limits | None = None, image: str | None = None,
                 pool_size: int = 0, idle_timeout: float = 300.0):
        self.limits = limits or Limits()
        self.image = image or image_tag()
        self._client = None
        self._client_lock = threading.Lock()
        self._reaper = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sea-reaper")
        self.sweeper = None  # this process's background sweep, started with the first client
        self.pool = WarmPool(self, pool_size, idle_timeout) if pool_size > 0 else None
        if self.pool:
            self.name = "docker-warm"
        self._head = None  # the future of a container started ahead (``head_start``)
        self._head_lock = threading.Lock()
        self._in_flight: set = set()  # containers running a job now (``abort`` kills them)
        self._aborted = False

    def client(self):
        """Return a connected client, checking the image once per connection."""
        with self._client_lock:
            if self._client is None:
                client = connect()
                try:
                    client.images.get(self.image)
                except Exception as exc:
                    raise SandboxUnavailable(
                        f"the sandbox image {self.image} is missing ({_short(exc)}); "
                        "build it with `sea sandbox build`") from exc
                self._client = client
                self.sweeper = sweeper(connect)  # leftovers go in the background, not here
            return self._client

    def _fault(self, what: str, exc: BaseException) -> Exception:
        """Return the error for a run that broke: Docker gone (said as at start) or a fault."""
        with self._client_lock:
            self._client = None  # reconnect (and check the image) next time
        if self.pool:
            self.pool.flush()  # what waits there may be as broken: the retry starts afresh
        try:
            connect(timeout=3.0).close()
        except SandboxUnavailable as down:
            return down
        return SandboxFault(f"{what} ({_short(exc)})")

    def container_options(self) -> dict:
        """Return the hardened options every sandbox container is created with."""
        from docker.types import LogConfig, Ulimit

        lim = self.limits
        return {
            "image": self.image,
            "stdin_open": True,
            "detach": True,
            "network_mode": "none",
            "read_only": True,
            # The runner starts as root with only the capabilities to hand out this run's
            # three fresh users and to signal them; it becomes the first of them at once, and
            # the tests and the implementation each run as one of the others, capability-free.
            "user": "0:0",
            "cap_drop": ["ALL"],
            "cap_add": ["SETUID", "SETGID", "KILL"],
            "security_opt": ["no-new-privileges:true"],
            # No init: the runner is PID 1, so no other process in the container holds its
            # stdout (a traceable init could be made to forge the report), and signals from
            # inside cannot kill it.
            "init": False,
            "mem_limit": f"{lim.memory_mb}m",
            "memswap_limit": f"{lim.memory_mb}m",
            "nano_cpus": int(lim.cpus * 1e9),
            "pids_limit": lim.pids,
            "tmpfs": {"/tmp": f"rw,noexec,nosuid,nodev,size={lim.tmp_mb}m,nr_inodes=8192"},
            "shm_size": f"{lim.shm_mb}m",
            "ulimits": [
                Ulimit(name="nofile", soft=lim.nofile, hard=lim.nofile),
                Ulimit(name="fsize", soft=lim.fsize_mb << 20, hard=lim.fsize_mb << 20),
                Ulimit(name="core", soft=0, hard=0),
            ],
            "log_config": LogConfig(type="json-file",
                                    config={"max-size": LOG_LIMIT, "max-file": "1"}),
            "environment": {"HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1",
                            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "LANG": "C.UTF-8",
                            UIDS_VARIABLE: ",".join(map(str, run_uids()))},
            "working_dir": "/tmp",
            "hostname": "sandbox",
            "labels": owner_labels(),
        }

    def start_container(self):
        """Create and start one container; raise SandboxUnavailable if Docker refuses."""
        client = self.client()
        container = None
        try:
            container = client.containers.create(**self.container_options())
            container.start()
            return container
        except Exception as exc:
            if container is not None:
                self.discard(container, wait=True)
            raise self._fault("Docker could not start a sandbox", exc) from exc

    def start_warm(self):
        """Start a container and wait until its runner is ready; SandboxError if either fails."""
        container = self.start_container()
        if not self._await_ready(container):
            self.discard(container)
            raise SandboxFault("a warm container stopped before its runner was ready")
        return container

    def _await_ready(self, container, timeout: float = 30.0) -> bool:
        """Wait until the runner says it has warmed up, so a job never waits for imports.

        Return False when the container ended (or Docker failed) before that.
        """
        deadline = time.monotonic() + timeout
        try:
            stream = container.logs(stream=True, follow=True, stdout=True, stderr=False)
        except Exception:
            return False
        seen = b""
        try:
            for chunk in stream:
                seen += chunk
                if READY_LINE.encode() in seen or time.monotonic() > deadline:
                    break
        except Exception:
            pass  # the container or the daemon went away: not ready
        finally:
            stream.close()
        return READY_LINE.encode() in seen

    def head_start(self) -> None:
        """Start one container now, in the background, for the next run that has no pool.

        A one-shot command calls this first: the container starts and its runner warms up
        while the command loads, instead of after the request was understood. It is used
        once and not replaced; unused, it is removed when the backend closes.
        """
        with self._head_lock:
            if self.pool is None and self._head is None:
                self._head = self._reaper.submit(self.start_warm)

    def _take_head(self):
        """Return the container started ahead, or None (none, or Docker failed to start it).

        The run that finds None starts its own container and reports what fails there.
        """
        with self._head_lock:
            head, self._head = self._head, None
        try:
            return head.result() if head else None
        except SandboxError:
            return None

    def discard(self, container, wait: bool = False) -> None:
        """Kill and remove a container, in the background unless ``wait``."""
        def remove():
            try:
                container.remove(force=True)
            except Exception as exc:
                if getattr(exc, "status_code", None) not in (404, 409) and self.sweeper:
                    self.sweeper.orphan(container.id)  # removed once the daemon answers
        if wait:
            remove()
        else:
            self._reaper.submit(remove)

    def _exchange(self, container, job: bytes, deadline: float) -> str | None:
        """Send the job and read the runner's stdout until its frame is complete.

        Returning on the frame spares waiting for Docker to notice the container's exit. None
        means the stream ended or the time ran out without a frame.
        """
        try:
            stream = container.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
            raw_socket = getattr(stream, "_sock", stream)
            raw_socket.sendall(job)
        except Exception as exc:
            raise self._fault("could not send the job to the sandbox", exc) from exc
        marker = FRAME_MARKER.encode()
        output, pending = bytearray(), b""
        try:
            while len(output) < STREAM_LIMIT:
                raw_socket.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = raw_socket.recv(65536)
                if not chunk:
                    return None
                pending += chunk
                # Without a terminal Docker multiplexes: a stream byte, three zeros, a size.
                while len(pending) >= 8 and len(pending) >= 8 + int.from_bytes(pending[4:8],
                                                                                "big"):
                    size = int.from_bytes(pending[4:8], "big")
                    if pending[0] == 1:
                        output += pending[8:8 + size]
                    pending = pending[8 + size:]
                at = output.rfind(marker)
                if at >= 0 and b"\n" in output[at:]:
                    return output.decode("utf-8", "replace")
            return None
        except OSError:  # a timeout included
            return None
        finally:
            stream.close()

    def run(self, job: bytes) -> RawRun:
        """Run one job in a fresh (or warm) container, then remove it; Docker failing is a fault."""
        container = self.pool.take() if self.pool else self._take_head()
        ahead = container is not None
        if not ahead:
            container = self.start_container()
        name = "docker-warm" if ahead else self.name
        started = time.monotonic()
        deadline = started + self.limits.timeout + self.limits.grace
        self._in_flight.add(container)
        try:
            if self._aborted:  # aborted while this run was taking its container
                self.abort()
            output = self._exchange(container, job, deadline)
            if output is not None:
                return RawRun(output=output, exit_code=None, duration=time.monotonic() - started,
                              backend=name)
            # No frame: ask Docker how the container ended (out of time, out of memory...).
            host_timed_out = False
            exit_code = None
            try:
                result = container.wait(timeout=max(1.0, deadline - time.monotonic()))
                exit_code = result.get("StatusCode")
            except Exception as exc:
                if time.monotonic() < deadline:
                    raise self._fault("lost the sandbox mid-run", exc) from exc
                host_timed_out = True
                try:
                    container.kill()
                except Exception:
                    pass  # it ended meanwhile; it is removed below either way
            duration = time.monotonic() - started
            try:
                output = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
                container.reload()
            except Exception as exc:
                raise self._fault("lost the sandbox before its report was read", exc) from exc
            oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
            if exit_code == 137 and not (oom or host_timed_out) and self.pool:
                self.pool.flush()  # killed from outside: what waits may have been killed too
            return RawRun(output=output, exit_code=exit_code, oom_killed=oom,
                          host_timed_out=host_timed_out, duration=duration, backend=name)
        finally:
            self._in_flight.discard(container)
            # A cold run waits for its removal (runs in a row never pile up containers);
            # one started ahead is removed meanwhile, and ``close`` waits for it.
            self.discard(container, wait=not ahead and self.pool is None)

    def abort(self) -> None:
        """Kill the containers running a job now; their runs end as killed from outside."""
        self._aborted = True  # before the look: a run starting now sees one or the other
        for container in list(self._in_flight):
            try:
                container.kill()
            except Exception:  # noqa: BLE001 - it ended meanwhile, or the daemon is gone
                pass

    def close(self) -> None:
        """Stop the pool and wait until every container this backend made is gone."""
        unused = self._take_head()
        if unused is not None:
            self.discard(unused, wait=True)
        if self.pool:
            self.pool.close()
        self._reaper.shutdown(wait=True)


class WarmPool:
    """Containers started ahead, each used for exactly one job, refilled in the background."""

    def __init__(self, backend: DockerBackend, size: int, idle_timeout: float):
        self.backend = backend
        self.size = size
        self.idle_timeout = idle_timeout
        self._ready: list = []
        self._cond = threading.Condition()
        self._closed = False
        self._last_used = time.monotonic()
        self.last_error = ""
        self._thread = threading.Thread(target=self._fill, name="sea-pool", daemon=True)
        self._thread.start()

    def waiting(self) -> list:
        """Return the containers that wait for a job (a snapshot)."""
        with self._cond:
            return list(self._ready)

    def take(self):
        """Return a started container, or None when none is ready (the caller starts one)."""
        with self._cond:
            self._last_used = time.monotonic()
            container = self._ready.pop(0) if self._ready else None
            self._cond.notify_all()
            return container

    def flush(self) -> None:
        """Discard every waiting container (after a fault they may be broken as well)."""
        with self._cond:
            stale, self._ready = self._ready, []
        for container in stale:
            self.backend.discard(container)

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Wait until the pool is full; return whether it got there."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._cond.notify_all()
            while len(self._ready) < self.size and time.monotonic() < deadline:
                self._last_used = time.monotonic()  # a waiter is a user: the pool is not idle
                self._cond.wait(0.1)
            return len(self._ready) >= self.size

    def _fill(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                idle = time.monotonic() - self._last_used > self.idle_timeout
                if idle and self._ready:
                    expired, self._ready = self._ready, []
                    for container in expired:
                        self.backend.discard(container)
                if idle or len(self._ready) >= self.size:
                    self._cond.wait(1.0)
                    continue
            try:
                container = self.backend.start_warm()
                self.last_error = ""
            except SandboxError as exc:
                self.last_error = str(exc)
                time.sleep(2.0)  # the daemon or image is missing: retry later, quietly
                continue
            with self._cond:
                if self._closed:
                    self.backend.discard(container, wait=True)
                    return
                self._ready.append(container)
                self._cond.notify_all()

    def close(self) -> None:
        """Stop refilling and remove every waiting container."""
        with self._cond:
            self._closed = True
            leftovers, self._ready = self._ready, []
            self._cond.notify_all()
        self._thread.join(timeout=30)
        for container in leftovers:
            self.backend.discard(container, wait=True)
