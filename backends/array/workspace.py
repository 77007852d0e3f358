"""Scratch arrays kept from one call to the next.

A conv chunk's intermediates (padded input, gathered tiles, transformed tiles,
GEMM products) are a few MiB each, allocated and freed once per chunk. glibc's
malloc hands such sizes back to the system when they are freed at the top of
its heap (its trim threshold follows its mmap threshold, a few MiB), so every
call paid a page fault and a page clearing per 4 KiB touched: measured on the
3x3 64->64 56x56 Winograd forward at one thread, one image, 2.2 ms of which
0.95 ms were page faults (1.25 ms with the trimming switched off).

:func:`scratch` lends a :class:`Workspace` whose named arrays keep their
memory between calls. A workspace is lent to one caller at a time (each
thread that asks at once gets its own), and one name is handed out once per
loan, so no two live intermediates share memory. A workspace keeps at most
:data:`KEEP_BYTES` in all; an array past that comes and goes as before.
Only NumPy's: CuPy keeps device memory in its own pool.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["KEEP_BYTES", "Workspace", "matmul_into", "release", "scratch"]

#: The most one workspace keeps between calls; arrays past it are allocated
#: each time (a chunk of a conv needs a few MiB; past 64 MiB the page faults
#: are small beside the work on the array).
KEEP_BYTES = 64 << 20


class Workspace:
    """Named scratch arrays of ``xp``, reused from loan to loan (NumPy only)."""

    def __init__(self, xp: Any = np) -> None:
        self.xp = xp
        self._kept: dict[str, Any] = {}
        self._lent: set[str] = set()

    def empty(self, name: str, shape: tuple[int, ...], dtype: Any) -> Any:
        """An uninitialised ``shape`` array of ``dtype``, valid until the loan ends.

        ``name`` may be asked for once per loan: a second request is a bug
        (the two arrays would share memory) and raises ``RuntimeError``.
        """
        if name in self._lent:
            raise RuntimeError(f"scratch array {name!r} is already lent")
        self._lent.add(name)
        dtype = np.dtype(dtype)
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if self.xp is not np:
            return self.xp.empty(shape, dtype=dtype)
        kept = self._kept.get(name)
        if kept is None or kept.nbytes < nbytes:
            others = self.kept_bytes() - (0 if kept is None else kept.nbytes)
            if others + nbytes > KEEP_BYTES:
                return np.empty(shape, dtype=dtype)
            kept = np.empty(nbytes, dtype=np.uint8)
            self._kept[name] = kept
        return kept[:nbytes].view(dtype).reshape(shape)

    def zeros(self, name: str, shape: tuple[int, ...], dtype: Any) -> Any:
        """:meth:`empty`, filled with zeros."""
        array = self.empty(name, shape, dtype)
        array[...] = 0
        return array

    def kept_bytes(self) -> int:
        """Memory this workspace holds between loans."""
        return sum(array.nbytes for array in self._kept.values())

    def _return(self) -> None:
        self._lent.clear()


_idle: list[Workspace] = []
_lock = threading.Lock()


@contextlib.contextmanager
def scratch(xp: Any) -> Iterator[Workspace]:
    """Lend a :class:`Workspace` for ``xp`` for the ``with`` block.

    An idle NumPy workspace is reused (there are never more than the callers
    that held one at the same time); any other library gets a fresh one
    that keeps nothing.
    """
    if xp is not np:
        yield Workspace(xp)
        return
    with _lock:
        workspace = _idle.pop() if _idle else Workspace()
    try:
        yield workspace
    finally:
        workspace._return()
        with _lock:
            _idle.append(workspace)


def release() -> int:
    """Drop the memory of the idle workspaces; returns the bytes released."""
    with _lock:
        released = sum(workspace.kept_bytes() for workspace in _idle)
        _idle.clear()
    return released


def matmul_into(xp: Any, a: Any, b: Any, out: Any) -> Any:
    """``out[...] = a @ b``, written in place where the library allows it."""
    if xp is np:
        np.matmul(a, b, out=out)
    else:
        out[...] = xp.matmul(a, b)
    return out
