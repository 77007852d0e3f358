"""Tests of the report: the builder on fixed results, the plugin, the browser."""
