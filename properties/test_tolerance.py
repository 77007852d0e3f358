"""The tolerance numbers quoted in prose are the ones the suite compares with.

``backends.contract`` holds ``RTOL`` and ``ATOL`` and states them in its
docstring; the README states them to backend authors; ``properties.tolerance``
applies them. A change to the numbers must change all three.

These checks read documents and numbers, never a backend, so they kill no
mutant (``nox -s mutants`` runs every property module and says so).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backends import contract
from properties import tolerance

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("float_dtype", contract.DTYPES)
def test_the_prose_quotes_the_numbers(float_dtype: str) -> None:
    """contract.py's docstring and the README quote each dtype's rtol and atol."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for number in (contract.RTOL[float_dtype], contract.ATOL[float_dtype]):
        quoted = f"{number:.3g}".replace("e-0", "e-")
        assert quoted in contract.__doc__, f"contract docstring lacks {quoted}"
        assert quoted in readme, f"README lacks {quoted}"


def test_float64_has_float32s_units_of_roundoff() -> None:
    """float64's rtol and atol are float32's counted in float64's unit roundoff."""
    ratio = tolerance.UNIT_ROUNDOFF["float64"] / tolerance.UNIT_ROUNDOFF["float32"]
    assert tolerance.UNIT_ROUNDOFF == {"float32": 2.0**-24, "float64": 2.0**-53}
    for table in (tolerance.RTOL, tolerance.ATOL):
        assert table["float64"] == table["float32"] * ratio
        assert table is (contract.RTOL if table is tolerance.RTOL else contract.ATOL)


def test_allowed_is_the_model() -> None:
    """``allowed`` is ``atol + rtol |expected| + 2 u B``, elementwise."""
    expected = np.array([0.0, -1.0, 1e3])
    bound = np.array([0.0, 10.0, 5.0])
    for dtype in contract.DTYPES:
        u = tolerance.UNIT_ROUNDOFF[dtype]
        want = contract.ATOL[dtype] + contract.RTOL[dtype] * np.abs(expected)
        assert np.array_equal(tolerance.allowed(dtype, expected), want)
        assert np.array_equal(
            tolerance.allowed(dtype, expected, bound), want + 2 * u * bound
        )
