"""Identity resolution: match rules, Splink matching, guarded clustering, stable ids.

Nothing is imported here: settings and readers of the outputs (the profile, the CLI)
must not pay for importing Splink. Resolution itself is `cdp.identity.resolve`.
"""
