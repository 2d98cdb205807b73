"""The command line: help, version, exit statuses, and bad input."""
import os
import signal
import subprocess
import sys

from conftest import SENTRY, run_sentry

# README, "Exit status": sentry's own errors are 125, each with one line on
# stderr; a command that cannot be executed 126; one not found 127.
OWN_ERROR, CANNOT_EXECUTE, NOT_FOUND = 125, 126, 127


def test_help_and_version():
    for args in (["--help"], ["run", "--help"]):
        r = subprocess.run([sys.executable, "-m", "sentry", *args], capture_output=True, text=True)
        assert r.returncode == 0 and "usage: sentry" in r.stdout
    r = subprocess.run([sys.executable, "-m", "sentry", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("sentry ")
    run_help = subprocess.run([sys.executable, "-m", "sentry", "run", "--help"],
                              capture_output=True, text=True).stdout
    for option in ("--rootfs", "--hide", "--expose", "--audit", "sockets"):
        assert option in run_help


def test_exit_status_propagates(busybox_root):
    r = run_sentry(["/bin/sh", "-c", "echo hi; exit 3"], busybox_root)
    assert r.stdout == b"hi\n" and r.returncode == 3


def test_killed_by_signal_is_128_plus_signal(busybox_root):
    # a signal the kernel forces (a fault) kills the sandbox's init
    r = run_sentry(["python3", "-c", "import ctypes; ctypes.string_at(0)"])
    assert r.returncode == 128 + signal.SIGSEGV
    # so does one sent to sentry from outside, which it passes on
    p = subprocess.Popen(SENTRY + ["--rootfs", busybox_root, "--", "/bin/sh", "-c", "echo up; read x"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"up\n"
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=30) == 128 + signal.SIGTERM


def test_init_ignores_signals_it_has_no_handler_for(busybox_root):
    """As in a PID namespace: from inside, not even SIGKILL reaches pid 1."""
    r = run_sentry(["/bin/sh", "-c", "kill -9 $$; kill -TERM 1; echo alive; "
                    "trap 'echo got TERM' TERM; kill -TERM $$; sh -c 'kill -9 $$'; echo $?"],
                   busybox_root)
    assert r.stdout == b"alive\ngot TERM\n137\n" and r.returncode == 0


def test_missing_rootfs(tmp_path):
    r = run_sentry(["/bin/true"], str(tmp_path / "nope"))
    assert r.returncode == OWN_ERROR
    assert r.stderr.decode().count("\n") == 1 and "no such directory" in r.stderr.decode()


def test_rootfs_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = run_sentry(["/bin/true"], str(f))
    assert r.returncode == OWN_ERROR
    assert r.stderr.decode().count("\n") == 1 and "not a directory" in r.stderr.decode()


def test_bad_options_are_125_with_one_line():
    for args in (["run", "--bogus", "--", "/bin/true"], ["run", "--pids-limit", "x", "--", "/bin/true"],
                 ["run", "--mount", "type=nfs,dst=/x", "--", "/bin/true"], ["run", "--uid", "-1", "--", "/bin/true"],
                 ["run", "--cpus", "100000", "--", "/bin/true"], ["--bogus"], []):
        r = subprocess.run([sys.executable, "-m", "sentry", *args], capture_output=True, text=True)
        assert r.returncode == OWN_ERROR, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("sentry"), (args, r.stderr)
        assert r.stdout == "", args


def test_command_not_found_is_127(busybox_root):
    r = run_sentry(["/no/such/program"], busybox_root)
    assert r.returncode == NOT_FOUND and b"not found" in r.stderr
    r = run_sentry(["nosuchcommand"], busybox_root)
    assert r.returncode == NOT_FOUND and r.stderr.count(b"\n") == 1


def test_not_executable_is_126(busybox_root):
    path = os.path.join(busybox_root, "etc/passwd")
    assert os.path.exists(path)
    r = run_sentry(["/etc/passwd"], busybox_root)
    assert r.returncode == CANNOT_EXECUTE and r.stderr.count(b"\n") == 1


def test_no_command():
    r = subprocess.run(SENTRY, capture_output=True, text=True)
    assert r.returncode == OWN_ERROR and "no command" in r.stderr and r.stderr.count("\n") == 1


def test_shell_reports_126_and_127_like_linux(busybox_root):
    r = run_sentry(["/bin/sh", "-c", "/etc/passwd; echo $?; /nope; echo $?"], busybox_root)
    assert r.stdout.split() == [b"126", b"127"]


# A minimal i386 ELF header (ELFCLASS32, EM_386): Linux would run it through
# its 32-bit ABI, which the sandbox does not offer.
ELF32 = bytes.fromhex("7f454c46010101000000000000000000020003000100000054800408340000000000"
                      "0000000000003400200000002800000000000000")


def test_32bit_elf_is_enoexec_with_one_clear_line(busybox_root, tmp_path):
    path = os.path.join(busybox_root, "tmp", "elf32")
    with open(path, "wb") as f:
        f.write(ELF32)
    os.chmod(path, 0o755)
    r = run_sentry(["/tmp/elf32"], busybox_root)
    assert r.returncode == CANNOT_EXECUTE
    err = r.stderr.decode()
    assert err.count("ELFCLASS32 EM_386 ELF is not supported") == 1 and "x86-64 only" in err
    # through a shell, the status is the shell's (busybox runs an ENOEXEC file as a script)
    r = run_sentry(["/bin/sh", "-c", "/tmp/elf32 2>/dev/null; echo $?"], busybox_root)
    assert r.stdout.strip() != b"0"


def test_garbage_executable_is_enoexec(busybox_root):
    path = os.path.join(busybox_root, "tmp", "garbage")
    with open(path, "wb") as f:
        f.write(b"\x7fELF" + b"\xff" * 20)
    os.chmod(path, 0o755)
    r = run_sentry(["/tmp/garbage"], busybox_root)
    assert r.returncode == CANNOT_EXECUTE and b"Traceback" not in r.stderr


def test_the_prototype_literals_are_python_ptraces():
    """syscalls/ptracedata.py holds python-ptrace's prototypes as literals
    (a start imports no python-ptrace): regenerate it (`python -m
    syscalls.prototypes > syscalls/ptracedata.py`) when python-ptrace changes."""
    here = os.path.join(os.path.dirname(__file__), "..")
    made = subprocess.run([sys.executable, "-m", "syscalls.prototypes"], capture_output=True, check=True, cwd=here)
    with open(os.path.join(here, "syscalls", "ptracedata.py"), "rb") as f:
        assert f.read() == made.stdout


def test_the_handler_modules_are_the_registrys():
    """syscalls/handlerdata.py names the module that registers each handler
    (imported at the handler's first use): regenerate it (`python -m
    syscalls.registry > syscalls/handlerdata.py`) when a handler is added
    or moves."""
    here = os.path.join(os.path.dirname(__file__), "..")
    made = subprocess.run([sys.executable, "-m", "syscalls.registry"], capture_output=True, check=True, cwd=here)
    with open(os.path.join(here, "syscalls", "handlerdata.py"), "rb") as f:
        assert f.read() == made.stdout


def test_lazily_imported_handler_modules_only_register():
    """A handler module imported at the handler's first use does nothing
    else at import: a statement at its top level that calls anything but
    handler(...)(fn) (a classifier added to a kernel list, say) puts it in
    syscalls.registry.AT_START, imported with the table."""
    import ast
    here = os.path.join(os.path.dirname(__file__), "..", "syscalls")
    sys.path.insert(0, os.path.join(here, ".."))
    try:
        from syscalls.registry import AT_START
    finally:
        sys.path.pop(0)

    def registration(call):
        # handler("name", ...)(fn)
        return isinstance(call.func, ast.Call) and getattr(call.func.func, "id", None) == "handler"

    acting = set()
    for name in os.listdir(here):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(here, name)) as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and not registration(node.value):
                acting.add(name[:-3])
    assert acting - {"table"} == set(AT_START)        # the table is imported at every start


def test_the_syscall_page_is_the_tables():
    """docs/syscalls.md is generated from syscalls/table.py: regenerate it
    (`python -m syscalls.table > docs/syscalls.md`) when the table changes."""
    page = os.path.join(os.path.dirname(__file__), "..", "docs", "syscalls.md")
    made = subprocess.run([sys.executable, "-m", "syscalls.table"], capture_output=True, check=True,
                          cwd=os.path.join(os.path.dirname(__file__), ".."))
    with open(page, "rb") as f:
        assert f.read() == made.stdout


def test_the_launcher_runs_this_checkout_without_site_hooks(busybox_root, tmp_path):
    """sentry/launcher.py: the command scripts/setup installs starts the
    interpreter isolated and without site (`-IS`), on the module path the
    interpreter has with it, frozen: the checkout and its dependencies
    (cffi, libseccomp's binding: a sandbox runs) import, while neither a
    PYTHONPATH nor a `sentry` package in the current directory is used."""
    from sentry import launcher
    path = launcher.write(str(tmp_path / "sentry"))
    with open(path) as f:
        assert f.readline() == f"#!{os.path.abspath(sys.executable)} -IS\n"
    decoy = tmp_path / "decoy"
    (decoy / "sentry").mkdir(parents=True)
    (decoy / "sentry" / "__init__.py").write_text("raise SystemExit('the decoy was imported')\n")
    env = dict(os.environ, PYTHONPATH=str(decoy))
    r = subprocess.run([path, "run", "--rootfs", busybox_root, "--", "/bin/sh", "-c", "echo in; exit 4"],
                       capture_output=True, text=True, cwd=decoy, env=env, timeout=60)
    assert (r.returncode, r.stdout) == (4, "in\n"), r.stderr
    r = subprocess.run([path, "--root", str(tmp_path / "state"), "state", "nosuch"], capture_output=True, text=True,
                       cwd=decoy, env=env, timeout=60)
    assert r.returncode == 1 and r.stderr == "sentry: container nosuch does not exist\n"
    # what scripts/setup replaces: pip's console script of this distribution
    installed = launcher.console_script()
    assert os.path.basename(installed) == "sentry" and os.access(installed, os.X_OK)


def test_a_gone_sentrys_private_directories_are_swept():
    """What a Sentry that died with its janitor left (sentry-<pid>-*, its pid
    gone) is removed by the next sandbox's janitor, in /tmp and in the
    memory directory; one of a live pid is left alone."""
    import time
    child = subprocess.Popen(["true"])
    child.wait()                        # a pid no process has now
    made = []
    for top in ("/tmp", "/dev/shm"):
        gone = os.path.join(top, f"sentry-{child.pid}-stale{os.getpid()}")
        live = os.path.join(top, f"sentry-{os.getpid()}-live")
        for d in (gone, live):
            os.makedirs(os.path.join(d, "upper", "etc"))
            made.append(d)
    try:
        r = run_sentry(["/bin/true"])
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 30        # the sweep runs beside the sandbox
        while any(os.path.exists(d) for d in made if "stale" in d) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [d for d in made if os.path.exists(d)] == [d for d in made if "live" in d]
    finally:
        import shutil
        for d in made:
            shutil.rmtree(d, ignore_errors=True)
