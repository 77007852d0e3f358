"""Every entry point a user runs: ``nox -s report``, ``nox -s tests`` and the rest.

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


#: Seconds one check may run before it is stopped and recorded as timed out
#: (pytest-timeout), per Hypothesis profile; NNSPEC_CHECK_TIMEOUT overrides it,
#: ``-- --timeout=N`` too. Generous: a check of the `ci` profile takes seconds;
#: `nightly` runs twelve times the examples. pyproject's `timeout` (300) is the
#: limit of a plain `pytest`.
CHECK_TIMEOUT = {"dev": 300, "ci": 300, "nightly": 1800}


def check_timeout(profile: str) -> str:
    return os.environ.get("NNSPEC_CHECK_TIMEOUT", str(CHECK_TIMEOUT.get(profile, 300)))


def suite_command(profile: str) -> list[str]:
    """The property suite on every core, with ``profile`` and its check timeout."""
    return [
        "pytest",
        "properties",
        "-n",
        "auto",
        f"--hypothesis-profile={profile}",
        f"--timeout={check_timeout(profile)}",
    ]


#: What to pip-install for a third-party backend: space-separated pip
#: arguments (a path, a package, ``-r requirements.txt``); the sessions'
#: ``--install ARG`` option adds one more.
BACKEND_INSTALL_VARIABLE = "NNSPEC_BACKEND_INSTALL"


def install_backend(session: nox.Session) -> list[str]:
    """Install what a backend under test needs; return the posargs for pytest.

    From ``$NNSPEC_BACKEND_INSTALL`` and every ``--install ARG`` (or
    ``--install=ARG``) among the session's arguments, which are removed from
    the arguments passed on. Installed with the CPU constraints (torch stays
    the CPU wheel), after the project, so a backend cannot replace it.
    """
    import shlex

    requirements = shlex.split(os.environ.get(BACKEND_INSTALL_VARIABLE, ""))
    arguments: list[str] = []
    given = iter(session.posargs)
    for argument in given:
        if argument == "--install":
            value = next(given, None)
            if value is None:
                session.error("--install needs an argument: a path or a package")
            requirements += shlex.split(value)
        elif argument.startswith("--install="):
            requirements += shlex.split(argument.removeprefix("--install="))
        else:
            arguments.append(argument)
    if requirements:
        session.log(f"installing the backend's requirements: {requirements}")
        session.install(*requirements, *CONSTRAINTS)
    return arguments


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite on the built-in backends, ``ci`` Hypothesis profile.

    The property suite, the report builder's tests (with the browser test) and
    every benchmark run once for correctness (pyproject's ``testpaths``), with
    the optional numba accelerator installed; then the NumPy backend's
    agreement checks once more on its plain path (``NNSPEC_NUMPY_ACCEL=0``).
    pytest exits 5 when it collects nothing, which fails the session like any
    failure.
    """
    install(session, "torch", "test", "bench", "report", "fast")
    profile = hypothesis_profile()
    common = ("-n", "auto", f"--hypothesis-profile={profile}")
    session.run(
        "pytest", *common, f"--timeout={check_timeout(profile)}", *session.posargs
    )
    if not session.posargs:
        # The NumPy backend's plain path (numba absent or switched off) against
        # the reference too: the run above checked the compiled one.
        session.run(
            "pytest",
            "properties/test_agreement.py",
            "--backend=numpy",
            *common,
            f"--timeout={check_timeout(profile)}",
            env={"NNSPEC_NUMPY_ACCEL": "0"},
        )


