"""A sandbox: its configuration (config.py), its mount table (mounts.py), its
first process (guest.py), its private directories on the host
(privatedirs.py), and run() (start.py), which assembles them with the Kernel
that serves it."""
from sentry.sandbox.config import Config, ConfigError, check_config, parse_mount
from sentry.sandbox.start import exit_code, run

__all__ = ["Config", "ConfigError", "check_config", "exit_code", "parse_mount", "run"]
