"""Identity resolution: deterministic stitching, Splink matching, guarded clustering, stable ids."""

from cdp.identity.resolve import ResolveResult, TrainResult, resolve, train

__all__ = ["ResolveResult", "TrainResult", "resolve", "train"]
