"""Proof that asv's comparison catches a known slowdown and stays quiet on a no-op.

``python -m benchmarks.regression_proof`` (``nox -s bench-proof``, part of
``nox -s nightly``):

1. clones this repository into a scratch directory and adds two empty
   commits to the clone: a *no-op* commit and a *mutant* commit;
2. runs a few asv benchmarks (:data:`SELECTION`: two conv implementations and
   two optimizer steps, one thread) with the current interpreter
   (``existing`` environment), recording the results for the clone's HEAD~2
   (the base), the no-op commit, and the mutant commit, the last with
   ``NNSPEC_BENCH_SLOWDOWN`` set (:data:`SLOWDOWN`: one conv algorithm and one
   optimizer step made 1.3 times slower, see :class:`benchmarks.common.Slowdown`);
3. compares them with ``asv compare --factor 1.2`` (what ``nox -s
   bench-compare`` and the nightly use) and fails unless the mutant's slowed
   benchmarks, and only those, are flagged as slower, and nothing at all is
   flagged between the base and the no-op commit.

The results, the asv machine file and the clone live in the scratch
directory only (``--keep DIR`` keeps them there); nothing touches
``.asv/results``. On a busy machine the no-op comparison may flag noise:
that is a real finding (the timings cannot be trusted there), not a flake to
retry.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MACHINE = "nnspec-regression-proof"

#: The slowdown the mutant commit is timed under.
SLOWDOWN = "conv2d@numpy[im2col]:1.3,adam@numpy:1.3"
#: The factor asv flags at (that of ``nox -s bench-compare``).
FACTOR = 1.2

_LAYER = re.escape("'lenet C3 6->16 14px', 'forward', 'float32', 1")
#: asv ``-b`` patterns (each matched against ``name(param, ...)``): two conv
#: implementations and two optimizer steps, each once slowed and once not.
SELECTION: tuple[str, ...] = (
    rf"bench_conv\.Conv2d\.time_conv2d\('numpy(\[im2col\])?', {_LAYER}\)",
    r"bench_optim\.OptimizerStep\.time_step\('numpy', '(adam|sgd-momentum)', "
    r"'1M', 1\)",
)
#: The benchmarks the slowdown must be caught in, as ``asv compare`` names them.
SLOWED: tuple[str, ...] = (
    "bench_conv.Conv2d.time_conv2d('numpy[im2col]', 'lenet C3 6->16 14px', "
    "'forward', 'float32', 1)",
    "bench_optim.OptimizerStep.time_step('numpy', 'adam', '1M', 1)",
)

#: A benchmark's name in ``asv compare``'s table: ``module.Class.method(...)``.
_BENCHMARK_NAME = re.compile(r"^\w+\.\w+\.\w+(\(.*\))?$")


@dataclass(frozen=True)
class Change:
    """One row of ``asv compare``'s table.

    ``mark``: ``+`` slower by more than the factor and significant, ``-``
    faster, ``!`` started failing, empty otherwise. ``ratio`` is after over
    before, prefixed ``~`` where asv found the difference not significant
    given the samples' spread, ``n/a`` where either side has no result.
    """

    mark: str
    name: str
    ratio: str

    @property
    def flagged_slower(self) -> bool:
        return self.mark in ("+", "!")


def parse_compare(output: str) -> list[Change]:
    """The rows of ``asv compare``'s table that compare two results."""
    changes = []
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not _BENCHMARK_NAME.match(cells[4]):
            continue
        mark, _before, _after, ratio, name = cells
        if ratio != "n/a":
            changes.append(Change(mark, name, ratio))
    return changes


def verdict(
    mutant: Iterable[Change], noop: Iterable[Change], slowed: Iterable[str] = SLOWED
) -> list[str]:
    """What is wrong with the two comparisons (empty: the proof holds)."""
    problems = []
    flagged = {change.name for change in mutant if change.flagged_slower}
    slowed = set(slowed)
    ratios = {change.name: change.ratio for change in mutant}
    for name in sorted(slowed - flagged):
        ratio = ratios.get(name, "no result")
        why = (
            ": asv found the change not significant, the samples are too noisy"
            if ratio.startswith("~")
            else ""
        )
        problems.append(f"the slowed benchmark {name} was not flagged ({ratio}{why})")
    for name in sorted(flagged - slowed):
        problems.append(f"{name} was flagged although it was not slowed")
    for change in noop:
        if change.flagged_slower:
            problems.append(
                f"the no-op commit flagged {change.name} ({change.ratio}): noise "
                "above the factor, the machine is not quiet enough to trust"
            )
    return problems


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    print("$", " ".join(command), flush=True)
    completed = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    output = completed.stdout + completed.stderr
    if completed.returncode != 0:
        raise SystemExit(
            f"`{' '.join(command)}` exited {completed.returncode}:\n{output}"
        )
    return output


