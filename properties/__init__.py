"""The Hypothesis suite that holds backends to the reference."""
