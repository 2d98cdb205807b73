"""The layers import downward only, and no two modules import each other.

Every module of sentry/ and syscalls/ is parsed (nothing is imported), and
every import counts, a function's own included: an import that runs late
still ties the two modules together.  The order, lowest first, is the one
docs/design.md describes ("Layers"); a module may import its own layer and
those below it.
"""
import ast
import fnmatch
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PACKAGES = ("sentry", "syscalls")

LAYERS = [
    # no import of the project: the errno exception, the host's confined
    # openat2, the cffi module, what the process started with, its user namespace
    ("leaf", ["sentry", "sentry._native", "sentry.errors", "sentry.host", "sentry.hostids", "sentry.startsignals"]),
    # stopping a guest, its registers and memory, the filter
    ("platform", ["sentry.platform", "sentry.platform.*"]),
    # the mount table and path resolution
    ("vfs", ["sentry.vfs", "sentry.vfs.*"]),
    # one backend per kind of file system
    ("fsimpl", ["sentry.fsimpl", "sentry.fsimpl.*"]),
    # reading a program's head: ELF and `#!`
    ("loader", ["sentry.loader", "sentry.loader.*"]),
    # tasks, the dispatcher and the syscall interface handlers implement
    ("kernel", ["sentry.kernel", "sentry.kernel.*"]),
    # the sandbox's network: outbound policy and connections made on the host
    ("net", ["sentry.net", "sentry.net.*"]),
    # the handlers and the table they make; --strace prints what they declare
    ("syscalls", ["syscalls", "syscalls.*", "sentry.strace", "sentry.strace.*"]),
    # assembling a sandbox and the command line
    # (and the OCI runtime's commands, which turn config.json into a sandbox)
    ("top", ["sentry.sandbox", "sentry.sandbox.*", "sentry.cli", "sentry.__main__", "sentry.launcher", "sentry.oci", "sentry.oci.*"]),
]
# Never import the handlers or the sandbox that assembles them.
BELOW_SYSCALLS = ("platform", "vfs", "fsimpl", "loader", "kernel", "net")


def _modules():
    """Module name -> file, for every module of the project's packages."""
    mods = {"sentry._native": None}       # the cffi extension: C, imports nothing
    for pkg in PACKAGES:
        for d, _, files in os.walk(os.path.join(ROOT, pkg)):
            for f in files:
                if not f.endswith(".py"):
                    continue
                rel = os.path.relpath(os.path.join(d, f), ROOT)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                mods[".".join(rel)] = os.path.join(d, f)
    return mods


def _imports(name, path, mods):
    """The project modules that module `name` imports, anywhere in it."""
    is_pkg = path.endswith("__init__.py")
    out = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")[:len(name.split(".")) - node.level + is_pkg]
                base = ".".join(parts + ([base] if base else []))
            # `from pkg import mod` imports a module; `from mod import name` its module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in mods:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def _graph():
    mods = _modules()
    return {name: _imports(name, path, mods) for name, path in mods.items() if path}


def _layer(mod):
    for i, (layer, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(mod, p) for p in patterns):
            return i, layer
    raise AssertionError(f"{mod} is in no layer: add it to LAYERS here and to docs/design.md")


def test_nothing_below_the_handlers_imports_them():
    bad = []
    for mod, deps in sorted(_graph().items()):
        if _layer(mod)[1] not in BELOW_SYSCALLS:
            continue
        for dep in sorted(deps):
            if dep.startswith(("syscalls.", "sentry.sandbox.")) or dep in ("syscalls", "sentry.sandbox", "sentry.cli"):
                bad.append(f"{mod} imports {dep}")
    assert not bad, "\n".join(bad)


def test_layers_import_downward_only():
    bad = []
    for mod, deps in sorted(_graph().items()):
        rank, layer = _layer(mod)
        for dep in sorted(deps):
            dep_rank, dep_layer = _layer(dep)
            if dep_rank > rank:
                bad.append(f"{mod} ({layer}) imports {dep} ({dep_layer})")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = _graph()
    # Tarjan's strongly connected components: any of more than one module is a cycle
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                cycles.append(sorted(scc))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "\n".join(" <-> ".join(c) for c in cycles)
