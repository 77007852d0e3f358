"""Backends: the contract (:mod:`backends.contract`) and the built-ins."""

from backends.contract import (
    BUILTIN,
    OPERATIONS,
    Backend,
    BackendError,
    available,
    implements,
    load,
    unavailable_reason,
)

__all__ = [
    "BUILTIN",
    "OPERATIONS",
    "Backend",
    "BackendError",
    "available",
    "implements",
    "load",
    "unavailable_reason",
]
