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
BB_TAR_FILES = 2000
MAKE_FILES = 24
PYTESTS = 200
WHEEL = "benchpkg-1.0-py3-none-any.whl"
WHEEL_MODULES = 200
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
    Workload("bbtar_2000", ["/bin/sh", "-c",
                            "mkdir -p {out}-bbtar/x && "
                            "busybox tar -cf {out}-bbtar/tree.tar -C {in}/tree2k . && "
                            "busybox tar -xf {out}-bbtar/tree.tar -C {out}-bbtar/x"],
             f"busybox tar create + extract of {BB_TAR_FILES} small files"),
    Workload("py_import", [PY, "-c", "import json, sqlite3, subprocess, decimal"],
             "python start-up + stdlib imports"),
    Workload("gcc_4files", ["gcc", "-O1", "-o", "{out}-prog"]
             + [f"{{in}}/cprog/{name}.c" for name in ("main", "list", "hash", "fmt")],
             "compile and link a 4-file C program"),
    Workload("sqlite_io", [PY, "{in}/sqlite_io.py", "{out}-bench.db"],
             f"python sqlite3: {SQLITE_ROWS} inserts, commit every {SQLITE_ROWS_PER_COMMIT}"),
    # everyday tools (issue 16): builds, version control, archives, file
    # tools, package installs, test suites, on generated inputs, no network
    Workload("make_j2", ["make", "-s", "-j2", "-f", "{in}/mk/Makefile", "SRC={in}/mk", "OUT={out}-make"],
             f"make -j2 of a {MAKE_FILES}-file C program (a build)"),
    Workload("cmake_configure", ["cmake", "-S", "{in}/cm", "-B", "{out}-cm"],
             "cmake configure of a small C project: compiler probes, many short processes"),
    Workload("git_3000", ["/bin/sh", "-c",
                          "git init -q {out}-git && cp -r {in}/tree/. {out}-git && cd {out}-git && "
                          "git add -A && git -c user.name=b -c user.email=b@b commit -qm tree && "
                          "git status --short && git log --oneline | wc -l >/dev/null"],
             f"git init, add and commit {TAR_FILES} files, status, log"),
    Workload("targz_3000", ["/bin/sh", "-c",
                            "mkdir -p {out}-tgz/x && tar -czf {out}-tgz/tree.tgz -C {in}/tree . && "
                            "tar -xzf {out}-tgz/tree.tgz -C {out}-tgz/x"],
             f"tar.gz create + extract of {TAR_FILES} small files (an archive)"),
    Workload("fileutils_3000", ["/bin/sh", "-c",
                                "cp -r {in}/tree {out}-fu && find {out}-fu -type f | wc -l >/dev/null && "
                                "mv {out}-fu {out}-fu2 && du -s {out}-fu2 >/dev/null && "
                                "chmod -R go-w {out}-fu2 && rm -rf {out}-fu2"],
             f"cp -r, find, mv, du, chmod -R, rm -rf over {TAR_FILES} files"),
    Workload("pip_install", ["env", "PYTHONDONTWRITEBYTECODE=1", PY, "-m", "pip", "install", "-q",
                             "--no-index", "--no-deps", "--disable-pip-version-check", "--root-user-action=ignore",
                             "--target", "{out}-pip", f"{{in}}/{WHEEL}"],
             f"pip install of a local wheel of {WHEEL_MODULES} modules (a package install)"),
    Workload("pytest_200", ["env", "PYTHONDONTWRITEBYTECODE=1", PY, "-m", "pytest", "-q",
                            "-p", "no:cacheprovider", "{in}/pytests"],
             f"pytest of {PYTESTS} small tests (a test suite)"),
    Workload("node_files", ["node", "{in}/files.js", "{out}-node"],
             "node: write, stat, read and remove 500 files"),
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


_MAKEFILE = """\
OBJS := $(patsubst $(SRC)/%.c,$(OUT)/%.o,$(wildcard $(SRC)/*.c))
$(OUT)/prog: $(OBJS)
\t$(CC) -o $@ $^
$(OUT)/%.o: $(SRC)/%.c | $(OUT)
\t$(CC) -O1 -c -o $@ $<
$(OUT):
\tmkdir -p $@
"""

_CMAKELISTS = """\
cmake_minimum_required(VERSION 3.10)
project(bench C)
add_executable(prog main.c)
"""

_NODE_SCRIPT = """\
const fs = require("fs"), path = require("path");
const dir = process.argv[2];
fs.mkdirSync(dir, { recursive: true });
for (let i = 0; i < 500; i++) fs.writeFileSync(path.join(dir, "f" + i), "x".repeat(100 + i));
let total = 0;
for (const name of fs.readdirSync(dir)) {
  total += fs.statSync(path.join(dir, name)).size;
  total += fs.readFileSync(path.join(dir, name)).length;
}
for (const name of fs.readdirSync(dir)) fs.unlinkSync(path.join(dir, name));
fs.rmdirSync(dir);
if (total !== 2 * (500 * 100 + 499 * 500 / 2)) process.exit(1);
"""


def _wheel(path):
    """A pure-Python wheel, made by hand (no build backend needed)."""
    import base64
    import hashlib
    import zipfile
    files = {"benchpkg/__init__.py": ""}
    files.update({f"benchpkg/m{i:03d}.py": f"VALUE = {i}\n" * 20 for i in range(WHEEL_MODULES)})
    info = "benchpkg-1.0.dist-info"
    files[f"{info}/METADATA"] = "Metadata-Version: 2.1\nName: benchpkg\nVersion: 1.0\n"
    files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join(record + [f"{info}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)


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
    mk = os.path.join(workdir, "mk")
    os.makedirs(mk, exist_ok=True)
    _write(os.path.join(mk, "Makefile"), _MAKEFILE)
    for i in range(MAKE_FILES):
        body = "".join(f"int f{i}_{k}(int x) {{ return x * {k} + {i}; }}\n" for k in range(40))
        _write(os.path.join(mk, f"u{i:02d}.c"), body + (
            "int main(void) { return f0_1(0); }\n" if i == 0 else ""))
    cm = os.path.join(workdir, "cm")
    os.makedirs(cm, exist_ok=True)
    _write(os.path.join(cm, "CMakeLists.txt"), _CMAKELISTS)
    _write(os.path.join(cm, "main.c"), "int main(void) { return 0; }\n")
    _wheel(os.path.join(workdir, WHEEL))
    tests = os.path.join(workdir, "pytests")
    os.makedirs(tests, exist_ok=True)
    for m in range(PYTESTS // 20):
        _write(os.path.join(tests, f"test_m{m}.py"), "".join(
            f"def test_{k}(tmp_path):\n    (tmp_path / 'f').write_text('{k}')\n"
            f"    assert (tmp_path / 'f').read_text() == '{k}'\n" for k in range(20)))
    _write(os.path.join(workdir, "files.js"), _NODE_SCRIPT)
    # 30 dirs x 100 files of ~100 bytes: many tiny files, as in a source tree.
    _tree(os.path.join(workdir, "tree"), TAR_FILES)
    _tree(os.path.join(workdir, "tree2k"), BB_TAR_FILES)


def _tree(tree, files):
    for i in range(files):
        d = os.path.join(tree, f"d{i // 100:02d}")
        if i % 100 == 0:
            os.makedirs(d, exist_ok=True)
        _write(os.path.join(d, f"f{i:04d}.txt"), f"file {i}\n" * 12)


def select(names):
    return [w for w in WORKLOADS if not names or w.name in names]
