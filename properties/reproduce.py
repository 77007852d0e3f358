"""The one command that reruns one check against one backend.

Every failure message of the suite and every failed record of the results file
ends with the line this module builds, so that a backend author can copy it,
run it from the repository root and see the same check fail again:

    python -m pytest 'properties/test_x.py::test_y[relu-mine-float32]' \
        --backend=mypkg.mod:backend --hypothesis-profile=ci -p no:cacheprovider

The check is selected by its node id, never by ``-k`` (a keyword expression
rejects backend names with spaces, brackets or ``<``), and ``--backend`` names
the spec the run loaded it from, so a third-party backend is loaded again.
Every part is quoted for a POSIX shell. The interpreter is ``python`` where
that is the one running the suite; under nox (whose sessions run in their own
virtual environments, with the backend's dependencies installed there) and
wherever ``python`` on the PATH is another interpreter, it is the full path of
the one that ran the check, so the line works from the user's own shell. This
module imports nothing from the suite at import time, so the results plugin
can use it before Hypothesis' profile is loaded.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from typing import Any


def current_nodeid() -> str | None:
    """The node id of the running pytest test, if any."""
    current = os.environ.get("PYTEST_CURRENT_TEST")
    return current.rsplit(" (", 1)[0] if current else None


def python_command() -> str:
    """``python``, or the full path of this interpreter where ``python`` is another.

    Inside a nox session ``python`` is the session's interpreter, but a user who
    copies the line into a shell afterwards gets their own: the session's
    environment (``NOX_CURRENT_SESSION``) always gets the full path.
    """
    found = shutil.which("python")
    if os.environ.get("NOX_CURRENT_SESSION") or found is None:
        return sys.executable
    if os.path.abspath(found) != os.path.abspath(sys.executable):
        return sys.executable
    return "python"


def current_profile() -> str | None:
    """The name of the Hypothesis profile in force, if Hypothesis is loaded."""
    try:
        from hypothesis import settings
    except ImportError:  # pragma: no cover - hypothesis is a dependency
        return os.environ.get("HYPOTHESIS_PROFILE")
    return settings.get_current_profile_name()


def reproduce_command(
    nodeid: str | None = None,
    *,
    backend_spec: str | None = None,
    profile: str | None = None,
    seed: Any = None,
) -> str:
    """The shell command that reruns the check ``nodeid`` against ``backend_spec``.

    ``profile`` defaults to the Hypothesis profile in force (``ci`` is
    derandomized, so the command fails again the same way; ``dev`` and
    ``nightly`` replay the failure from the example database, or from ``seed``
    when the run was given ``--hypothesis-seed``).
    """
    nodeid = nodeid or current_nodeid()
    if not nodeid:
        return "(not running under pytest)"
    parts = [python_command(), "-m", "pytest", nodeid]
    if backend_spec:
        parts.append(f"--backend={backend_spec}")
    profile = profile or current_profile()
    if profile:
        parts.append(f"--hypothesis-profile={profile}")
    if seed is not None:
        parts.append(f"--hypothesis-seed={seed}")
    parts += ["-p", "no:cacheprovider"]
    return shlex.join(parts)
