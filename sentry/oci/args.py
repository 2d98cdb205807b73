"""The OCI commands' own options and arguments, read as runc reads them:
`--name value` or `--name=value`, one dash or two, short aliases (`-b`),
options before, between and after the arguments (until a command's trailing
words begin: `exec ID CMD ARGS...`, or after `--`).

argparse would do as much, but it builds a help formatter at every parse
(importing shutil, gettext and locale): the commands an engine runs for
every container, each in a new interpreter, start sooner without it."""


class UsageError(Exception):
    """A bad command line: the message is the one line the engine reads."""


FLAG, VALUE, INT, LIST = "flag", "value", "int", "list"


class Option:
    def __init__(self, names, kind=FLAG, default=None, choices=None):
        self.names = names.split("|")           # "--bundle|-b"
        self.dest = self.names[0].lstrip("-").replace("-", "_")
        self.kind = kind
        self.default = [] if kind == LIST else (False if kind == FLAG else default)
        self.choices = choices


class Args:
    """The parsed command line: one attribute per option and argument."""

    def __init__(self, **values):
        self.__dict__.update(values)


def parse(prog, argv, options=(), args=("id",), optional=(), rest=None):
    """argv -> Args.  args: the required arguments' names, in order (the
    container's id by default); optional: (name, default) pairs after them;
    rest: the name that takes the words after those (a list), if any."""
    by_name = {n: o for o in options for n in o.names}
    values = {o.dest: (list(o.default) if o.kind == LIST else o.default) for o in options}
    words = []
    slots = len(args) + len(optional)
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            words.extend(argv[i:])
            break
        if not a.startswith("-") or a == "-":
            if rest is not None and len(words) >= slots:
                words.extend(argv[i - 1:])      # the trailing words are the command's own
                break
            words.append(a)
            continue
        name, eq, value = a.partition("=")
        if not name.startswith("--") and len(name) > 2:
            name = "-" + name           # -bundle, as runc takes it
        opt = by_name.get(name)
        if opt is None:
            raise UsageError(f"{prog}: unknown option {name}")
        if opt.kind == FLAG:
            if eq and value.lower() not in ("true", "false", "1", "0"):
                raise UsageError(f"{prog}: option {name} takes true or false, not {value}")
            values[opt.dest] = not eq or value.lower() in ("true", "1")
            continue
        if not eq:
            if i >= len(argv):
                raise UsageError(f"{prog}: option {name} needs a value")
            value = argv[i]
            i += 1
        if opt.kind == INT:
            try:
                value = int(value)
            except ValueError:
                raise UsageError(f"{prog}: option {name}: invalid number {value!r}")
        if opt.choices and value not in opt.choices:
            raise UsageError(f"{prog}: option {name}: {value!r} is not one of {', '.join(opt.choices)}")
        if opt.kind == LIST:
            values[opt.dest].append(value)
        else:
            values[opt.dest] = value
    if len(words) < len(args):
        raise UsageError(f"{prog}: missing {' and '.join(n.upper() for n in args[len(words):])}"
                         if args != ("id",) else f"{prog}: missing the container's ID")
    for n, w in zip(args, words):
        values[n] = w
    for k, (n, default) in enumerate(optional):
        values[n] = words[len(args) + k] if len(words) > len(args) + k else default
    extra = words[slots:]
    if rest is not None:
        values[rest] = extra
    elif extra:
        raise UsageError(f"{prog}: unexpected argument {extra[0]!r}")
    return Args(**values)
