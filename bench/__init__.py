"""Benchmarks of what interpretability costs (issue 7). Not part of the installed package.

Run everything with ``.venv/bin/python bench/run_benchmarks.py``; see ``BENCHMARKS.md``.
"""
