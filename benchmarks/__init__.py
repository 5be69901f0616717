"""Reproducible measurements against named baselines (run each as a script)."""
