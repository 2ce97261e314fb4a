"""Privacy: erasure (cdp forget) and the suppression list."""
