"""What the optimizer strategies draw: categories, a tally, and ``--nnspec-coverage``.

A trajectory check only tests a formula if it draws the hyperparameters that
make the formula matter: Nesterov with a momentum that changes the trajectory
(at least 0.1), momentum together with weight decay, a weight decay large
enough to show (at least 1e-3, not 1e-300). :func:`categories` sorts one draw
into the categories of :data:`CATEGORIES`; :func:`record` (called by
:func:`properties.catalog.optimizers.optimizer_hyper` on every draw) tallies them; and,
loaded as a pytest plugin (``-p properties.draws`` in pyproject's addopts),
``--nnspec-coverage`` prints at the end of the run the fraction of the drawn
samples of each optimizer in each category. Under pytest-xdist each worker
sends its tally to the controller, which adds them up.

``properties/test_optimizers.py::test_strategy_reaches_what_matters`` asserts
the fractions of :data:`MINIMUM_FRACTIONS` on the strategy itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest

#: Weight decay and momentum below these change a short trajectory by less
#: than the tolerance: drawn, they test nothing.
SMALLEST_MOMENTUM = 0.1
SMALLEST_WEIGHT_DECAY = 1e-3

#: Every category, by optimizer: (name, predicate on the hyperparameters).
CATEGORIES: dict[str, tuple[tuple[str, Any], ...]] = {
    "sgd": (
        ("no momentum", lambda h: h.get("momentum", 0.0) == 0.0),
        (
            "momentum >= 0.1",
            lambda h: h.get("momentum", 0.0) >= SMALLEST_MOMENTUM,
        ),
        (
            "nesterov, momentum >= 0.1",
            lambda h: (
                h.get("nesterov", False) and h.get("momentum", 0.0) >= SMALLEST_MOMENTUM
            ),
        ),
        (
            "momentum >= 0.1 with weight decay >= 1e-3",
            lambda h: (
                h.get("momentum", 0.0) >= SMALLEST_MOMENTUM
                and h.get("weight_decay", 0.0) >= SMALLEST_WEIGHT_DECAY
            ),
        ),
        (
            "nesterov with weight decay >= 1e-3",
            lambda h: (
                h.get("nesterov", False)
                and h.get("weight_decay", 0.0) >= SMALLEST_WEIGHT_DECAY
            ),
        ),
        (
            "momentum in (0, 0.1): too small to matter",
            lambda h: 0.0 < h.get("momentum", 0.0) < SMALLEST_MOMENTUM,
        ),
        (
            "weight decay in (0, 1e-3): too small to matter",
            lambda h: 0.0 < h.get("weight_decay", 0.0) < SMALLEST_WEIGHT_DECAY,
        ),
    ),
    "adam": (
        (
            "weight decay >= 1e-3",
            lambda h: h.get("weight_decay", 0.0) >= SMALLEST_WEIGHT_DECAY,
        ),
        (
            "weight decay in (0, 1e-3): too small to matter",
            lambda h: 0.0 < h.get("weight_decay", 0.0) < SMALLEST_WEIGHT_DECAY,
        ),
    ),
}

#: The least fraction of draws each category must get (the most, for the
#: categories that test nothing: none at all).
MINIMUM_FRACTIONS: dict[tuple[str, str], float] = {
    ("sgd", "no momentum"): 0.1,
    ("sgd", "momentum >= 0.1"): 0.5,
    ("sgd", "nesterov, momentum >= 0.1"): 0.2,
    ("sgd", "momentum >= 0.1 with weight decay >= 1e-3"): 0.2,
    ("sgd", "nesterov with weight decay >= 1e-3"): 0.1,
    ("adam", "weight decay >= 1e-3"): 0.2,
}
MAXIMUM_FRACTIONS: dict[tuple[str, str], float] = {
    ("sgd", "momentum in (0, 0.1): too small to matter"): 0.0,
    ("sgd", "weight decay in (0, 1e-3): too small to matter"): 0.0,
    ("adam", "weight decay in (0, 1e-3): too small to matter"): 0.0,
}

#: The draws of this process: (optimizer, category or "total") -> count.
TALLY: Counter[tuple[str, str]] = Counter()


def categories(optimizer: str, hyper: Mapping[str, Any]) -> list[str]:
    """The categories of :data:`CATEGORIES` that one draw falls in."""
    return [name for name, holds in CATEGORIES.get(optimizer, ()) if holds(hyper)]


def record(optimizer: str, hyper: dict[str, Any]) -> dict[str, Any]:
    """Count one draw of ``optimizer``'s hyperparameters; return them unchanged."""
    TALLY[(optimizer, "total")] += 1
    for category in categories(optimizer, hyper):
        TALLY[(optimizer, category)] += 1
    return hyper


def fractions(tally: Mapping[tuple[str, str], int]) -> dict[tuple[str, str], float]:
    """Each category's count over its optimizer's total."""
    return {
        (optimizer, category): count / tally[(optimizer, "total")]
        for (optimizer, category), count in tally.items()
        if category != "total" and tally.get((optimizer, "total"))
    }


def table(tally: Mapping[tuple[str, str], int]) -> list[str]:
    """The coverage table's lines: optimizer, category, count, fraction, minimum."""
    lines = ["optimizer draws by category (fraction of that optimizer's draws):"]
    share = fractions(tally)
    for optimizer, entries in CATEGORIES.items():
        total = tally.get((optimizer, "total"), 0)
        lines.append(f"  {optimizer}: {total} draws")
        for category, _ in entries:
            count = tally.get((optimizer, category), 0)
            bound = MINIMUM_FRACTIONS.get((optimizer, category))
            limit = f"  (min {bound:.0%})" if bound is not None else ""
            fraction = share.get((optimizer, category), 0.0)
            lines.append(f"    {category:<48} {count:>6} {fraction:>7.1%}{limit}")
    return lines


# -- the pytest plugin -------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("nnspec").addoption(
        "--nnspec-coverage",
        action="store_true",
        default=False,
        help="print, at the end, the fraction of optimizer hyperparameter draws "
        "in each category (Nesterov with momentum, momentum with weight decay...)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config._nnspec_draws = Counter()  # the tallies the workers send


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker sends its tally to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["nnspec_draws"] = [[*key, n] for key, n in TALLY.items()]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """The controller adds up each finished worker's tally."""
    output = getattr(node, "workeroutput", None) or {}
    for optimizer, category, count in output.get("nnspec_draws", ()):
        node.config._nnspec_draws[(optimizer, category)] += count


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if not config.getoption("--nnspec-coverage"):
        return
    tally = Counter(TALLY)
    tally.update(config._nnspec_draws)
    terminalreporter.section("nnspec coverage of the optimizer draws")
    for line in table(tally):
        terminalreporter.write_line(line)
