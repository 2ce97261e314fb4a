"""`cdp serve`: the agent console (server-rendered pages) and the read-only profile API.

- `cdp.serve.store`: the published profile store, reopened when a run publishes a new one;
- `cdp.serve.app`: `create_app(ws)`, the FastAPI application (API, pages, token check,
  an access log without query strings);
- `cdp.serve.server`: `serve(ws, host, port)`, uvicorn with the checks `cdp serve` makes
  before it binds.

Only FastAPI, Jinja2, DuckDB and the profile readers load: never Splink, Dagster or dbt.
"""
