"""Foundations every other package uses: the fixed-point word, errors, safe files, templates."""
