"""sentry benchmark suite: run with `python3 -m bench`."""
