"""Evaluation tools (``qloop eval``): run from a source checkout, never shipped in the wheel."""