def _clone_with_commits(scratch: Path) -> tuple[Path, str, str, str]:
    clone = scratch / "repository"
    _run(["git", "clone", "--quiet", "--shared", str(ROOT), str(clone)], scratch)
    identity = ["-c", "user.name=nnspec", "-c", "user.email=nnspec@localhost"]
    hashes = [_run(["git", "rev-parse", "HEAD"], clone).strip()]
    for message in ("no-op (regression proof)", "mutant (regression proof)"):
        _run(
            ["git", *identity, "commit", "--quiet", "--allow-empty", "-m", message],
            clone,
        )
        hashes.append(_run(["git", "rev-parse", "HEAD"], clone).strip())
    return clone, *hashes


def _configuration(scratch: Path, clone: Path) -> Path:
    config = {
        "version": 1,
        "project": "nnspec",
        "repo": str(clone),
        "branches": ["HEAD"],
        "dvcs": "git",
        "environment_type": "virtualenv",
        "launch_method": "spawn",
        "benchmark_dir": str(ROOT / "benchmarks"),
        "env_dir": str(scratch / "env"),
        "results_dir": str(scratch / "results"),
        "html_dir": str(scratch / "html"),
    }
    path = scratch / "asv.conf.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def prove(scratch: Path, factor: float = FACTOR) -> list[str]:
    """Run the three timings and both comparisons; the problems found."""
    clone, base, noop, mutant = _clone_with_commits(scratch)
    config = _configuration(scratch, clone)
    # asv keeps its machine description in $HOME: a scratch one, so that the
    # user's machine file and results stay as they were.
    env = {
        **os.environ,
        "HOME": str(scratch),
        "NNSPEC_BENCH_THREADS": "1",
        "NNSPEC_BACKENDS": "numpy",
    }
    env.pop("NNSPEC_BENCH_SLOWDOWN", None)
    asv = [sys.executable, "-m", "asv"]
    _run(
        [*asv, "machine", "--yes", f"--machine={MACHINE}", f"--config={config}"],
        ROOT,
        env,
    )
    selection = [f"--bench={pattern}" for pattern in SELECTION]
    for commit, extra in (
        (base, {}),
        (noop, {}),
        (mutant, {"NNSPEC_BENCH_SLOWDOWN": SLOWDOWN}),
    ):
        output = _run(
            [
                *asv,
                "run",
                f"--config={config}",
                f"--environment=existing:{sys.executable}",
                f"--set-commit-hash={commit}",
                f"--machine={MACHINE}",
                "--show-stderr",
                *selection,
            ],
            ROOT,
            {**env, **extra},
        )
        print(output[-3000:], flush=True)
    comparisons = {}
    for name, (before, after) in {
        "mutant": (base, mutant),
        "no-op": (base, noop),
    }.items():
        output = _run(
            [
                *asv,
                "compare",
                f"--config={config}",
                f"--machine={MACHINE}",
                f"--factor={factor}",
                "--sort=name",
                before,
                after,
            ],
            ROOT,
            env,
        )
        print(f"--- base against the {name} commit ---\n{output}", flush=True)
        comparisons[name] = parse_compare(output)
        if not comparisons[name]:
            return [f"asv compare of the {name} commit listed no benchmark:\n{output}"]
    return verdict(comparisons["mutant"], comparisons["no-op"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factor", type=float, default=FACTOR)
    parser.add_argument("--keep", type=Path, help="scratch directory to keep")
    args = parser.parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        problems = prove(args.keep.resolve(), args.factor)
    else:
        with tempfile.TemporaryDirectory(prefix="nnspec-regression-proof-") as scratch:
            problems = prove(Path(scratch), args.factor)
    if problems:
        print("regression proof FAILED:\n  " + "\n  ".join(problems))
        return 1
    print(
        f"regression proof holds: {len(SLOWED)} benchmarks slowed by {SLOWDOWN} "
        f"flagged at factor {args.factor}, nothing flagged on a no-op commit"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
