"""Harmonisation: the dbt project's per-workspace models and the normalisation it calls."""
