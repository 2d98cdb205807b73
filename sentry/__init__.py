"""sentry: a userspace kernel that sandboxes Linux programs."""
# First, before anything changes them: the signal dispositions and mask the
# guest is to start with.
from sentry import startsignals  # noqa: F401

__version__ = "0.1.0"
