"""nnspec reference."""
