"""The machine, the library versions, the commit and the date of a run.

Every page of the report says where its numbers come from. The suite records
this when it runs (``properties/results.py`` stores it in the results file), so a
report built elsewhere (CI publishing the site) still names the machine that ran
the checks. Only the standard library is used: describing the machine must never
be the thing that fails.
"""

from __future__ import annotations

import datetime as _datetime
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

#: The distributions whose versions the report shows, in this order.
LIBRARIES: tuple[str, ...] = (
    "numpy",
    "torch",
    "cupy-cuda12x",
    "cupy",
    "hypothesis",
    "pytest",
    "pytest-xdist",
    "pytest-timeout",
    "pytest-benchmark",
    "asv",
    "jinja2",
    "matplotlib",
)

ROOT = Path(__file__).resolve().parents[1]


def _run(command: list[str], cwd: Path | None = None) -> str | None:
    """The stripped stdout of ``command``, or ``None`` if it cannot run."""
    try:
        completed = subprocess.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.strip()


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux), else the platform's."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        name = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
        if name:
            return name
    return platform.processor() or platform.machine() or "unknown CPU"


def memory_gib() -> float | None:
    """Physical memory in GiB, where the platform says."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return round(pages * page_size / 2**30, 1)


def gpus() -> list[str]:
    """The NVIDIA GPUs ``nvidia-smi`` sees (name and memory), else none."""
    if shutil.which("nvidia-smi") is None:
        return []
    text = _run(
        [
            "nvidia-smi",
            "--query-gpu=name,memory.total,driver_version",
            "--format=csv,noheader",
        ]
    )
    if not text:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def library_versions() -> dict[str, str]:
    """The installed version of each of :data:`LIBRARIES` (absent ones left out)."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def commit(root: Path = ROOT) -> dict[str, Any]:
    """The commit checked out at ``root``: hash, short hash, branch, dirty flag.

    CI checkouts are often detached; ``GITHUB_SHA`` and ``GITHUB_REF_NAME`` then
    fill in what git cannot say.
    """
    sha = _run(["git", "rev-parse", "HEAD"], cwd=root) or os.environ.get("GITHUB_SHA")
    branch = _run(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=root)
    if not branch or branch == "HEAD":
        branch = os.environ.get("GITHUB_REF_NAME") or branch
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root)
    info: dict[str, Any] = {
        "sha": sha,
        "short": sha[:10] if sha else None,
        "branch": branch,
        "dirty": bool(status) if status is not None else None,
    }
    server = os.environ.get("GITHUB_SERVER_URL")
    repository = os.environ.get("GITHUB_REPOSITORY")
    run_id = os.environ.get("GITHUB_RUN_ID")
    if server and repository and sha:
        info["url"] = f"{server}/{repository}/commit/{sha}"
    if server and repository and run_id:
        info["run_url"] = f"{server}/{repository}/actions/runs/{run_id}"
    return info


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return (
        _datetime.datetime.now(_datetime.timezone.utc)
        .replace(microsecond=0)
        .isoformat()
    )


def describe(root: Path = ROOT) -> dict[str, Any]:
    """Everything the footer of every page shows, as plain JSON-able data."""
    return {
        "date": now(),
        "machine": {
            "cpu": cpu_model(),
            "logical_cores": os.cpu_count(),
            "memory_gib": memory_gib(),
            "gpus": gpus(),
            "platform": platform.platform(),
            "architecture": platform.machine(),
        },
        "versions": library_versions(),
        "commit": commit(root),
    }
