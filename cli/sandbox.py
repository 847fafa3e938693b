"""`sea sandbox ...`: build, inspect and exercise the sandbox."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from sandbox import BACKENDS, Limits, SandboxUnavailable, make_sandbox
from sandbox.doctor import doctor

from .output import emit


def _limits(args) -> Limits:
    limits = Limits()
    if getattr(args, "timeout", None) is not None:  # 0 is refused by Limits, not ignored
        limits = replace(limits, timeout=float(args.timeout))
    return limits


def cmd_build(args) -> int:
    """Build the sandbox image (and the offline root filesystem when built offline)."""
    from sandbox import image
    from sandbox.docker_backend import connect

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
    image.remove_replaced(client, tag, log)
    emit({"image": tag, "rootfs": str(image.rootfs_dir()) if image.rootfs_dir().exists()
          else None}, args.json)
    return 0


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


def _source(path: str, what: str) -> str:
    """Return the text of the ``what`` file at ``path``; ValueError naming it if not UTF-8."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"the {what} file {path} is not UTF-8 text (byte "
                         f"{exc.object[exc.start]:02x} at offset {exc.start})") from None


def cmd_verify(args) -> int:
    """Run a test file against a code file."""
    code, tests = _source(args.code, "code"), _source(args.tests, "test")
    sandbox = make_sandbox(args.backend, limits=_limits(args))
    try:
        report = sandbox.verify(code, tests, files=args.data)
    finally:
        sandbox.close()
    lines = [report.summary()] + [f"  {t.outcome:8} {t.name}" for t in report.tests]
    lines += [f"--- collection error\n{error}" for error in report.collection_errors]
    lines += [f"--- {t.name}\n{t.message}" for t in report.failures()]
    emit(report.model_dump(), args.json, lines)
    return 0 if report.ok else 1


def cmd_call(args) -> int:
    """Call one function of a code file with JSON arguments."""
    try:
        call_args = json.loads(args.args)
        if not isinstance(call_args, dict):
            raise ValueError("arguments must be a JSON object")
    except (ValueError, RecursionError) as exc:  # RecursionError: nested past the parser
        emit({"ok": False, "error": f"--args is not a JSON object: {exc}"}, args.json)
        return 2
    code = _source(args.code, "code")
    sandbox = make_sandbox(args.backend, limits=_limits(args))
    try:
        result = sandbox.call(code, args.function, call_args, files=args.data)
    finally:
        sandbox.close()
    emit(result.model_dump(), args.json,
         [json.dumps(result.result) if result.ok else f"error: {result.describe_error()}"])
    return 0 if result.ok else 1


def cmd_clean(args) -> int:
    """Remove the sandbox containers whose owner process is gone (``--all``: every one)."""
    from sandbox.docker_backend import connect
    from sandbox.ownership import sweep

    removed = sweep(connect(), everything=args.all)
    emit({"removed": removed}, args.json)
    return 0


def add_parsers(sub) -> None:
    """Add `sea sandbox ...` to ``sub``."""
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
    p = ssub.add_parser("clean", help="remove sandbox containers whose owner process is gone")
    p.add_argument("--all", action="store_true",
                   help="remove every sandbox container, live processes' too")
    common(p)
    p.set_defaults(func=cmd_clean)

