"""Benchmarks, run as scripts (python benchmarks/NAME.py).

A package only so that mypy tells benchmarks/query.py from nasdb's query package.
"""
