"""Serving copies of the lake for fast reads: the profile store."""
