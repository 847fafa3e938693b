"""What each backend can do on this host, and which limits it enforces (for the CLI and UI)."""

from __future__ import annotations

import shutil
from dataclasses import asdict

from .core import Limits
from .errors import SandboxUnavailable


def doctor() -> dict:
    """Describe what each backend can do on this host, and which limits it enforces."""
    from . import image
    from .bwrap_backend import BwrapBackend, Cgroup, seccomp_program
    from .docker_backend import LABEL, connect

    limits = Limits()
    report: dict = {"limits": asdict(limits), "image": image.image_tag()}
    try:
        client = connect(timeout=5)
        report["docker"] = {"daemon": client.version().get("Version"), "ok": True}
        try:
            client.images.get(image.image_tag())
            report["docker"]["image_present"] = True
        except Exception:
            report["docker"].update(image_present=False, ok=False,
                                    error="image missing: run `sea sandbox build`")
        report["docker"]["leftover_containers"] = len(
            client.containers.list(all=True, sparse=True, filters={"label": LABEL}))
        report["docker"]["enforced"] = [
            "network none", "memory+swap", "cpu share", "pids", "wall time (host)",
            "read-only root", "noexec /tmp tmpfs", "small /dev/shm",
            "fresh uids per run for runner, tests and implementation",
            "all capabilities dropped but the runner's setuid/setgid/kill", "no-new-privileges",
            "default seccomp plus the runner's (no vsock, io_uring, foreign ABI)",
            "nofile/fsize/core ulimits", "capped logs"]
    except SandboxUnavailable as exc:
        report["docker"] = {"ok": False, "error": str(exc)}
    bwrap: dict = {"installed": bool(shutil.which("bwrap"))}
    try:
        BwrapBackend(limits).check()
        Cgroup(limits).remove()
        seccomp_program().close()
        bwrap.update(ok=True, enforced=[
            "network/pid/ipc/uts/user namespaces", "read-only root and /dev", "tmpfs /tmp",
            "clean environment", "memory, pids and CPU cgroup", "nofile/fsize/core rlimits",
            "wall time (host)", "no capabilities", "seccomp deny-list",
            "fresh uids per run for runner, tests and implementation"],
            not_enforced=["noexec /tmp"])
    except SandboxUnavailable as exc:
        bwrap.update(ok=False, error=str(exc))
    report["bwrap"] = bwrap
    return report
