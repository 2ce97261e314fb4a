"""The source YAML the generator writes beside its data: the same format a user writes.

The declarations are package data, `cdp/templates/demo/sources/<name>.yml`, copied into
the demo workspace as they are.
"""

from __future__ import annotations

from importlib import resources

import yaml


def _load() -> dict[str, str]:
    folder = resources.files("cdp").joinpath("templates", "demo", "sources")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".yml")), key=lambda f: f.name)
    return {f.name.removesuffix(".yml"): f.read_text("utf-8") for f in files}


SOURCES: dict[str, str] = _load()
FORMATS: dict[str, str] = {name: yaml.safe_load(text)["format"] for name, text in SOURCES.items()}
