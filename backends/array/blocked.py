"""Optimizer updates in place, in cache-sized blocks, on NumPy's thread count.

An optimizer step is a handful of elementwise passes over ``param``, ``grad``
and the state (Adam: twelve ufunc calls). Done over the whole arrays, every
pass streams them from memory again; done block by block, the first pass of a
block brings it into the core's L2 cache and the others run there. Each
update here is a *kernel*: a function of equally long 1-d views (param, grad,
then the state arrays, updated in place), scratch rows of the same length and
the scalar hyperparameters, written with ``out=`` ufuncs only, so it allocates
nothing. :func:`run` applies a kernel block by block, on ``threads`` threads
(NumPy's ufuncs release the GIL), each with its own scratch rows, taking the
next block from a shared counter so that a thread slowed by a busy core does
less of the work.

Blocking changes nothing in the results: every element goes through the same
ufunc calls in the same order whichever block it falls in, so the blocked
update is bit-for-bit the unblocked one (the suite checks it).

:func:`run` takes any kernel of that form: the NumPy backend hands it the
compiled one-pass updates of :mod:`backends.array.fused` (with no scratch rows)
where numba is installed.

The number of threads follows NumPy's BLAS (:func:`blas_threads`): pinning
the BLAS pool with ``threadpoolctl`` (as the benchmarks do) pins these passes
too.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

__all__ = [
    "BLOCK_BYTES",
    "KERNELS",
    "SCRATCH_ROWS",
    "blas_threads",
    "block_length",
    "grouped_sum",
    "parallel",
    "run",
    "single_threaded_blas",
    "split",
]

#: Bytes of each array in one block. Adam holds param, grad, two moments and
#: two scratch rows: 6 x 256 KiB = 1.5 MiB, inside a 2 MiB L2; smaller blocks
#: pay the ufunc call overhead (about a microsecond) more often, larger ones
#: spill to the next cache level (measured: 256 KiB beat 32 to 128 KiB by
#: 10-30% and tied 512 KiB).
BLOCK_BYTES = 256 * 1024

#: A thread is worth starting only for this many blocks of its own.
MIN_BLOCKS_PER_THREAD = 2

#: A kernel that needs no scratch rows makes one pass over its arrays: no
#: pass comes after it to find the block in cache, so :func:`run` cuts its
#: arrays into this many pieces per thread instead (at least ``block`` long):
#: each task costs some microseconds (a Python call, a numba dispatch, a turn
#: at the GIL), and a few per thread still let a thread that got the CPU late
#: do fewer.
PIECES_PER_THREAD = 4

Kernel = Callable[..., None]


def block_length(itemsize: int, block_bytes: int = BLOCK_BYTES) -> int:
    """Elements per block for arrays of ``itemsize`` bytes (at least 1)."""
    return max(1, block_bytes // itemsize)


# ---------------------------------------------------------------------------
# The kernels: torch.optim's formulas, in place, out= ufuncs only.
# Arguments: param, grad, state arrays..., scratch rows..., hyperparameters.
# ---------------------------------------------------------------------------


def sgd(p, g, buf, s, t, lr, momentum, nesterov, weight_decay) -> None:
    """``d = g + wd p``; ``b = mu b + d``; ``p -= lr (d + mu b if nesterov else b)``."""
    d = g
    if weight_decay:
        np.multiply(p, weight_decay, out=s)
        s += g
        d = s
    if momentum:
        buf *= momentum
        buf += d
        if nesterov:
            if d is s:
                np.multiply(buf, momentum, out=t)
                s += t
            else:
                np.multiply(buf, momentum, out=s)
                s += g
            s *= lr
        else:
            np.multiply(buf, lr, out=s)
    elif d is s:
        s *= lr
    else:
        np.multiply(g, lr, out=s)
    p -= s


def adagrad(p, g, total, s, lr, eps) -> None:
    """``G += g^2``; ``p -= lr g / (sqrt(G) + eps)``."""
    np.square(g, out=s)
    total += s
    np.sqrt(total, out=s)
    s += eps
    np.divide(g, s, out=s)
    s *= lr
    p -= s


def rmsprop(p, g, square_avg, s, lr, alpha, eps) -> None:
    """``v = alpha v + (1 - alpha) g^2``; ``p -= lr g / (sqrt(v) + eps)``."""
    square_avg *= alpha
    np.square(g, out=s)
    s *= 1 - alpha
    square_avg += s
    np.sqrt(square_avg, out=s)
    s += eps
    np.divide(g, s, out=s)
    s *= lr
    p -= s


def adadelta(p, g, square_avg, acc_delta, s, t, lr, rho, eps) -> None:
    """torch.optim.Adadelta: ``delta = sqrt(u + eps) / sqrt(v + eps) g``."""
    square_avg *= rho
    np.square(g, out=s)
    s *= 1 - rho
    square_avg += s
    np.add(square_avg, eps, out=s)
    np.sqrt(s, out=s)  # std
    np.add(acc_delta, eps, out=t)
    np.sqrt(t, out=t)
    t /= s
    t *= g  # delta
    acc_delta *= rho
    np.square(t, out=s)
    s *= 1 - rho
    acc_delta += s
    if lr != 1.0:
        t *= lr
    p -= t


def adam(
    p, g, exp_avg, exp_avg_sq, s, t, step_size, beta1, beta2, eps, bc2_sqrt, wd, decay
) -> None:
    """torch.optim.Adam (L2 decay added to g), 12 ufunc calls without decay;
    torch.optim.AdamW with ``wd = 0`` and ``decay = 1 - lr wd``.

    AdamW first shrinks the weights, ``p *= decay`` (Adam passes ``decay =
    1``: no pass), then takes Adam's step with the plain gradient.
    ``m = beta1 m + (1 - beta1) g``; ``v = beta2 v + (sqrt(1 - beta2) g)^2``;
    ``p -= step_size m / (sqrt(v) / bc2_sqrt + eps)``, computed as
    ``m / (sqrt(v) c + eps / step_size)`` with ``c = 1 / (bc2_sqrt step_size)``:
    the two scalings folded into one pass. Each form is a few ulps from
    torch's (``lerp`` for m); the ones chosen make most passes in-place or
    one-operand, which run about twice as fast as two-operand ones (9% off a
    step on 1M parameters).
    """
    if decay != 1.0:
        p *= decay
    if wd:
        np.multiply(p, wd, out=t)
        t += g
        g = t
    exp_avg *= beta1
    np.multiply(g, 1 - beta1, out=s)
    exp_avg += s
    np.multiply(g, math.sqrt(1 - beta2), out=s)
    np.square(s, out=s)
    exp_avg_sq *= beta2
    exp_avg_sq += s
    np.sqrt(exp_avg_sq, out=s)
    s *= 1.0 / (bc2_sqrt * step_size)
    s += eps / step_size
    np.divide(exp_avg, s, out=s)
    p -= s


#: The kernels by optimizer name.
KERNELS: dict[str, Kernel] = {
    "sgd": sgd,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adadelta": adadelta,
    "adam": adam,
}

#: Scratch rows each kernel takes (after the state arrays).
SCRATCH_ROWS: dict[str, int] = {
    "sgd": 2,
    "adagrad": 1,
    "rmsprop": 1,
    "adadelta": 2,
    "adam": 2,
    "adamw": 2,  # adamw_step runs adam with wd = 0 and decay = 1 - lr wd
}


# ---------------------------------------------------------------------------
# Running a kernel
# ---------------------------------------------------------------------------


class _Tasks:
    """``count`` tasks taken in turn by whichever thread asks first.

    The caller waits for the tasks that were *taken*, not for the threads: a
    helper thread that gets the CPU only after the caller has done every
    task finds none left and touches nothing, so nobody waits for it.
    """

    def __init__(self, count: int, task: Callable[[int], object]) -> None:
        self.count = count
        self.task = task
        self._next = itertools.count()  # next() is atomic: each task taken once
        self._lock = threading.Lock()
        self._finished = 0
        self._done = threading.Event()
        self._error: BaseException | None = None
        if count == 0:
            self._done.set()

    def work(self) -> None:
        """Do tasks until none is left (every thread, the caller's too)."""
        for index in self._next:
            if index >= self.count:
                return
            try:
                self.task(index)
            except BaseException as error:  # handed to the caller by wait()
                self._error = self._error or error
            finally:
                with self._lock:
                    self._finished += 1
                    if self._finished == self.count:
                        self._done.set()

    def wait(self) -> None:
        self._done.wait()
        if self._error is not None:
            raise self._error


def _run_tasks(tasks: _Tasks, threads: int) -> None:
    helpers = min(threads, tasks.count) - 1
    if helpers > 0:
        pool = _pool(helpers)
        for _ in range(helpers):
            pool.submit(tasks.work)
    tasks.work()
    tasks.wait()


def run(
    kernel: Kernel,
    arrays: Sequence[np.ndarray],
    scratch: np.ndarray,
    args: tuple,
    *,
    block: int,
    threads: int = 1,
) -> None:
    """``kernel(*blocks of arrays, *scratch rows, *args)`` over every block.

    ``arrays`` are 1-d and equally long (param and state updated in place);
    ``scratch`` is ``(workers, rows, >= block)``: one set of rows per thread,
    so at most ``scratch.shape[0]`` threads run (``rows`` may be 0: a kernel
    that needs no scratch, whose blocks are then :data:`PIECES_PER_THREAD`
    per thread, ``block`` long at least). Threads take blocks from a
    shared counter; each uses the scratch rows of the first free set.
    """
    size = arrays[0].shape[0]
    if scratch.shape[1] == 0:
        block = max(block, -(-size // (PIECES_PER_THREAD * max(1, threads))))
    count = -(-size // block)
    workers = max(1, min(threads, scratch.shape[0], count // MIN_BLOCKS_PER_THREAD))
    rows = scratch.shape[1]
    free = list(range(workers))  # scratch sets; list.pop/append are atomic
    local = threading.local()

    def task(index: int) -> None:
        mine = getattr(local, "scratch", None)
        if mine is None:
            mine = local.scratch = scratch[free.pop()]
        start = index * block
        stop = min(start + block, size)
        views = [a[start:stop] for a in arrays]
        views.extend(mine[row, : stop - start] for row in range(rows))
        kernel(*views, *args)

    _run_tasks(_Tasks(count, task), workers)


def parallel(calls: Sequence[Callable[[], object]], threads: int) -> None:
    """Run independent ``calls`` on up to ``threads`` threads (the caller's too).

    Each thread takes the next call from a shared counter, so a thread that
    gets less of a busy machine simply does fewer. For NumPy work that
    releases the GIL: copies, ufuncs; *not* BLAS calls (BLAS has its own
    threads).
    """
    if threads <= 1 or len(calls) <= 1:
        for call in calls:
            call()
        return
    _run_tasks(_Tasks(len(calls), lambda index: calls[index]()), threads)


#: :func:`grouped_sum` adds its terms in at most this many groups: enough for
#: the threads of a few cores to share.
SUM_GROUPS = 8


def grouped_sum(
    count: int, term: Callable[[int, Any], Any]
) -> tuple[list[Callable[[Any], None]], Callable[[], Any]]:
    """Tasks summing ``term(i, worker)`` for ``i < count``, and the sum's getter.

    The terms go in at most :data:`SUM_GROUPS` consecutive groups, one task
    each (called with the ``worker`` backend to compute on), each adding its
    own terms in order; the getter adds the groups' sums in order (``None``
    when ``count`` is 0). The same additions whichever threads ran the tasks,
    so the sum is the same from run to run and from one thread count to another.
    """
    groups = split(count, SUM_GROUPS)
    sums: list[Any] = [None] * len(groups)

    def task(index: int, worker: Any) -> None:
        for i in range(groups[index].start, groups[index].stop):
            value = term(i, worker)
            if sums[index] is None:
                sums[index] = value
            else:
                sums[index] += value

    def total() -> Any:
        result = None
        for value in sums:
            if result is None:
                result = value
            else:
                result += value
        return result

    tasks = [functools.partial(task, index) for index in range(len(groups))]
    return tasks, total


def split(length: int, pieces: int) -> list[slice]:
    """``length`` cut into at most ``pieces`` nearly equal, non-empty slices."""
    pieces = max(1, min(pieces, length))
    bounds = [length * i // pieces for i in range(pieces + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(bounds) if b > a]


_pool_lock = threading.Lock()
_pool_state: dict[str, Any] = {"pool": None, "pid": None, "size": 0}


def _pool(size: int) -> ThreadPoolExecutor:
    """A process-wide pool of at least ``size`` workers (made again after a fork)."""
    with _pool_lock:
        pool = _pool_state["pool"]
        if (
            pool is None
            or _pool_state["pid"] != os.getpid()
            or _pool_state["size"] < size
        ):
            if pool is not None and _pool_state["pid"] == os.getpid():
                pool.shutdown(wait=False)
            pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="nnspec")
            _pool_state.update(pool=pool, pid=os.getpid(), size=size)
        return pool


# ---------------------------------------------------------------------------
# How many threads
# ---------------------------------------------------------------------------

_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_probe_state: dict[str, Any] = {}


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _default_threads() -> int:
    for variable in _THREAD_VARIABLES:
        text = os.environ.get(variable, "").split(",")[0].strip()
        if text.isdigit() and int(text) >= 1:
            return int(text)
    return _usable_cores()


def _blas_controllers() -> tuple[Any, Any] | None:
    """threadpoolctl's controller of every loaded library and NumPy's BLAS's own.

    ``None`` when threadpoolctl is not installed or finds no BLAS.
    """
    if "controllers" in _probe_state:
        return _probe_state["controllers"]
    found = None
    try:
        from threadpoolctl import ThreadpoolController

        everything = ThreadpoolController()
        controllers = [c for c in everything.lib_controllers if c.user_api == "blas"]
        numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
        controllers.sort(key=lambda c: not str(c.filepath).startswith(numpy_dir))
        if controllers:
            found = (everything, controllers[0])
    except Exception:  # not installed, or an unusual BLAS: fall back
        found = None
    _probe_state["controllers"] = found
    return found


def _blas_probe() -> Callable[[], int] | None:
    """``get_num_threads`` of NumPy's BLAS, through threadpoolctl when installed."""
    controllers = _blas_controllers()
    return None if controllers is None else controllers[1].get_num_threads


def single_threaded_blas() -> contextlib.AbstractContextManager | None:
    """A context holding the BLAS libraries to one thread, ``None`` if none can.

    For BLAS calls made from several threads at once, each on its own core:
    OpenBLAS (pthreads build) and MKL run a call on the calling thread alone
    when limited to one, and may be called concurrently. The limit is
    process-wide while the context lasts (threadpoolctl restores the previous
    one on leaving it).
    """
    controllers = _blas_controllers()
    if controllers is None:
        return None
    return controllers[0].limit(limits=1, user_api="blas")


def blas_threads() -> int:
    """The thread count of NumPy's BLAS now (threadpoolctl's limits included).

    Without threadpoolctl: ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS`` or
    ``MKL_NUM_THREADS``, else the cores this process may run on.
    """
    probe = _blas_probe()
    if probe is not None:
        try:
            threads = int(probe())
        except Exception:
            threads = 0
        if threads >= 1:
            return threads
    return _default_threads()
