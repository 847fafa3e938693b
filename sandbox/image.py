"""Build the sandbox image: from the Dockerfile where images can be pulled, else offline.

The offline path bootstraps a Debian root filesystem from the apt mirror this machine already
uses, adds the runner and imports it as an image. The same root filesystem serves the
bubblewrap backend.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
RUNNER = PACKAGE_DIR / "runner.py"
DOCKERFILE = PACKAGE_DIR / "Dockerfile"
IMAGE_REPOSITORY = "sea-sandbox"
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ["python3", "python3-pytest", "python3-pandas", "python3-numpy",
                   "python3-openpyxl"]
IMAGE_CHANGES = [
    "USER 65534:65534",
    "WORKDIR /tmp",
    "ENV PYTHONDONTWRITEBYTECODE=1 PYTEST_DISABLE_PLUGIN_AUTOLOAD=1",
    'CMD ["python3", "-I", "/opt/sea/runner.py"]',
]


def image_tag() -> str:
    """Return the image name for this runner: a changed runner needs a rebuilt image."""
    digest = hashlib.sha256(RUNNER.read_bytes() + DOCKERFILE.read_bytes()).hexdigest()[:12]
    return f"{IMAGE_REPOSITORY}:{digest}"


def rootfs_dir() -> Path:
    """Return where the offline root filesystem lives (also bubblewrap's root)."""
    override = os.environ.get("SEA_SANDBOX_ROOTFS")
    if override:
        return Path(override)
    home = Path(os.environ.get("SEA_HOME") or Path.cwd() / ".sea").resolve()
    return home / "sandbox" / "rootfs"


def apt_mirror() -> str:
    """Read the Debian mirror from this machine's own apt sources."""
    candidates = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in candidates:
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split(":", 1)[1].split()[0]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            match = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+\S+", line)
            if match and "security" not in match.group(1):
                return match.group(1)
    raise RuntimeError("no Debian mirror found in /etc/apt/sources.list(.d)")


def build_rootfs(log: Callable[[str], None] = print, force: bool = False) -> Path:
    """Bootstrap the Debian root filesystem with Python, pytest, pandas, numpy, openpyxl."""
    target = rootfs_dir()
    if (target / "usr/bin/python3").exists() and not force:
        log(f"root filesystem present at {target}")
        return target
    if not shutil.which("debootstrap"):
        raise RuntimeError("debootstrap is not installed (apt-get install debootstrap)")
    mirror = apt_mirror()
    staging = target.with_name("rootfs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    log(f"debootstrap {DEBIAN_SUITE} from the machine's apt mirror into {staging}")
    subprocess.run(
        ["debootstrap", "--variant=minbase", "--include=" + ",".join(DEBIAN_PACKAGES),
         DEBIAN_SUITE, str(staging), mirror],
        check=True, stdout=subprocess.DEVNULL,
    )
    shutil.rmtree(staging / "var/cache/apt/archives", ignore_errors=True)
    (staging / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # only a complete root filesystem ever has the final name
    return target


def build_offline(client, log: Callable[[str], None] = print) -> str:
    """Import the root filesystem plus the runner as the sandbox image."""
    root = build_rootfs(log)
    tag = image_tag()
    with tempfile.TemporaryDirectory() as tmp:
        tar_path = Path(tmp) / "rootfs.tar"
        log("packing the root filesystem")
        with tarfile.open(tar_path, "w") as tar:
            tar.add(root, arcname=".", filter=lambda info: None
                    if info.name.startswith("./opt/sea") else info)
            info = tarfile.TarInfo("./opt/sea/runner.py")
            data = RUNNER.read_bytes()
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        log(f"importing {tag}")
        repository, version = tag.split(":")
        client.api.import_image_from_file(str(tar_path), repository=repository, tag=version,
                                          changes=IMAGE_CHANGES)
    return tag


def build_dockerfile(client, log: Callable[[str], None] = print) -> str:
    """Build the image from the Dockerfile (needs a reachable image registry)."""
    tag = image_tag()
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(DOCKERFILE, Path(tmp) / "Dockerfile")
        shutil.copy(RUNNER, Path(tmp) / "runner.py")
        log(f"docker build {tag}")
        client.images.build(path=tmp, tag=tag, rm=True, pull=True)
    return tag


def remove_replaced(client, keep: str, log: Callable[[str], None] = print) -> list[str]:
    """Remove the sandbox images that older runners needed, so upgrades do not pile them up.

    Removal is never forced: Docker keeps an image a container still uses. Return the tags
    removed.
    """
    from docker.errors import APIError

    removed = []
    for found in client.images.list(name=IMAGE_REPOSITORY):
        for tag in found.tags:
            if tag == keep or not tag.startswith(f"{IMAGE_REPOSITORY}:"):
                continue
            try:
                client.images.remove(tag)
            except APIError as exc:
                log(f"kept {tag}: {exc.explanation or exc}")
                continue
            log(f"removed {tag} (an older runner's image)")
            removed.append(tag)
    return removed


def build(client, method: str = "auto", log: Callable[[str], None] = print) -> str:
    """Build the sandbox image by ``method``: dockerfile, offline, or auto (try, then offline)."""
    if method == "dockerfile":
        return build_dockerfile(client, log)
    if method == "offline":
        return build_offline(client, log)
    try:
        return build_dockerfile(client, log)
    except Exception as exc:  # no registry reachable: fall back to Debian's packages
        log(f"Dockerfile build failed ({str(exc)[:200]}); building offline instead")
        return build_offline(client, log)
