"""The machine, the library versions, the commit and the date of a run.

Every page of the report says where its numbers come from. The suite records
this when it runs (``properties/results.py`` stores it in the results file), so a
report built elsewhere (CI publishing the site) still names the machine that ran
the checks. Only the standard library is needed: describing the machine must
never be the thing that fails.

:func:`compute` says what decides the timings: the BLAS and OpenMP libraries
loaded (threadpoolctl, where installed: library, version, the CPU kernel
OpenBLAS chose, threads), NumPy's BLAS and torch's thread counts, and every
``OPENBLAS_*``, ``OMP_*``, ``MKL_*`` (and similar) variable set: with
``OPENBLAS_CORETYPE=Haswell`` OpenBLAS runs its Haswell kernels on a machine
where it would pick SkylakeX.
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


#: Prefixes of the environment variables that change how the numeric
#: libraries run (kernel choice, thread counts, allocation).
COMPUTE_VARIABLE_PREFIXES: tuple[str, ...] = (
    "OPENBLAS_",
    "GOTO",
    "OMP_",
    "MKL_",
    "KMP_",
    "BLIS_",
    "VECLIB_",
    "NUMEXPR_",
    "NNSPEC_BENCH_",
    "CUDA_VISIBLE_DEVICES",
)


def usable_cores() -> int | None:
    """The cores this process may run on (affinity, container limits)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def compute_variables() -> dict[str, str]:
    """The environment variables of :data:`COMPUTE_VARIABLE_PREFIXES` that are set."""
    return {
        name: value
        for name, value in sorted(os.environ.items())
        if name.startswith(COMPUTE_VARIABLE_PREFIXES)
    }


def thread_pools() -> list[dict[str, Any]]:
    """threadpoolctl's view of the BLAS/OpenMP libraries loaded (NumPy's at least).

    Each: ``user_api`` (blas, openmp), ``internal_api`` (openblas, mkl, ...),
    ``version``, ``threading_layer``, ``architecture`` (OpenBLAS's kernel, e.g.
    Haswell or SkylakeX), ``num_threads`` and the library file's name. Empty
    without threadpoolctl.
    """
    try:
        import numpy  # noqa: F401  (loads NumPy's BLAS for threadpoolctl to see)
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    try:
        pools = threadpool_info()
    except Exception:  # an odd library must not stop the report
        return []
    keys = (
        "user_api",
        "internal_api",
        "version",
        "threading_layer",
        "architecture",
        "num_threads",
    )
    described = []
    for pool in pools:
        entry = {key: pool.get(key) for key in keys if pool.get(key) is not None}
        entry["library"] = Path(str(pool.get("filepath", ""))).name
        described.append(entry)
    return described


def torch_threads() -> dict[str, Any] | None:
    """torch's intra- and inter-op thread counts, where torch is already imported.

    Only read from a torch already loaded (the benchmarks' process): importing
    torch here would cost seconds and change nothing the run used.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        return {
            "intra_op": torch.get_num_threads(),
            "inter_op": torch.get_num_interop_threads(),
            "parallel_info": _first_lines(torch.__config__.parallel_info(), 6),
        }
    except Exception:
        return None


def _first_lines(text: str, count: int) -> str:
    return "\n".join(line for line in text.splitlines()[:count] if line.strip())


def compute() -> dict[str, Any]:
    """What decides the timings: CPU, cores, BLAS and threads, variables."""
    pools = thread_pools()
    blas = [pool for pool in pools if pool.get("user_api") == "blas"]
    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "blas": blas[0] if blas else None,
        "thread_pools": pools,
        "torch_threads": torch_threads(),
        "variables": compute_variables(),
    }


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
        "compute": compute(),
        "commit": commit(root),
    }
