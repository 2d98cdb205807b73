"""The runtime's own messages: text on stderr, or --log FILE, or JSON lines
({"level","msg","time"}) with --log-format json, which podman and containerd
read back (podman takes a failed command's message from the last error line).

The commands an engine runs for every container (state, start, kill,
delete) write their lines here directly; the logging module (a few ms to
import) is routed through the same lines only by the commands that run code
using it -- the Sentry's own log, the config reader's (attach_logging)."""
import json
import sys

from sentry.oci.state import now_rfc3339

_stream = sys.stderr
_json = False
_to_file = False
_debug = False


def setup(log_file=None, log_format="text", debug=False):
    """Where the lines go: --log (else stderr), in --log-format."""
    global _stream, _json, _to_file, _debug
    if log_format not in ("text", "json"):
        raise ValueError(f"--log-format {log_format}: text or json")
    # line-buffered appends: podman reads the file back; each line is one write
    _stream = open(log_file, "a", buffering=1) if log_file else sys.stderr
    _json = log_format == "json"
    _to_file = bool(log_file)
    _debug = debug


def emit(level, msg):
    """One line of the runtime's log (level: debug, info, warn, error)."""
    if level == "debug" and not _debug:
        return
    line = json.dumps({"level": level, "msg": msg, "time": now_rfc3339()}) if _json else f"sentry: {msg}"
    try:
        _stream.write(line + "\n")
        _stream.flush()
    except (OSError, ValueError):
        pass


def warning(msg):
    emit("warn", msg)


def error(msg):
    """A command's failure: an error line in --log for the engine to read
    back, and one line on stderr: bare with --log, as runc prints it (the
    engine names the runtime itself), else with sentry's prefix."""
    if _to_file:
        emit("error", msg)
    print(msg if _to_file else f"sentry: {msg}", file=sys.stderr, flush=True)


def attach_logging():
    """The "sentry" logger (the Sentry's own log, the config reader's)
    writes its records as lines of this log."""
    import logging

    class Handler(logging.Handler):
        def emit(self, record):
            emit(record.levelname.lower().replace("warning", "warn"), record.getMessage())

    root = logging.getLogger("sentry")
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(Handler())
    root.setLevel(logging.DEBUG if _debug else logging.WARNING)
    root.propagate = False