@nox.session(python=PYTHON)
def verify(session: nox.Session) -> None:
    """The property suite over every available built-in backend.

    Pass pytest arguments after ``--``, for example a third-party backend:
    ``nox -s verify -- --backend examples.tiny:backend``. ``--install ARG``
    (repeatable) or ``$NNSPEC_BACKEND_INSTALL`` pip-installs what the backend
    needs first: ``nox -s verify -- --install ./mypkg --backend mypkg.mod:backend``.
    """
    install(session, "torch", "test", "fast")
    arguments = install_backend(session)
    profile = hypothesis_profile()
    session.run(*suite_command(profile), *arguments)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff lint and format check; the GitHub workflows against their schema."""
    import glob

    session.install("ruff>=0.6", "check-jsonschema>=0.28")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # check-jsonschema ships the workflow schema (vendored), so this runs offline.
    workflows = sorted(glob.glob(".github/workflows/*.y*ml"))
    if workflows:
        session.run(
            "check-jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            *workflows,
        )


# ------------------------------------------------------------------ benchmarks
# Environments. `bench` and `bench-check` run asv in this nox session's own
# virtualenv (`--environment existing:<its python>`), where install() has put
# the project, editable, with torch pinned to the CPU wheel by
# constraints-cpu.txt: asv times exactly the checkout in front of it, and
# `--set-commit-hash` records the results for HEAD, per machine, under
# .asv/results (ignored by git). `bench-compare` needs two commits installed,
# so there asv builds one virtualenv per commit under .asv/env, as
# asv.conf.json says (environment_type "virtualenv"; its install_command applies
# the same constraints file), which keeps a plain `asv run` reproducible too.
# asv launches every benchmark in a fresh interpreter (launch_method "spawn").


def _session_python(session: nox.Session) -> str:
    import shutil

    python = shutil.which("python", path=session.bin)
    if python is None:
        session.error(f"no python in {session.bin}")
    return python


def _asv_existing_environment(session: nox.Session) -> str:
    return f"--environment=existing:{_session_python(session)}"


def _asv_machine(session: nox.Session) -> list[str]:
    """Register this machine with asv (default answers) if it is not yet known.

    asv records results per machine name: the hostname, or NNSPEC_ASV_MACHINE
    where the hostname changes from run to run (hosted CI runners), which would
    split the history. Returns the ``--machine`` argument for asv commands.
    """
    import json
    from pathlib import Path

    name = os.environ.get("NNSPEC_ASV_MACHINE", "").strip()
    machine_file = Path.home() / ".asv-machine.json"
    known = json.loads(machine_file.read_text()) if machine_file.is_file() else {}
    if name:
        if name not in known:
            session.run("asv", "machine", "--yes", f"--machine={name}")
        return [f"--machine={name}"]
    if not known:
        session.run("asv", "machine", "--yes")
    return []


def _git_hash(session: nox.Session, name: str) -> str:
    output = session.run(
        "git", "rev-parse", "--verify", f"{name}^{{commit}}", external=True, silent=True
    )
    return str(output).strip()


@nox.session(name="bench", python=PYTHON)
def bench(session: nox.Session) -> None:
    """asv on the current checkout: every benchmark, recorded for HEAD, published.

    Results go to .asv/results/<machine>/, the site to .asv/html (``asv preview``
    serves it), and a side-by-side table (time, throughput, time over torch's)
    ends the output. Arguments after ``--`` go to ``asv run``: ``-- -b Conv2d``
    for one family, ``-- -e`` for the benchmarks' stderr, ``-- --quick`` for
    one call each (nothing recorded). NNSPEC_BACKENDS and NNSPEC_BENCH_THREADS
    narrow the backends and thread counts (benchmarks/common.py).
    """
    install(session, "torch", "bench", "fast")
    commit = _git_hash(session, "HEAD")
    machine = _asv_machine(session)
    session.run(
        "asv",
        "run",
        _asv_existing_environment(session),
        f"--set-commit-hash={commit}",
        *machine,
        *session.posargs,
    )
    if {"--quick", "-q", "--dry-run", "-n"}.isdisjoint(session.posargs):
        session.run("asv", "publish")
        summary = ("python", "-m", "benchmarks.summary", f"--commit={commit}")
        session.run(*summary, *machine)


@nox.session(name="bench-compare", python=PYTHON)
def bench_compare(session: nox.Session) -> None:
    """asv continuous between two commits; fails when a timing regresses.

    ``nox -s bench-compare -- [BASE [HEAD [FACTOR]]]`` (defaults: main~1, HEAD,
    1.2). asv builds each commit in its own virtualenv (see above), times both,
    prints the benchmarks that changed with their ratio HEAD/BASE, and exits
    non-zero when one got slower by more than FACTOR or started failing. Only
    the time_ benchmarks run: asv reads every figure as lower-is-better, and the
    track_ throughputs are the same calls read the other way up. Arguments after
    these go to ``asv continuous`` (``-b Conv2d`` narrows it further).
    """
    install(session, "bench")
    args = list(session.posargs)
    positional: list[str] = []
    while args and not args[0].startswith("-") and len(positional) < 3:
        positional.append(args.pop(0))
    base, head, factor = positional + ["main~1", "HEAD", "1.2"][len(positional) :]
    try:
        if float(factor) <= 1.0:
            raise ValueError
    except ValueError:
        session.error(f"FACTOR must be a number above 1, got {factor!r}")
    head_hash = _git_hash(session, head)
    _git_hash(session, base)  # fail early, with git's message, on a bad name
    machine = _asv_machine(session)
    session.run(
        "asv",
        "continuous",
        f"--factor={factor}",
        r"--bench=\.time_",
        *machine,
        *args,
        base,
        head,
    )
    summary = ("python", "-m", "benchmarks.summary", f"--commit={head_hash}")
    session.run(*summary, *machine)


@nox.session(name="bench-quick", python=PYTHON)
def bench_quick(session: nox.Session) -> None:
    """pytest-benchmark side-by-side of the backends, against a saved baseline.

    Every backend on a few conv layers and every optimizer step, in tables
    grouped by backend, then one table of time, throughput and time over
    torch's per workload. The run is saved to .benchmarks/quick-latest.json;
    when .benchmarks/quick-baseline.json exists its rows appear beside the new
    ones. ``-- --save-baseline`` makes this run the baseline. Other arguments go
    to pytest: ``-- --benchmark-compare-fail=median:25%`` fails on a median 25%
    slower than the baseline's, ``-- -k conv2d`` narrows it.
    """
    import shutil
    from pathlib import Path

    install(session, "torch", "bench", "fast")
    args = list(session.posargs)
    save_baseline = "--save-baseline" in args
    args = [arg for arg in args if arg != "--save-baseline"]
    storage = Path(".benchmarks")
    storage.mkdir(exist_ok=True)
    latest = storage / "quick-latest.json"
    baseline = storage / "quick-baseline.json"
    compare = [f"--benchmark-compare={baseline}"] if baseline.is_file() else []
    session.run(
        "pytest",
        "benchmarks/quick",
        "--benchmark-only",
        f"--benchmark-json={latest}",
        "--benchmark-columns=min,median,iqr,rounds",
        "--benchmark-sort=name",
        "-p",
        "no:cacheprovider",
        *compare,
        *args,
    )
    if save_baseline:
        shutil.copyfile(latest, baseline)
        session.log(f"saved {latest} as the baseline {baseline}")


@nox.session(name="bench-check", python=PYTHON)
def bench_check(session: nox.Session) -> None:
    """Every benchmark once, for correctness, not timing (``nox -s tests`` too).

    ``asv check``, then benchmarks/test_benchmarks_smoke.py: every asv benchmark
    for every parameter combination on shrunk workloads (setup, its time_ and
    track_ methods once), and the pytest-benchmark suite once. ``-- --asv``
    adds ``asv run --quick`` of the shrunk workloads under asv's own runner (a
    fresh interpreter per combination: many minutes). Other arguments go to
    pytest.
    """
    install(session, "torch", "test", "bench", "fast")
    args = list(session.posargs)
    under_asv = "--asv" in args
    args = [arg for arg in args if arg != "--asv"]
    session.run("asv", "check", _asv_existing_environment(session))
    session.run(
        "pytest", "benchmarks/test_benchmarks_smoke.py", "-p", "no:cacheprovider", *args
    )
    if under_asv:
        machine = _asv_machine(session)
        session.run(
            "asv",
            "run",
            "--quick",
            "--dry-run",
            "--show-stderr",
            _asv_existing_environment(session),
            *machine,
            env={"NNSPEC_BENCH_SMOKE": "1"},
        )


@nox.session(name="bench-proof", python=PYTHON)
def bench_proof(session: nox.Session) -> None:
    """Proves that asv's comparison flags a known slowdown and not a no-op commit.

    A few benchmarks timed three times with the current interpreter in a
    scratch clone: for its HEAD, an empty no-op commit, and a "mutant" commit
    timed with NNSPEC_BENCH_SLOWDOWN (one conv algorithm and one optimizer
    step 1.3 times slower); ``asv compare --factor 1.2`` must flag exactly
    the slowed ones, and nothing on the no-op (benchmarks/regression_proof.py).
    A minute; part of ``nox -s nightly``. Needs a quiet machine.
    """
    install(session, "bench")
    session.run("python", "-m", "benchmarks.regression_proof", *session.posargs)


def _has_nvidia_gpu() -> str | None:
    """Why this machine cannot run the GPU session, or None when it can."""
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return "no nvidia-smi on PATH: this machine has no NVIDIA GPU (or driver)"
    listed = subprocess.run(
        ["nvidia-smi", "-L"], capture_output=True, text=True, check=False
    )
    if listed.returncode != 0 or "GPU" not in listed.stdout:
        return f"nvidia-smi sees no GPU: {(listed.stdout + listed.stderr).strip()}"
    return None


@nox.session(python=PYTHON)
def gpu(session: nox.Session) -> None:
    """The GPU side in one command, on a machine with an NVIDIA GPU (8 minutes).

    Skips, saying why, without one. Installs torch as PyPI builds it for Linux
    (with CUDA, not the CPU wheel the other sessions pin) and CuPy (the
    ``cupy`` extra), then: the property suite on ``cupy`` and ``torch-cuda``
    (``ci`` profile); the GPU benchmarks once each for correctness; asv on the
    GPU classes at one thread (CuPy's convolutions against torch-cuda's, which
    is cuDNN, forward and backward through ``aten.convolution_backward``; the
    optimizer steps, CuPy's and torch.optim's fused and foreach, whose GB/s
    the report reads against the measured device-to-device copy); and the
    report, in _report/. NNSPEC_GPU_ASV_ARGS adds arguments to ``asv run``.
    """
    import shlex

    reason = _has_nvidia_gpu()
    if reason:
        session.skip(f"nox -s gpu needs an NVIDIA GPU: {reason}")
    session.install("--upgrade", "pip")
    session.install("-e", ".[torch,test,report,bench,cupy]")
    session.run(
        "python",
        "-c",
        "import torch, cupy; assert torch.cuda.is_available(), 'torch has no CUDA'; "
        "print('torch', torch.__version__, 'CUDA', torch.version.cuda, "
        "torch.cuda.get_device_name()); print('cupy', cupy.__version__)",
    )
    gpu_backends = {
        "NNSPEC_BACKENDS": "cupy,torch-cuda,torch",
        "NNSPEC_BENCH_THREADS": "1",
    }
    failures: list[str] = []
    session.log("[gpu 1/3] every GPU benchmark once, for correctness")
    if _exit_status(
        session,
        "pytest",
        "benchmarks/test_benchmarks_smoke.py",
        "-p",
        "no:cacheprovider",
        "-k",
        "GPU or cupy or cuda",
        env=gpu_backends,
    ):
        failures.append("the GPU benchmarks run once")
    session.log("[gpu 2/3] asv: the GPU time_ benchmarks, float32 conv and 10M steps")
    commit = _git_hash(session, "HEAD")
    machine = _asv_machine(session)
    if _exit_status(
        session,
        "asv",
        "run",
        _asv_existing_environment(session),
        f"--set-commit-hash={commit}",
        *machine,
        r"--bench=GPU.*\.time_conv2d\(.*'float32', 1\)",
        r"--bench=GPU.*\.time_step\(.*'10M', 1\)",
        *shlex.split(os.environ.get("NNSPEC_GPU_ASV_ARGS", "")),
        env=gpu_backends,
    ):
        failures.append("asv run of the GPU benchmarks")
    else:
        session.run(
            "python", "-m", "benchmarks.summary", f"--commit={commit}", *machine
        )
    session.log("[gpu 3/3] the report: suite, quick benchmarks, limits (GPU included)")
    os.environ.update(gpu_backends)
    failures += _build_report(session, hypothesis_profile("ci"), asv_html=None)
    _fail_on(session, failures)


# ---------------------------------------------------------------------- report
# `report` and `nightly` run everything, then build the static site into
# _report/ (ignored by git) with `python -m reports build`. A failing check
# never stops the run: the site shows it, and the session fails at the end,
# after the site is built and its path printed.

REPORT_DIRECTORY = "_report"


def _exit_status(session: nox.Session, *args: str, **kwargs) -> int:
    """Run a command and return its exit status instead of ending the session."""
    try:
        session.run(*args, **kwargs)
    except nox.command.CommandFailed as failure:
        return failure.return_code if failure.return_code is not None else 1
    return 0


def _build_report(
    session: nox.Session, profile: str, asv_html: str | None, arguments: list[str]
) -> list[str]:
    """Suite with results and progress, quick benchmarks, limits, site.

    Returns what failed, for the session to fail on once the site is built.
    """
    from pathlib import Path

    out = Path(REPORT_DIRECTORY).resolve()
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    results = data / "results.json"
    bench_json = data / "benchmarks.json"
    limits = data / "limits.json"
    for stale in (results, bench_json, limits):
        stale.unlink(missing_ok=True)
    failures: list[str] = []

    session.log(f"[1/4] property suite, {profile} profile, every available backend")
    status = _exit_status(
        session,
        *suite_command(profile),
        f"--nnspec-results={results}",
        "--nnspec-progress",
        "-p",
        "no:cacheprovider",
        *arguments,
    )
    if status:
        failures.append(f"the property suite (pytest exit status {status})")
    # A pytest that died (killed, or a crash without xdist) left a journal:
    # write the results file from it, the checks that never ran included.
    _exit_status(
        session, "python", "-m", "properties.results", "finalize", str(results)
    )

    bench_arguments: list[str] = []
    if Path("benchmarks/quick").is_dir():
        session.log("[2/4] quick benchmarks (pytest-benchmark)")
        status = _exit_status(
            session,
            "pytest",
            "benchmarks/quick",
            "--benchmark-only",
            f"--benchmark-json={bench_json}",
            "-p",
            "no:cacheprovider",
        )
        if status:
            failures.append(f"the quick benchmarks (pytest exit status {status})")
        bench_arguments = [f"--bench={bench_json}"]
    else:
        session.log("[2/4] quick benchmarks: no benchmarks/quick, skipped")

    session.log("[3/4] the machine's limits (GEMM and copy throughput)")
    if _exit_status(session, "python", "-m", "reports", "probe", f"--out={limits}"):
        failures.append("measuring the machine's limits")

    session.log(f"[4/4] the site, into {out}")
    asv_arguments = [f"--asv-html={asv_html}"] if asv_html else []
    status = _exit_status(
        session,
        "python",
        "-m",
        "reports",
        "build",
        f"--results={results}",
        *bench_arguments,
        *asv_arguments,
        f"--limits={limits}",
        f"--out={out}",
        "--check",
    )
    index = out / "index.html"
    if status:
        failures.append("the report's verdict (see the site)")
    session.log(f"report: {index}  ({index.as_uri()})")
    return failures


def _fail_on(session: nox.Session, failures: list[str]) -> None:
    if failures:
        index = os.path.abspath(os.path.join(REPORT_DIRECTORY, "index.html"))
        session.error("failed: " + "; ".join(failures) + f". The report: {index}")


def _report_extras() -> tuple[str, ...]:
    """The extras to install; NNSPEC_REPORT_EXTRAS adds more (``cupy`` on a GPU)."""
    more = os.environ.get("NNSPEC_REPORT_EXTRAS", "")
    extras = [extra.strip() for extra in more.split(",") if extra.strip()]
    return ("torch", "test", "report", "bench", "fast", *extras)


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """The verification matrix, the coverage and the performance pages, as a site.

    Runs the property suite (``ci`` profile, every available backend, a time
    limit per check, progress lines), the quick benchmarks and a measurement
    of the machine's limits, then builds _report/ and prints the path of its
    index.html. Fails at the end if a check failed, timed out or errored.
    Arguments after ``--`` go to the suite's pytest (``-- --backend numpy``,
    ``-- -k relu``).
    """
    install(session, *_report_extras())
    arguments = install_backend(session)
    profile = hypothesis_profile("ci")
    _fail_on(session, _build_report(session, profile, None, arguments))


@nox.session(python=PYTHON)
def nightly(session: nox.Session) -> None:
    """``nightly`` Hypothesis profile, the full asv run, then the report.

    asv records HEAD's results under .asv/results (kept between runs by the
    nightly workflow) and publishes .asv/html, which the report copies and
    links, and whose regressions at HEAD fail the session (after the site is
    built), as does any failing check. NNSPEC_ASV_ARGS adds arguments to
    ``asv run`` (``-b Conv2d`` to narrow it).
    """
    import shlex

    install(session, *_report_extras())
    arguments = install_backend(session)
    commit = _git_hash(session, "HEAD")
    _asv_machine(session)
    asv_failed = _exit_status(
        session,
        "asv",
        "run",
        _asv_existing_environment(session),
        f"--set-commit-hash={commit}",
        "--show-stderr",
        *shlex.split(os.environ.get("NNSPEC_ASV_ARGS", "")),
    )
    failures = [f"asv run (exit status {asv_failed})"] if asv_failed else []
    if _exit_status(session, "python", "-m", "benchmarks.regression_proof"):
        failures.append("the regression proof (benchmarks/regression_proof.py)")
    if _exit_status(session, "asv", "publish"):
        failures.append("asv publish")
    failures += _build_report(session, "nightly", ".asv/html", arguments)
    _fail_on(session, failures)


@nox.session(python=PYTHON)
def mutants(session: nox.Session) -> None:
    """The property suite against every mutant backend; fails if one survives.

    Each mutant (``backends/mutants``) is the NumPy backend with one realistic
    bug; the run prints the kill matrix (mutant x property family) and the
    tests that killed each. Runner options go after ``--``, pytest's after a
    second ``--``: ``nox -s mutants -- --only bn-biased-running-var -- -x``.
    Profile ``ci`` (or ``$NNSPEC_MUTANTS_PROFILE``), at most 10 examples a test.
    """
    install(session, "test")
    session.run("python", "-m", "backends.mutants.run", *session.posargs)
