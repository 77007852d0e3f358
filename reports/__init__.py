"""The nnspec report: a static HTML site of the verification and the performance.

``python -m reports build --results R.json --bench B.json --asv-html DIR --out DIR``
(what ``nox -s report`` runs) writes:

* ``index.html``: the verification matrix, op by backend, one verdict per
  property family (pass, fail, timed out, error, not implemented, unavailable)
  with the Hypothesis examples behind it;
* ``failures.html``: each failure's error, inputs and the commands that
  reproduce it;
* ``coverage.html``: every component of the reference with its docstring and
  equations, and how each backend fares on it;
* ``performance.html``: per-kernel tables and figures of time and throughput,
  against torch and against the machine's measured limits, and asv's site.

Modules: :mod:`reports.model` (the results file), :mod:`reports.coverage`,
:mod:`reports.performance`, :mod:`reports.limits`, :mod:`reports.environment`,
:mod:`reports.build` (templates in ``reports/templates``). The results file is
written by the suite's plugin, ``properties/results.py``.
"""
