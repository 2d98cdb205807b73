"""sentry: a userspace kernel that sandboxes Linux programs."""
__version__ = "0.1.0"
