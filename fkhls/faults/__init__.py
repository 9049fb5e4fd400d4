"""Fault descriptors (FKeras-compatible) and their hardware addresses."""
