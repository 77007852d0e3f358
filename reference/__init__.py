"""The readable specification: pure NumPy float64 functions.

Each backward sits right under its forward.
Every operation of the backend contract is importable from here
(``reference.conv2d``, ``reference.conv2d_backward``, ...), as are the
reference-only parts: learning-rate schedules, preprocessing and the notes'
small models (in their own modules).

The lecture notes cited as "notes 000" … "notes 004" are described in
``docs/bibliography.md``, with the papers.
"""

from reference import (
    activations,
    initializers,
    layers,
    losses,
    models,
    normalization,
    optimizers,
    preprocessing,
    schedules,
)
from reference.activations import *  # noqa: F403
from reference.initializers import *  # noqa: F403
from reference.layers import *  # noqa: F403
from reference.losses import *  # noqa: F403
from reference.normalization import *  # noqa: F403
from reference.optimizers import *  # noqa: F403

MODULES = (
    activations,
    layers,
    normalization,
    losses,
    initializers,
    optimizers,
    schedules,
    preprocessing,
    models,
)
