"""Segments over customer_360 and consent-checked exports for activation."""
