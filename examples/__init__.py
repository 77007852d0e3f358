"""Example third-party backends: how to hold your own implementation to nnspec.

See :mod:`examples.tiny` for a small backend written as a third party would
write one, and the instructions for verifying it.
"""
