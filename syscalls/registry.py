"""Where each handler module declares its handlers: `@handler("name", ...)`
(the outcomes a handler returns are sentry/kernel/syscall.py's).  The table
is made from this registry by syscalls.table.build_table()."""
from sentry.kernel.syscall import Handler

HANDLERS = {}          # name -> Handler


def handler(*names, support="full", note=""):
    def register(fn):
        for name in names:
            HANDLERS[name] = Handler(name, fn, support, note)
        return fn
    return register
