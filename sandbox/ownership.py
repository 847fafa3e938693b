"""Who owns a sandbox container, and the sweep that removes those whose owner is gone.

Every container is labelled with its owner: host, boot, pid namespace, pid, and the pid's
start time (field 22 of ``/proc/PID/stat``), so a pid reused by another process is never
mistaken for the owner. A sweep removes only containers whose owner is provably gone (a
container from another host or pid namespace is not this process's to judge), tolerates
containers that vanish while it works, and runs in a background thread of every process that
uses Docker: at start-up, then periodically. It is never in a request's path.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path

LABEL = "sea.sandbox"
OWNER_LABEL = "sea.owner"  # host:pid, as older versions wrote it
START_LABEL = "sea.owner.start"
BOOT_LABEL = "sea.owner.boot"
PIDNS_LABEL = "sea.owner.pidns"
SWEEP_SECONDS = float(os.environ.get("SEA_SANDBOX_SWEEP_SECONDS") or 60.0)
log = logging.getLogger(__name__)


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def start_time(pid: int) -> str | None:
    """Return when ``pid`` started (clock ticks after boot), or None when there is no such pid."""
    stat = _read(f"/proc/{pid}/stat")
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def owner_labels(pid: int | None = None) -> dict[str, str]:
    """Return the labels that name ``pid`` (default: this process) as a container's owner."""
    pid = pid or os.getpid()
    return {LABEL: "1", OWNER_LABEL: f"{socket.gethostname()}:{pid}",
            START_LABEL: start_time(pid) or "", BOOT_LABEL: _read(
                "/proc/sys/kernel/random/boot_id"), PIDNS_LABEL: _pid_namespace()}


def owner_gone(labels: dict[str, str]) -> bool:
    """Tell whether the process that owns a container with ``labels`` is provably gone."""
    host, _, pid = labels.get(OWNER_LABEL, "").partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's container, or one without an owner: not ours to judge
    boot = labels.get(BOOT_LABEL)
    if boot and boot != _read("/proc/sys/kernel/random/boot_id"):
        return True  # the machine restarted since
    namespace = labels.get(PIDNS_LABEL)
    if namespace and namespace != _pid_namespace():
        return False  # its pid means nothing here
    started = start_time(int(pid))
    if started is None:
        return True
    recorded = labels.get(START_LABEL)
    return bool(recorded) and recorded != started  # the pid now belongs to another process


def _gone_already(exc: Exception) -> bool:
    """Tell whether a failed removal means someone else removed (or is removing) it."""
    return getattr(exc, "status_code", None) in (404, 409)


def remove(client, container_id: str) -> bool:
    """Remove a container by id; return False when it had vanished already."""
    try:
        client.api.remove_container(container_id, force=True)
        return True
    except Exception as exc:
        if _gone_already(exc):
            return False
        raise


def sweep(client, everything: bool = False, label: str | None = None) -> int:
    """Remove sandbox containers whose owner is gone (or all of them); return how many.

    One listing call, no per-container inspection: a container that vanishes meanwhile is
    skipped, never an error. ``label`` narrows the sweep to containers that carry it too.
    """
    labels = [LABEL] + ([label] if label else [])
    removed = 0
    for item in client.api.containers(all=True, filters={"label": labels}):
        if everything or owner_gone(item.get("Labels") or {}):
            removed += remove(client, item["Id"])
    return removed


class Sweeper:
    """The background sweep of this process: at start, then every ``interval`` seconds.

    It also retries the removal of this process's own containers that failed (the daemon was
    lost mid-run, say) once the daemon answers again.
    """

    def __init__(self, client_factory, interval: float = SWEEP_SECONDS):
        self._client_factory = client_factory
        self.interval = interval
        self._orphans: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.sweeps = 0
        self.removed = 0
        self.last_error = ""
        self._thread = threading.Thread(target=self._loop, name="sea-sweeper", daemon=True)
        self._thread.start()

    def orphan(self, container_id: str) -> None:
        """Remember a container of ours whose removal failed, to remove it later."""
        with self._lock:
            self._orphans.add(container_id)
        self._wake.set()

    def orphans(self) -> set[str]:
        """Return the containers still waiting for removal (a snapshot)."""
        with self._lock:
            return set(self._orphans)

    def remove_orphans(self, client=None) -> int:
        """Remove this process's containers whose removal failed; return how many."""
        client = client or self._client_factory()
        removed = 0
        for container_id in self.orphans():
            removed += remove(client, container_id)
            with self._lock:
                self._orphans.discard(container_id)
        return removed

    def run_once(self) -> int:
        """Sweep now; return how many containers were removed."""
        client = self._client_factory()
        removed = sweep(client) + self.remove_orphans(client)
        self.sweeps += 1
        self.removed += removed
        return removed

    def _loop(self) -> None:
        while True:
            try:
                self.run_once()
                self.last_error = ""
            except Exception as exc:  # never fatal: the next round tries again
                self.last_error = str(exc)[:300]
                log.debug("sandbox sweep failed: %s", exc)
            self._wake.wait(self.interval)
            self._wake.clear()


_sweeper: Sweeper | None = None
_sweeper_lock = threading.Lock()


def sweeper(client_factory) -> Sweeper:
    """Return this process's sweeper, started on first use."""
    global _sweeper
    with _sweeper_lock:
        if _sweeper is None:
            _sweeper = Sweeper(client_factory)
        return _sweeper
