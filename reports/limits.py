"""The machine's limits, measured: what a kernel's throughput is read against.

A conv kernel is compute-bound, so its GFLOP/s reads against the best GEMM the
machine's BLAS reaches (NumPy ``matmul`` on square float32 and float64
matrices); an optimizer step is memory-bound, so its GB/s reads against a large
array copy (bytes read plus bytes written). On a machine with an NVIDIA GPU and
PyTorch built for it, the same two figures are measured on the GPU. These are
practical ceilings, measured in a second or two, not the datasheet's peaks:
a kernel at 80 % of them is doing well.

Each figure is the best of several calls, and is measured the way the
benchmarks are judged: its spread (interquartile range of the calls' times
over their median) is recorded under ``spread``, and a figure whose spread
exceeds :data:`benchmarks.common.NOISE_THRESHOLD` is listed under ``noisy``:
a busy machine gives a low ceiling, which flatters every share of it. The
machine's load before and after the probe is recorded too.

``python -m reports probe --out limits.json`` writes them; ``build --limits``
reads them.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import NOISE_THRESHOLD, machine_load


def _best_seconds(function: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """The best of ``repeats`` timed calls, and their spread."""
    function()  # warm-up: thread pools, page faults, kernels loaded
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return min(samples), sample_spread(samples)


def sample_spread(samples: list[float]) -> float:
    """Interquartile range over median of ``samples`` (0 for fewer than two)."""
    if len(samples) < 2:
        return 0.0
    low, _, high = statistics.quantiles(samples, n=4, method="inclusive")
    median = statistics.median(samples)
    return (high - low) / median if median > 0 else 0.0


def _with_spreads(limits: dict[str, Any], spreads: dict[str, float]) -> dict[str, Any]:
    """``limits`` with the spread of each figure and the list of noisy ones."""
    limits["spread"] = {name: round(value, 4) for name, value in spreads.items()}
    limits["noisy"] = [
        name for name, value in spreads.items() if value > NOISE_THRESHOLD
    ]
    return limits


def _torch_cpu_gemm(
    matrix_size: int, dtype: str, repeats: int
) -> tuple[float, float] | None:
    """torch's CPU GEMM GFLOP/s and its spread, when torch is installed (its BLAS
    may beat NumPy's)."""
    if importlib.util.find_spec("torch") is None:
        return None
    try:
        import torch

        kind = getattr(torch, dtype)
        a = torch.randn(matrix_size, matrix_size, dtype=kind)
        b = torch.randn(matrix_size, matrix_size, dtype=kind)
        seconds, spread = _best_seconds(lambda: torch.matmul(a, b), repeats)
    except Exception:  # a broken torch must not stop the report
        return None
    return 2 * matrix_size**3 / seconds / 1e9, spread


def probe_cpu(
    matrix_size: int = 1536, copy_mib: int = 128, repeats: int = 9
) -> dict[str, Any]:
    """GEMM GFLOP/s (float32, float64) and copy GB/s on the CPU.

    The GEMM figure is the better of NumPy's and torch's ``matmul``: the
    ceiling is what the machine can reach, whichever library gets there.
    """
    import numpy as np

    generator = np.random.default_rng(0)
    limits: dict[str, Any] = {}
    spreads: dict[str, float] = {}
    for dtype in ("float32", "float64"):
        a = generator.standard_normal((matrix_size, matrix_size)).astype(dtype)
        b = generator.standard_normal((matrix_size, matrix_size)).astype(dtype)
        out = np.empty_like(a)
        seconds, spread = _best_seconds(
            lambda a=a, b=b, out=out: np.matmul(a, b, out=out), repeats
        )
        # The better library sets the figure, and its spread with it.
        candidates = [(2 * matrix_size**3 / seconds / 1e9, spread)]
        candidates.append(_torch_cpu_gemm(matrix_size, dtype, repeats) or (0.0, 0.0))
        limits[f"gflops_{dtype}"], spreads[f"gflops_{dtype}"] = max(candidates)
    count = copy_mib * 2**20 // 8
    source = np.ones(count)
    target = np.empty_like(source)
    seconds, spreads["gbps"] = _best_seconds(lambda: np.copyto(target, source), repeats)
    limits["gbps"] = 2 * source.nbytes / seconds / 1e9
    limits["method"] = (
        f"the better of NumPy's and torch's matmul {matrix_size}x{matrix_size} "
        f"(best of {repeats}); NumPy copy of {copy_mib} MiB, read + write (best of "
        f"{repeats}): a working set that fits in cache can exceed it"
    )
    return _with_spreads(limits, spreads)


