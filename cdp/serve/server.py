"""`cdp serve`: uvicorn over `create_app`, with the checks made before it binds.

- On a loopback address (the default 127.0.0.1) the console is open to this machine's
  users, as `cdp profile` is. Anywhere else (`--host 0.0.0.0`) it refuses to start
  without `CDP_SERVE_TOKEN` (at least 16 characters), and then every request must carry
  `Authorization: Bearer <token>`; a browser opens `/?token=<token>` once and gets a cookie.
  A token set in the environment is required on loopback too.
- uvicorn's access log is off: it prints query strings, and a search carries an email or
  a phone. The app logs the route template and the status instead (cdp.serve.app).
- SIGTERM or Ctrl-C stops it: uvicorn stops accepting, lets requests in flight finish for
  up to GRACE_SECONDS, and exits 0.
"""

from __future__ import annotations

import copy
import ipaddress
import os

from cdp.errors import CdpError
from cdp.workspace import Workspace

TOKEN_ENV = "CDP_SERVE_TOKEN"
MIN_TOKEN_CHARS = 16
GRACE_SECONDS = 3


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def required_token(host: str, environ=os.environ) -> str | None:
    """The token requests must carry, or None; CdpError when it may not start."""
    token = environ.get(TOKEN_ENV) or None
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise CdpError(f"{TOKEN_ENV} is shorter than {MIN_TOKEN_CHARS} characters")
    if token is None and not is_loopback(host):
        raise CdpError(
            f"refusing to serve on {host} without a token: set {TOKEN_ENV} (at least "
            f"{MIN_TOKEN_CHARS} characters; e.g. `export {TOKEN_ENV}=$(openssl rand -hex 24)`), "
            "or bind to 127.0.0.1"
        )
    return token


def log_config() -> dict:
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["cdp.serve"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def serve(ws: Workspace, host: str = "127.0.0.1", port: int = 8000) -> None:
    import uvicorn

    from cdp.serve.app import create_app

    token = required_token(host)
    app = create_app(ws, token=token)
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=False,
        log_config=log_config(),
        timeout_graceful_shutdown=GRACE_SECONDS,
        server_header=False,
    )
