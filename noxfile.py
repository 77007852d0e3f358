"""Every entry point a user runs: ``nox -s report``, ``nox -s tests``, ``nox -s verify``...

The CPU environments pin torch to the CPU wheel through ``constraints-cpu.txt``
(a looser range would pull a several-GB CUDA build).
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = None  # the interpreter nox runs under
CONSTRAINTS = ("-c", "constraints-cpu.txt")


def install(session: nox.Session, *extras: str) -> None:
    """Install the project (editable) with ``extras``, torch pinned to the CPU wheel."""
    session.install("--upgrade", "pip")
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", spec, *CONSTRAINTS)


def hypothesis_profile(default: str = "ci") -> str:
    return os.environ.get("HYPOTHESIS_PROFILE", default)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite on the built-in backends, ``ci`` Hypothesis profile."""
    install(session, "torch", "test")
    session.run(
        "pytest",
        "-n",
        "auto",
        f"--hypothesis-profile={hypothesis_profile()}",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def verify(session: nox.Session) -> None:
    """The property suite over every available built-in backend.

    Pass pytest arguments after ``--``, for example a third-party backend:
    ``nox -s verify -- --backend examples.tiny:backend``.
    """
    install(session, "torch", "test")
    session.run(
        "pytest",
        "properties",
        "-n",
        "auto",
        f"--hypothesis-profile={hypothesis_profile()}",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
