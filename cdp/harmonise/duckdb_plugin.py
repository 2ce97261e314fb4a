"""A dbt-duckdb plugin: registers the Python normalisers as DuckDB functions.

The functions are Arrow-vectorised and parse each distinct value of a batch once, so a
million rows with a hundred thousand distinct phone numbers cost a hundred thousand
parses, not a million.
"""

from __future__ import annotations

from dbt.adapters.duckdb.plugins import BasePlugin

from cdp.harmonise.normalise import register_functions
from cdp.harmonise.phone_cache import persist_in_workspace


class Plugin(BasePlugin):
    def configure_connection(self, conn) -> None:
        persist_in_workspace()  # numbers read in one run are not read again in the next
        register_functions(conn)
