"""Example third-party backends: how to hold your own implementation to nnspec.

See :mod:`examples.tiny` for a small backend written as a third party would
write one, and the instructions for verifying it; :mod:`examples.declining`
for one that declines the options it lacks (``NotImplementedError``), and
:mod:`examples.sharing` for a correct backend whose arrays share memory (views
from ``to_numpy``, optimizer steps in place), which the suite must pass.
"""
