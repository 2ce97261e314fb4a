"""`make bench`: time and peak memory per stage, and identity accuracy against plain Splink."""
