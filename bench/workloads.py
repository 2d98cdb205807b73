"""Whole-process workloads, timed by wall clock from the outside.

Inputs and outputs live apart.  setup() writes the inputs once into a
dir under /var/tmp, which every runner can read (sentry and runsc show
the host's / read-only or copy-on-write).  Outputs go to paths starting
with an "out" prefix under /tmp, the one place every runner lets a guest
write (sentry gives each sandbox a private /tmp).  The harness removes
the outputs before every run, untimed, so every runner starts alike.
"""

import os
import sys
from dataclasses import dataclass

TAR_FILES = 3000
SQLITE_ROWS = 3000
SQLITE_ROWS_PER_COMMIT = 50

# Real interpreter path: `python3` here may be a pyenv shim (a bash script),
# and timing that would measure pyenv, not Python.
PY = os.path.realpath(sys.executable)


@dataclass
class Workload:
    name: str
    template: list  # "{in}": input dir, "{out}": output path prefix
    what: str

    def argv(self, indir, out):
        # Absolute paths: the result must not hinge on a runner's cwd handling.
        return [a.replace("{in}", indir).replace("{out}", out) for a in self.template]


WORKLOADS = [
    Workload("true", ["/bin/true"], "start-up latency of a trivial dynamic binary"),
    Workload("sh_200", ["/bin/sh", "{in}/script.sh"],
             "200 short shell commands, builtins and fork+exec"),
    Workload("tar_3000", ["/bin/sh", "-c",
                          "mkdir -p {out}-tar/x && "
                          "tar -cf {out}-tar/tree.tar -C {in}/tree . && "
                          "tar -xf {out}-tar/tree.tar -C {out}-tar/x"],
             f"tar create + extract of {TAR_FILES} small files"),
    Workload("py_import", [PY, "-c", "import json, sqlite3, subprocess, decimal"],
             "python start-up + stdlib imports"),
    Workload("gcc_4files", ["gcc", "-O1", "-o", "{out}-prog"]
             + [f"{{in}}/cprog/{name}.c" for name in ("main", "list", "hash", "fmt")],
             "compile and link a 4-file C program"),
    Workload("sqlite_io", [PY, "{in}/sqlite_io.py", "{out}-bench.db"],
             f"python sqlite3: {SQLITE_ROWS} inserts, commit every {SQLITE_ROWS_PER_COMMIT}"),
]


# A 10-line block repeated 20 times; about half the lines fork+exec.
_SH_BLOCK = """\
true
echo hello | cat >/dev/null
ls / >/dev/null
basename /usr/lib/libfoo.so.1 >/dev/null
n=$((n + 1))
test -d /tmp
dirname /a/b/c >/dev/null
cat /etc/os-release >/dev/null
printf '%s\\n' a b c | wc -l >/dev/null
[ -n "$n" ] && :
"""

_SQLITE_SCRIPT = f"""\
import os, sqlite3, sys
path = sys.argv[1]
for suffix in ("", "-journal", "-wal"):
    if os.path.exists(path + suffix):
        os.unlink(path + suffix)
db = sqlite3.connect(path)
db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, value REAL)")
for i in range({SQLITE_ROWS}):
    db.execute("INSERT INTO t (name, value) VALUES (?, ?)", (f"row-{{i}}", i * 0.5))
    if i % {SQLITE_ROWS_PER_COMMIT} == {SQLITE_ROWS_PER_COMMIT} - 1:
        db.commit()
db.commit()
count, total = db.execute("SELECT count(*), sum(value) FROM t").fetchone()
assert count == {SQLITE_ROWS}, count
db.close()
"""

_C_SOURCES = {
    "list.h": "struct node { int v; struct node *next; };\n"
              "struct node *push(struct node *l, int v);\nint length(const struct node *l);\n",
    "hash.h": "unsigned hash(const char *s);\n",
    "fmt.h": "#include <stddef.h>\nvoid fmt_number(char *buf, size_t n, unsigned v);\n",
    "list.c": '#include <stdlib.h>\n#include "list.h"\n'
              "struct node *push(struct node *l, int v)\n{\n"
              "    struct node *n = malloc(sizeof *n);\n    n->v = v;\n    n->next = l;\n    return n;\n}\n"
              "int length(const struct node *l)\n{\n    int k = 0;\n"
              "    for (; l; l = l->next)\n        k++;\n    return k;\n}\n",
    "hash.c": '#include "hash.h"\n'
              "unsigned hash(const char *s)\n{\n    unsigned h = 2166136261u;\n"
              "    while (*s)\n        h = (h ^ (unsigned char)*s++) * 16777619u;\n    return h;\n}\n",
    "fmt.c": '#include <stdio.h>\n#include "fmt.h"\n'
             'void fmt_number(char *buf, size_t n, unsigned v)\n{\n    snprintf(buf, n, "%08x", v);\n}\n',
    "main.c": '#include <stdio.h>\n#include <string.h>\n'
              '#include "list.h"\n#include "hash.h"\n#include "fmt.h"\n'
              "int main(int argc, char **argv)\n{\n    struct node *l = NULL;\n    char buf[16];\n"
              "    for (int i = 0; i < argc; i++)\n        l = push(l, (int)hash(argv[i]));\n"
              "    fmt_number(buf, sizeof buf, (unsigned)length(l));\n"
              '    puts(buf);\n    return strlen(buf) == 8 ? 0 : 1;\n}\n',
}


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def setup(workdir):
    _write(os.path.join(workdir, "script.sh"), "n=0\n" + _SH_BLOCK * 20)
    _write(os.path.join(workdir, "sqlite_io.py"), _SQLITE_SCRIPT)
    cdir = os.path.join(workdir, "cprog")
    os.makedirs(cdir, exist_ok=True)
    for name, text in _C_SOURCES.items():
        _write(os.path.join(cdir, name), text)
    # 30 dirs x 100 files of ~100 bytes: many tiny files, as in a source tree.
    tree = os.path.join(workdir, "tree")
    for i in range(TAR_FILES):
        d = os.path.join(tree, f"d{i // 100:02d}")
        if i % 100 == 0:
            os.makedirs(d, exist_ok=True)
        _write(os.path.join(d, f"f{i:04d}.txt"), f"file {i}\n" * 12)


def select(names):
    return [w for w in WORKLOADS if not names or w.name in names]
