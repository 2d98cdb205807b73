"""The runtime's own messages: text on stderr, or --log FILE, or JSON lines
({"level","msg","time"}) with --log-format json, which podman and containerd
read back (podman takes a failed command's message from the last error line)."""
import datetime
import json
import logging
import sys


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    def format(self, record):
        return json.dumps({"level": record.levelname.lower().replace("warning", "warn"),
                           "msg": record.getMessage(), "time": _now()})


class TextFormatter(logging.Formatter):
    def format(self, record):
        return f"sentry: {record.getMessage()}"


_to_file = False


def setup(log_file=None, log_format="text", debug=False):
    """Route the "sentry" logger (the Sentry's own log too) to --log or stderr."""
    global _to_file
    if log_format not in ("text", "json"):
        raise ValueError(f"--log-format {log_format}: text or json")
    if log_file:
        # line-buffered appends: podman reads the file back; each line is one write
        handler = logging.StreamHandler(open(log_file, "a", buffering=1))
    else:
        handler = logging.StreamHandler(sys.stderr)
    _to_file = bool(log_file)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger("sentry")
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    root.propagate = False


def error(msg):
    """A command's failure: an error line in --log for the engine to read
    back, and one line on stderr: bare with --log, as runc prints it (the
    engine names the runtime itself), else with sentry's prefix."""
    if _to_file:
        logging.getLogger("sentry").error(msg)
    print(msg if _to_file else f"sentry: {msg}", file=sys.stderr, flush=True)
