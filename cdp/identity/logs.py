"""How loud Splink is: its warnings (untrained parameters, levels unseen in training)
are for developers; `cdp run --verbose` (CDP_VERBOSE=1) shows them."""

from __future__ import annotations

import logging
import os


def splink_log_level() -> int:
    return logging.WARNING if os.environ.get("CDP_VERBOSE") else logging.ERROR
