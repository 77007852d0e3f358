"""Hostile backends: each one misbehaves the way that breaks a *run*, not a check.

:mod:`properties.broken_backends` holds backends whose operations return wrong
results; the suite must fail those checks. The backends here attack the runner
itself: an operation that never returns, one that ends the process running it,
a module that cannot be imported, an ``asarray`` that spoils every input. Each
is the correct example backend :class:`examples.tiny.TinyBackend` with one
misbehaviour in ``relu`` (or, for ``asarray``, everywhere), so that in a run
with a healthy backend beside it the blame is easy to check: the hostile
backend's ``relu`` checks end as timed out, crashed or failed, its other
checks end with a real outcome or, after a crash, as "not run" with the reason,
and the healthy backend's checks are untouched.

``properties/test_run_robustness.py`` runs the suite against them. The two
backends of :mod:`properties.broken_backends` that poison a result with a NaN
or return the wrong shape, and the one here that changes its input, need no
runner support; they complete the set of misbehaviours checked there.

Import paths are in :data:`SPECS`; ``import_error`` is a spec whose loading
raises ``ImportError``, as a backend whose native extension is missing does.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from examples.tiny import TinyBackend


class HangingBackend(TinyBackend):
    """``relu`` never returns (it sleeps, so the time limit's alarm stops it)."""

    name = "hostile_hang"

    def relu(self, x):
        while True:
            time.sleep(0.05)


class NativeHangBackend(TinyBackend):
    """``relu`` never returns and the alarm cannot stop it.

    It blocks ``SIGALRM`` in its thread and waits in one system call, as native
    code waiting on a lock or a device does: the alarm goes to another thread,
    its Python handler waits for this one to return to the interpreter, which
    never happens. Only ending the process stops it.
    """

    name = "hostile_native_hang"

    def relu(self, x):
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
        while True:
            time.sleep(3600)


class ExitingBackend(TinyBackend):
    """``relu`` ends the process running it with ``os._exit`` (no cleanup)."""

    name = "hostile_exit"

    def relu(self, x):
        os._exit(3)


class AbortingBackend(TinyBackend):
    """``relu`` aborts the process (``SIGABRT``, as a failed C assertion does)."""

    name = "hostile_abort"

    def relu(self, x):
        os.abort()


class SpoilingBackend(TinyBackend):
    """``asarray`` returns zeros: every check that reads a value fails.

    The backend broken everywhere: it measures how long a run takes when every
    check fails and Hypothesis minimises every counterexample.
    """

    name = "hostile_asarray"

    def asarray(self, a, dtype):
        return np.zeros(np.shape(a), dtype=dtype)


class MutatingBackend(TinyBackend):
    """``relu`` returns the right values but overwrites its input with them."""

    name = "hostile_mutation"

    def relu(self, x):
        np.maximum(x, 0, out=x)
        return x.copy()


hang = HangingBackend()
native_hang = NativeHangBackend()
exit = ExitingBackend()  # shadows the builtin here only: the spec reads ":exit"
abort = AbortingBackend()
asarray = SpoilingBackend()
mutation = MutatingBackend()


def __getattr__(name: str):
    """``import_error``: loading it fails as a missing native extension would."""
    if name == "import_error":
        raise ImportError(
            "libhostile.so: cannot open shared object file: No such file or directory"
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Import path of each hostile backend, by attribute name.
SPECS: dict[str, str] = {
    attribute: f"{__name__}:{attribute}"
    for attribute in (
        "hang",
        "native_hang",
        "exit",
        "abort",
        "asarray",
        "mutation",
        "import_error",
    )
}
