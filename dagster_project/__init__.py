"""Dagster wiring of the CDP lakehouse. The logic lives in the `cdp` package."""
