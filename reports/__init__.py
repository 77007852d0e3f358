"""The nnspec report: a static HTML site of the verification and the performance.

``python -m reports build --results R.json --bench B.json --asv-html DIR --out DIR``
(what ``nox -s report`` runs) writes:

* ``index.html``: the verification matrix, op by backend, one verdict per
  property family (pass, fail, timed out, error, never ran, unsupported, not
  implemented, unavailable) with the Hypothesis examples behind it; a headline
  of each backend's checks counted apart from the suite's own tests; the
  checks that never ran, grouped by why; what each backend declined;
* ``failures.html``: each failure's error, inputs and the commands that
  reproduce it, with where to look first when a composite check fails because
  one of the ops it uses fails on its own, and the checks that never ran;
* ``precision.html``: for each op, backend and dtype, the worst error seen
  as a multiple of the error allowed;
* ``coverage.html``: every component of the reference with its docstring and
  equations, and how each backend fares on it;
* ``performance.html``: per-kernel tables and figures of time and throughput,
  against torch and against the machine's measured limits, and asv's site.

Modules: :mod:`reports.model` (the results file), :mod:`reports.coverage`,
:mod:`reports.performance`, :mod:`reports.limits`, :mod:`reports.environment`,
:mod:`reports.build` (templates in ``reports/templates``). The results file is
written by the suite's plugin, ``properties/results.py``.
"""
