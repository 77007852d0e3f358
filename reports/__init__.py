"""nnspec reports."""
