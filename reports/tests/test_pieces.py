"""The small pieces: reading failure texts, classifying outcomes, docstring maths."""

from __future__ import annotations

import pytest

from properties.results import (
    family_of,
    is_timeout,
    parse_hypothesis_statistics,
    skip_outcome,
)
from reports.coverage import (
    MathRenderer,
    docstring_segments,
    for_mathtext,
    split_equations,
    tex_to_unicode,
)
from reports.model import error_summary, falsifying_inputs, hypothesis_reproduction

STATISTICS = """properties/test_agreement.py::test_forward[relu-numpy-float32]:

  - during reuse phase (0.00 seconds):
    - Typical runtimes: ~ 1ms, of which ~ 1ms in data generation
    - 2 passing, 0 failing, and 0 invalid test cases
  - during generate phase (0.20 seconds):
    - Typical runtimes: ~ 2ms, of which ~ 1ms in data generation
    - 20 passing, 1 failing, and 3 invalid test cases
  - during shrink phase (0.10 seconds):
    - Typical runtimes: ~ 1ms, of which < 1ms in data generation
    - 7 passing, 4 failing, and 0 invalid test cases
  - Stopped because nothing left to do
"""


def test_hypothesis_statistics_count_examples_apart_from_shrinking():
    parsed = parse_hypothesis_statistics(STATISTICS)
    assert parsed == {
        "examples": 23,
        "invalid_examples": 3,
        "shrinks": 11,
        "stop_reason": "nothing left to do",
    }
    assert parse_hypothesis_statistics("no statistics here") == {}


@pytest.mark.parametrize(
    ("reason", "outcome"),
    [
        ("not implemented: backend 'tiny' has no float64", "skipped-not-implemented"),
        ("Skipped: not implemented: conv2d", "skipped-not-implemented"),
        ("backend 'cupy' unavailable: CuPy is not installed", "skipped-unavailable"),
        ("needs a GPU", "skipped-other"),
    ],
)
def test_skip_reasons_are_classified(reason: str, outcome: str):
    assert skip_outcome(reason) == outcome


def test_family_is_the_module_without_test_prefix():
    assert family_of("properties/test_agreement.py::test_forward[relu]") == "agreement"
    assert family_of("properties/test_batchnorm.py::test_x") == "batchnorm"


def test_timeouts_are_recognised_from_either_handler():
    assert is_timeout("Failed: Timeout (>120.0s) from pytest-timeout.")
    assert is_timeout("CheckTimeout: Timeout (>3s) from pytest-timeout: x was stopped")
    assert not is_timeout("AssertionError: the timeout argument is wrong")


LONGREPR = """    def test_forward(op):
>       assert False, "bad"
E   AssertionError: bad <value>
E   Falsifying example: test_forward(
E       op=relu,
E       data=data(...),
E   )
E   Draw 1: 3
You can reproduce this example by temporarily adding
@reproduce_failure('6.1', b'AA==') as a decorator
"""


def test_falsifying_inputs_and_reproduction_are_extracted():
    assert falsifying_inputs(LONGREPR) == (
        "Falsifying example: test_forward(\n    op=relu,\n    data=data(...),\n)"
    )
    assert hypothesis_reproduction(LONGREPR) == ["@reproduce_failure('6.1', b'AA==')"]
    assert falsifying_inputs("no example") is None


def test_error_summary_leaves_out_the_inputs():
    message = (
        "AssertionError: bad <value>\nFailing test case: test_forward(\n    op=relu,\n)"
    )
    assert error_summary(message, LONGREPR) == "AssertionError: bad <value>"
    assert error_summary("", LONGREPR) == "AssertionError: bad <value>"


def test_tex_is_rewritten_for_mathtext():
    assert for_mathtext(r"x \le 0, \tfrac12 \text{if } y") == (
        r"x \leq 0, \frac{1}{2} \mathrm{if\ } y"
    )
    assert for_mathtext(r"\left( a \right)") == "( a )"


def test_display_blocks_split_into_equations():
    assert split_equations("a = b \\\\\nc = d\n\ne = f") == ["a = b", "c = d", "e = f"]
    assert split_equations(r"\begin{aligned} a &= b \\ c &= d \end{aligned}") == [
        "a  = b",
        "c  = d",
    ]


def test_docstrings_split_into_text_and_drawn_equations(tmp_path):
    doc = (
        "Rectified :math:`\\alpha` unit.\n\n.. math::\n\n    y = \\max(0, x)\n\n"
        "See ``relu_backward`` and :func:`relu`.\n\n"
        ".. math::\n\n    \\unknowncommand{x}\n"
    )
    renderer = MathRenderer(tmp_path / "math")
    segments = docstring_segments(doc, renderer)
    kinds = [segment.kind for segment in segments]
    assert kinds == ["text", "math", "text", "math"]
    assert segments[0].text == "Rectified α unit."
    assert segments[1].image and (tmp_path / segments[1].image).is_file()
    assert segments[2].text == "See relu_backward and relu."
    assert segments[3].image is None, "what mathtext cannot draw stays as TeX"
    assert renderer.drawn == 1 and renderer.failed == 1


def test_inline_tex_reads_as_unicode():
    assert (
        tex_to_unicode(r"\frac{\partial L}{\partial x} \le \sigma^2")
        == "(∂ L)/(∂ x) ≤ σ^2"
    )