def probe_gpu(
    matrix_size: int = 4096, copy_mib: int = 512, repeats: int = 10
) -> dict[str, Any] | None:
    """The same on an NVIDIA GPU through PyTorch, or ``None`` without one."""
    if shutil.which("nvidia-smi") is None or importlib.util.find_spec("torch") is None:
        return None
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        device = torch.device("cuda")
        limits: dict[str, Any] = {"name": torch.cuda.get_device_name(device)}
        spreads: dict[str, float] = {}
        for dtype_name, dtype in (
            ("float32", torch.float32),
            ("float64", torch.float64),
        ):
            a = torch.randn(matrix_size, matrix_size, device=device, dtype=dtype)
            b = torch.randn(matrix_size, matrix_size, device=device, dtype=dtype)

            def gemm(a: Any = a, b: Any = b) -> None:
                torch.matmul(a, b)
                torch.cuda.synchronize()

            # TF32 would inflate float32 past what an exact-float32 kernel can reach.
            previous = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = False
            try:
                seconds, spreads[f"gflops_{dtype_name}"] = _best_seconds(gemm, repeats)
            finally:
                torch.backends.cuda.matmul.allow_tf32 = previous
            limits[f"gflops_{dtype_name}"] = 2 * matrix_size**3 / seconds / 1e9
        source = torch.ones(copy_mib * 2**20 // 4, device=device)
        target = torch.empty_like(source)

        def copy() -> None:
            target.copy_(source)
            torch.cuda.synchronize()

        seconds, spreads["gbps"] = _best_seconds(copy, repeats)
        limits["gbps"] = 2 * source.numel() * 4 / seconds / 1e9
        limits["method"] = (
            f"torch.matmul {matrix_size}x{matrix_size}, TF32 off (best of {repeats}); "
            f"device-to-device copy of {copy_mib} MiB, read + write (best of "
            f"{repeats})"
        )
        return _with_spreads(limits, spreads)
    except Exception as error:  # a broken driver must not stop the report
        return {"error": f"{type(error).__name__}: {error}"}


def probe() -> dict[str, Any]:
    """Every limit this machine has: ``{"cpu": {...}, "gpu": {...} or None}``."""
    from reports import environment

    load_before = machine_load()
    cpu, gpu = probe_cpu(), probe_gpu()
    return {
        "kind": "nnspec-limits",
        "date": environment.now(),
        "machine": environment.cpu_model(),
        "noise_threshold": NOISE_THRESHOLD,
        "load_before": load_before,
        "load_after": machine_load(),
        "compute": environment.compute(),
        "cpu": cpu,
        "gpu": gpu,
    }


def load(path: Path | str | None) -> dict[str, Any]:
    """Read a limits file; an absent or unreadable one gives no limits."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def limit_for(
    limits: dict[str, Any], device: str, unit: str, dtype: str = "float32"
) -> float | None:
    """The ceiling for a throughput in ``unit`` (GFLOP/s or GB/s) on ``device``."""
    entry = limits.get("gpu" if device == "gpu" else "cpu")
    if not isinstance(entry, dict):
        return None
    key = "gbps" if unit.upper().startswith("GB") else f"gflops_{dtype}"
    value = entry.get(key)
    return float(value) if isinstance(value, (int, float)) and value > 0 else None
