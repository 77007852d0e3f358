"""What every op family of the array backend stands on.

:class:`ArrayCore` is the base of the family mixins that
:class:`backends.array.ArrayBackend` is composed of. It holds:

* construction: the array namespace ``xp``, the ``accelerator`` and the
  thread settings (each family mixin adds its own tuning attributes);
* moving arrays between host and device (:meth:`ArrayCore.asarray`,
  :meth:`ArrayCore.to_numpy`, :meth:`ArrayCore._from_host`), waiting for the
  device (:meth:`ArrayCore.synchronize`), strided views
  (:meth:`ArrayCore._as_strided`) and the random generator
  (:meth:`ArrayCore._uniform`): what a subclass for another array library
  overrides;
* the argument checks every op runs first (:meth:`ArrayCore._float`,
  :meth:`ArrayCore._upstream`), over the reference's shared checks;
* the helpers more than one family uses: padding (:meth:`ArrayCore._pad`),
  the window of a kernel offset (:func:`offset_index`), and running
  independent copies on threads (:meth:`ArrayCore._split`,
  :meth:`ArrayCore._parallel`, :meth:`ArrayCore.thread_count`) and
  independent BLAS-calling tasks on threads (:meth:`ArrayCore._parallel_blas`,
  :meth:`ArrayCore._blas_tasks`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from backends.array import blocked, fused
from reference._checks import (
    require_array_fits,
    require_float_kind,
    require_given,
    require_ndim,
    require_shape,
)

__all__ = ["Array", "ArrayCore", "UnavailableNamespace", "offset_index"]

Array = Any

#: Copies of fewer elements run on one thread: waking one costs tens of
#: microseconds, about what copying 2**17 float32 in cache takes.
PARALLEL_MIN_ELEMENTS = 1 << 17

#: :meth:`ArrayCore._parallel_blas` runs its tasks on one-thread BLAS only when
#: each thread gets at least this many (measured: ResNet's 3x3 256->256 14x14
#: backward has 2 chunks and ran 1.4x slower split over 2 threads than with
#: BLAS's own threads; 64->64 56x56, 16 chunks, 1.5x faster split).
TASKS_PER_THREAD = 2


def offset_index(i: int, j: int, stride: tuple[int, int], size_out: tuple[int, int]):
    """The input rows and columns that offset ``(i, j)`` meets in every window."""
    rows = slice(i, i + stride[0] * (size_out[0] - 1) + 1, stride[0])
    cols = slice(j, j + stride[1] * (size_out[1] - 1) + 1, stride[1])
    return (slice(None), slice(None), rows, cols)


class UnavailableNamespace:
    """Stands in for an array namespace that cannot be used here."""

    def __init__(self, reason: str) -> None:
        self._reason = reason

    def __getattr__(self, attribute: str) -> Any:
        raise RuntimeError(f"backend unavailable: {self._reason}")


class _OneThread:
    """A backend whose copies run in order on the calling thread.

    What :meth:`ArrayCore._parallel_blas` hands each task that runs on a
    thread of its own; everything else is the wrapped backend's.
    """

    def __init__(self, backend: ArrayCore) -> None:
        self._backend = backend

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._backend, attribute)

    def thread_count(self) -> int:
        return 1

    def _split(self, length: int, elements: int) -> list[slice]:
        return [slice(0, length)]

    def _parallel(self, calls: Sequence[Callable[[], object]], elements=None) -> None:
        for call in calls:
            call()


def _run_in_order(tasks: Sequence[Callable[[Any], object]], backend: Any) -> None:
    for task in tasks:
        task(backend)


class ArrayCore:
    """Construction, moving arrays, argument checks and threads (see the module)."""

    name: str = "array"
    device: str = "cpu"
    dtypes: tuple[str, ...] = ("float32", "float64")
    unavailable_reason: str | None = None

    def __init__(self, xp: Any) -> None:
        self.xp = xp
        self.accelerator: str | None = fused.default_accelerator() if xp is np else None
        self.threads: int | None = None
        self.parallel_min_elements = PARALLEL_MIN_ELEMENTS

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} device={self.device!r}>"

    # -- moving arrays ------------------------------------------------------

    def asarray(self, a: np.ndarray, dtype: str) -> Array:
        """A new native array holding ``a`` as ``dtype`` (never a view of ``a``)."""
        return self.xp.array(a, dtype=dtype, copy=True)

    def to_numpy(self, a: Array) -> np.ndarray:
        """A new host array holding ``a`` (never a view of ``a``)."""
        return np.array(a, copy=True)

    def synchronize(self) -> None:
        """Wait for queued device work: nothing to wait for on the CPU."""

    def _from_host(self, a: np.ndarray) -> Array:
        return self.xp.asarray(a)

    def _as_strided(self, a: Array, shape: tuple[int, ...], strides: tuple[int, ...]):
        return np.lib.stride_tricks.as_strided(
            a, shape=shape, strides=strides, writeable=False
        )

    def _uniform(self, seed: int, shape: tuple[int, ...]) -> Array:
        """``U[0, 1)`` draws (float64) from a generator seeded by ``seed``."""
        return np.random.default_rng(seed).random(shape)

    # -- argument checks ------------------------------------------------------

    def _float(self, name: str, value: Any, ndim: int | Sequence[int] | None = None):
        """``value`` as a native floating-point array (the shared checks)."""
        require_given(name, value)
        array = self.xp.asarray(value)
        require_float_kind(name, array.dtype.kind, array.dtype)
        if ndim is not None:
            require_ndim(name, array.shape, ndim)
        require_array_fits(name, array.shape, array.dtype.itemsize)
        return array

    def _all(self, condition: Array) -> bool:
        """Whether ``condition`` holds everywhere (one read-back on a GPU)."""
        return bool(self.xp.all(condition))

    def _upstream(self, dout: Any, shape: tuple[int, ...]) -> Array:
        dout = self._float("dout", dout)
        require_shape("dout", dout, shape)
        return dout

    # -- padding and parallel copies --------------------------------------------

    def _pad(self, x: Array, padding: tuple[int, int], value: float = 0.0) -> Array:
        """``x`` (NCHW) with ``padding`` rows and columns of ``value`` on both sides."""
        ph, pw = padding
        if ph == 0 and pw == 0:
            return x
        n, c, h, w = x.shape
        padded = self.xp.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)

        def copy(part: slice) -> None:
            padded[part, :, ph : ph + h, pw : pw + w] = x[part]

        parts = self._split(n, padded.size)
        self._parallel([functools.partial(copy, part) for part in parts])
        return padded

    def _split(self, length: int, elements: int) -> list[slice]:
        """An axis of ``length`` cut for :meth:`_parallel` (``elements``: the work).

        One slice unless this is NumPy, more than one thread is allowed and
        the work reaches ``parallel_min_elements``; else twice as many
        slices as threads, so that a thread slowed by a busy core takes fewer.
        """
        if self.xp is not np or elements < self.parallel_min_elements:
            return [slice(0, length)]
        threads = self.thread_count()
        if threads <= 1:
            return [slice(0, length)]
        return blocked.split(length, 2 * threads)

    def _parallel(self, calls: Sequence[Callable[[], object]], elements=None) -> None:
        """Run independent NumPy copies or ufunc passes on :meth:`thread_count` threads.

        (Never BLAS calls: BLAS has threads of its own.) With ``elements``
        below ``parallel_min_elements``, or on another array library, in
        order on this thread.
        """
        small = elements is not None and elements < self.parallel_min_elements
        if self.xp is not np or small or len(calls) < 2:
            for call in calls:
                call()
            return
        blocked.parallel(calls, self.thread_count())

    def _parallel_blas(self, tasks: Sequence[Callable[[Any], object]]) -> None:
        """Run independent ``tasks`` that call BLAS, each on one thread.

        Shorthand for :meth:`_blas_tasks` around these tasks alone.
        """
        with self._blas_tasks(len(tasks)) as run:
            run(tasks)

    @contextlib.contextmanager
    def _blas_tasks(self, count: int) -> Iterator[Callable[[Sequence[Any]], None]]:
        """Lend a runner of ``count`` independent BLAS-calling tasks for the block.

        Each task is called with the backend to run its work on. With NumPy,
        more than one thread, at least :data:`TASKS_PER_THREAD` tasks a thread
        (and ``threadpoolctl`` to hold BLAS to one thread), the tasks run on
        :meth:`thread_count` threads, each given this backend run on one
        thread (its copies in order): many small GEMMs, which BLAS runs on one
        thread anyway, then use every core. Otherwise they run in order on
        this thread, each given this backend.

        BLAS stays held to one thread for the whole block, so that the
        block's other BLAS calls (a filter transform before the tasks, a
        reduction after) do not wake BLAS's own threads: OpenBLAS's spin for
        a while after a call, on the cores the tasks need (measured: the 3x3
        64->64 56x56 Winograd forward, 8 tasks on 2 threads, took 9-14 ms
        with a 2-thread filter-transform GEMM before the tasks, 7.2-7.5 ms
        without).
        """
        threads = self.thread_count() if self.xp is np else 1
        # Fewer than two tasks a thread: a late or long task holds up the
        # whole call, and chunks that few are big enough for BLAS's own threads.
        parallel = threads > 1 and count >= TASKS_PER_THREAD * threads
        limit = blocked.single_threaded_blas() if parallel else None
        if limit is None:
            yield lambda tasks: _run_in_order(tasks, self)
            return
        one_thread = _OneThread(self)

        def run(tasks: Sequence[Callable[[Any], object]]) -> None:
            calls = [functools.partial(task, one_thread) for task in tasks]
            blocked.parallel(calls, threads)

        with limit:
            yield run

    def thread_count(self) -> int:
        """Threads for the optimizer passes and the copies: ``threads``, else BLAS's."""
        if self.threads is not None:
            return max(1, int(self.threads))
        return blocked.blas_threads()
