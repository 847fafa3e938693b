"""`sea sandbox ...` and `sea bench sandbox`: build, inspect and exercise the sandbox."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from . import BACKENDS, make_sandbox
from .core import Limits, SandboxUnavailable


def emit(payload: dict, as_json: bool, lines: list[str] | None = None) -> None:
    """Print ``payload`` as JSON, or ``lines`` (default: key: value) for people."""
    if as_json:
        print(json.dumps(payload, indent=2, default=str))
        return
    for line in lines if lines is not None else [f"{k}: {v}" for k, v in payload.items()]:
        print(line)


def _limits(args) -> Limits:
    limits = Limits()
    if getattr(args, "timeout", None):
        limits = replace(limits, timeout=float(args.timeout))
    return limits


def cmd_build(args) -> int:
    """Build the sandbox image (and the offline root filesystem when built offline)."""
    from . import image
    from .docker_backend import connect

    log = (lambda m: print(m, file=sys.stderr)) if args.json else print
    try:
        client = connect()
    except SandboxUnavailable as exc:
        if args.method == "offline":
            root = image.build_rootfs(log)  # bubblewrap can still use the root filesystem
            emit({"image": None, "rootfs": str(root), "error": str(exc)}, args.json)
            return 1
        emit({"image": None, "error": str(exc)}, args.json)
        return 1
    tag = image.image_tag()
    try:
        client.images.get(tag)
        present = not args.force
    except Exception:
        present = False
    if present:
        log(f"{tag} is already built (--force rebuilds it)")
        if args.method == "offline":
            image.build_rootfs(log)
    else:
        tag = image.build(client, args.method, log)
    emit({"image": tag, "rootfs": str(image.rootfs_dir()) if image.rootfs_dir().exists()
          else None}, args.json)
    return 0


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


def cmd_doctor(args) -> int:
    """Print what works."""
    report = doctor()
    if args.json:
        emit(report, True)
    else:
        for backend in ("docker", "bwrap"):
            info = report[backend]
            state = "ok" if info.get("ok") else f"unavailable: {info.get('error')}"
            print(f"{backend}: {state}")
            for item in info.get("enforced", []) if info.get("ok") else []:
                print(f"  enforces {item}")
            for item in info.get("not_enforced", []):
                print(f"  does not enforce {item}")
        print(f"image: {report['image']}")
    return 0 if report["docker"].get("ok") or report["bwrap"].get("ok") else 1


def cmd_verify(args) -> int:
    """Run a test file against a code file."""
    sandbox = make_sandbox(args.backend, limits=_limits(args))
    try:
        report = sandbox.verify(Path(args.code).read_text(), Path(args.tests).read_text(),
                                files=args.data)
    finally:
        sandbox.close()
    lines = [report.summary()] + [f"  {t.outcome:8} {t.name}" for t in report.tests]
    lines += [f"--- {t.name}\n{t.message}" for t in report.failures()]
    emit(report.model_dump(), args.json, lines)
    return 0 if report.ok else 1


def cmd_call(args) -> int:
    """Call one function of a code file with JSON arguments."""
    try:
        call_args = json.loads(args.args)
        if not isinstance(call_args, dict):
            raise ValueError("arguments must be a JSON object")
    except ValueError as exc:
        emit({"ok": False, "error": f"--args is not a JSON object: {exc}"}, args.json)
        return 2
    sandbox = make_sandbox(args.backend, limits=_limits(args))
    try:
        result = sandbox.call(Path(args.code).read_text(), args.function, call_args,
                              files=args.data)
    finally:
        sandbox.close()
    emit(result.model_dump(), args.json,
         [json.dumps(result.result) if result.ok else f"error: {result.describe_error()}"])
    return 0 if result.ok else 1


def cmd_clean(args) -> int:
    """Remove every sandbox container left on this host."""
    from .docker_backend import connect, remove_leftovers

    removed = remove_leftovers(connect(), everything=True)
    emit({"removed": removed}, args.json)
    return 0


BENCH_IMPL = "def add(a, b):\n    return a + b\n"
BENCH_TESTS = "from tool import add\n\n" + "\n".join(
    f"def test_add_{i}():\n    assert add({i}, 1) == {i + 1}\n" for i in range(5))


def _percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"p50": round(statistics.median(ordered), 4),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 4),
            "n": len(ordered)}


def _pool_memory_mb(size: int) -> float | None:
    """Measure what an idle warm pool of ``size`` costs the host (container memory)."""
    from .docker_backend import DockerBackend

    backend = DockerBackend(pool_size=size)
    try:
        if not backend.pool.wait_ready(60):
            return None
        time.sleep(1.0)
        total = 0
        ids = []
        for container in backend.pool.waiting():
            stats = container.stats(stream=False)
            total += stats.get("memory_stats", {}).get("usage", 0)
            ids.append(container.id)
        # Each container also costs the host a containerd shim process outside its cgroup.
        for status in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                cmdline = status.read_bytes()
                if b"containerd-shim" in cmdline and any(i.encode() in cmdline for i in ids):
                    rss = (status.parent / "statm").read_text().split()[1]
                    total += int(rss) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, IndexError, ValueError):
                continue
        return round(total / 2**20, 1)
    finally:
        backend.close()


def bench(runs: int) -> dict:
    """Time verify and call on cold containers, the warm pool and bubblewrap."""
    results: dict = {"runs": runs, "limits": asdict(Limits())}
    for label, backend, pool in (("docker_cold", "docker", 0), ("docker_warm", "docker", 2),
                                 ("bwrap", "bwrap", 0)):
        try:
            sandbox = make_sandbox(backend, pool_size=pool)
        except SandboxUnavailable as exc:
            results[label] = {"error": str(exc)}
            continue
        pool_obj = getattr(sandbox.backend, "pool", None)
        timings: dict[str, list[float]] = {"verify": [], "call": []}
        error = ""
        try:
            for _ in range(runs):
                for op in ("verify", "call"):
                    if pool_obj:
                        pool_obj.wait_ready(60)  # measure the pool as an idle app sees it
                    start = time.perf_counter()
                    if op == "verify":
                        outcome = sandbox.verify(BENCH_IMPL, BENCH_TESTS)
                        good = outcome.ok
                    else:
                        outcome = sandbox.call(BENCH_IMPL, "add", {"a": 1, "b": 2})
                        good = outcome.ok and outcome.result == 3
                    timings[op].append(time.perf_counter() - start)
                    if not good:
                        error = f"{op} did not succeed: {outcome.model_dump_json()[:300]}"
                        break
                if error:
                    break
        finally:
            sandbox.close()
        results[label] = {op: _percentiles(t) for op, t in timings.items() if t}
        if error:
            results[label]["error"] = error
    cold, warm = results.get("docker_cold", {}), results.get("docker_warm", {})
    if "verify" in cold and "verify" in warm:
        results["warm_speedup_verify"] = round(cold["verify"]["p50"] / warm["verify"]["p50"], 2)
    try:
        results["idle_pool_of_4_mb"] = _pool_memory_mb(4)
    except SandboxUnavailable as exc:
        results["idle_pool_of_4_mb"] = f"unavailable: {exc}"
    return results


def cmd_bench(args) -> int:
    """Print the sandbox benchmark."""
    results = bench(args.runs)
    emit(results, args.json)
    return 0


def add_parsers(sub, bench_sub) -> None:
    """Add `sea sandbox ...` to ``sub`` and `sea bench sandbox` to ``bench_sub``."""
    sandbox = sub.add_parser("sandbox", help="build, check and use the sandbox")
    ssub = sandbox.add_subparsers(dest="sandbox_command", required=True)

    def common(p: argparse.ArgumentParser, run: bool = False) -> None:
        p.add_argument("--json", action="store_true", help="print JSON")
        if run:
            p.add_argument("--data", action="append", default=[], help="input file (repeat)")
            p.add_argument("--timeout", type=float, help="wall-time limit in seconds")
            p.add_argument("--backend", choices=BACKENDS, default="docker")

    p = ssub.add_parser("build", help="build the sandbox image")
    p.add_argument("--method", choices=["auto", "dockerfile", "offline"], default="auto")
    p.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    common(p)
    p.set_defaults(func=cmd_build)
    p = ssub.add_parser("doctor", help="tell what works and which limits are enforced")
    common(p)
    p.set_defaults(func=cmd_doctor)
    p = ssub.add_parser("verify", help="run a pytest file against a code file")
    p.add_argument("--code", required=True)
    p.add_argument("--tests", required=True)
    common(p, run=True)
    p.set_defaults(func=cmd_verify)
    p = ssub.add_parser("call", help="call one function of a code file")
    p.add_argument("--code", required=True)
    p.add_argument("--function", required=True)
    p.add_argument("--args", default="{}")
    common(p, run=True)
    p.set_defaults(func=cmd_call)
    p = ssub.add_parser("clean", help="remove every leftover sandbox container")
    common(p)
    p.set_defaults(func=cmd_clean)

    p = bench_sub.add_parser("sandbox", help="verify/call latency: cold, warm pool, bwrap")
    p.add_argument("--runs", type=int, default=20)
    common(p)
    p.set_defaults(func=cmd_bench)
