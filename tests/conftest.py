"""Shared fixtures: test root filesystems built from this machine's binaries,
a way to run a command natively (chroot) and in sentry, and C helpers."""
import contextlib
import os
import shutil
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SENTRY = [sys.executable, "-m", "sentry", "run"]
TIMEOUT = 120


# Areas a run may leave out, named in SENTRY_TEST_ALLOW_SKIP (comma-separated):
#   unprivileged  tests that run sentry as another user (they need root, and an
#                 interpreter that user can run)
#   userns        tests that compare with unprivileged user namespaces natively
#   podman        the podman integration tests, where podman is missing and
#                 scripts/setup could not install it (no package source)
#   containerd    the containerd integration tests, likewise
#   dns           the one real-world name lookup (tests/test_dns.py), where no
#                 resolver of the host's answers
# Anything else missing fails: CI runs as root on a machine that has it all.
SKIP_AREAS = ("unprivileged", "userns", "podman", "containerd", "dns", "cgroup2")


def skip_or_fail(area, why):
    """Skip only where SENTRY_TEST_ALLOW_SKIP names `area`; fail loudly otherwise."""
    assert area in SKIP_AREAS, area
    allowed = {a.strip() for a in os.environ.get("SENTRY_TEST_ALLOW_SKIP", "").split(",")}
    if area in allowed:
        pytest.skip(f"{why} (SENTRY_TEST_ALLOW_SKIP={area})")
    pytest.fail(f"{why}; set SENTRY_TEST_ALLOW_SKIP={area} to leave these tests out", pytrace=False)


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
DEPENDENCIES = ["elftools", "ptrace", "pyseccomp", "_cffi_backend"]


def _copy_module(name, dest):
    import importlib.util
    spec = importlib.util.find_spec(name)
    if spec.submodule_search_locations:
        src = list(spec.submodule_search_locations)[0]
        shutil.copytree(src, os.path.join(dest, os.path.basename(src)),
                        ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy(spec.origin, dest)


def nobody_sentry(top):
    """A world-readable copy of this tree and of its Python dependencies in
    top (the test's own interpreter may live where `nobody` cannot read, as
    pyenv's does under /root), and the interpreter nobody runs it with:
    (python, env), env putting the copy on the module path."""
    if os.geteuid() != 0:
        skip_or_fail("unprivileged", "needs root to run sentry as another user")
    tree = os.path.dirname(HERE)
    for pkg in ("sentry", "syscalls"):
        shutil.copytree(os.path.join(tree, pkg), os.path.join(top, pkg),
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in DEPENDENCIES:
        _copy_module(name, top)
    for path, dirs, files in os.walk(top):
        os.chmod(path, 0o755)
        for f in files:
            os.chmod(os.path.join(path, f), 0o644)
    # this interpreter if nobody may run it, else the system's of the same version
    candidates = [sys.executable, f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/", "PYTHONPATH": top,
           "PYTHONDONTWRITEBYTECODE": "1"}
    why = []
    for python in candidates:
        # one that sees its own file (and so its library): the kernel may
        # run a program under a directory nobody cannot search
        probe = subprocess.run(NOBODY + [python, "-c", "import os, sys, sentry._native, elftools, ptrace, pyseccomp; "
                                         "assert os.access(sys.executable, os.X_OK), sys.executable"],
                               env=env, capture_output=True, cwd="/")
        if probe.returncode == 0:
            return python, env
        why.append(f"{python}: {probe.stderr.decode().strip().splitlines()[-1:]}")
    skip_or_fail("unprivileged", "no interpreter nobody can run sentry with: " + "; ".join(why))


def run_sentry(args, rootfs=None, timeout=TIMEOUT, input=None, extra=(), **kw):
    cmd = SENTRY + (["--rootfs", rootfs] if rootfs else []) + list(extra) + ["--"] + list(args)
    return subprocess.run(cmd, capture_output=True, timeout=timeout, input=input, **kw)


def userns_jail(limits):
    """Python source that runs argv[1:] natively in a user namespace of its
    own mapping the host's ids 0-65535 to themselves, its
    /proc/sys/user/max_<kind>_namespaces set first from `limits` ({kind:
    value}): a child enters the namespace, its parent maps it."""
    sets = "".join(f"    open('/proc/sys/user/max_{kind}_namespaces', 'w').write({str(value)!r})\n"
                   for kind, value in limits.items())
    return ("import ctypes, os, sys\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "made_r, made_w = os.pipe()\n"
            "mapped_r, mapped_w = os.pipe()\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    if libc.unshare(0x10000000):\n"
            "        os._exit(99)\n"
            "    os.write(made_w, b'x')\n"
            "    os.read(mapped_r, 1)\n"
            + sets +
            "    os.execvp(sys.argv[1], sys.argv[1:])\n"
            "os.read(made_r, 1)\n"
            "for name in ('uid_map', 'gid_map'):\n"
            "    open(f'/proc/{pid}/{name}', 'w').write('0 0 65536')\n"
            "os.write(mapped_w, b'x')\n"
            "sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n")


def run_native(args, rootfs=None, timeout=TIMEOUT, input=None, **kw):
    cmd = (["chroot", rootfs] if rootfs else []) + list(args)
    return subprocess.run(cmd, capture_output=True, timeout=timeout, input=input, **kw)


def assert_same(args, rootfs=None, input=None):
    """Differential check: same stdout, stderr and exit status as natively."""
    native = run_native(args, rootfs, input=input)
    boxed = run_sentry(args, rootfs, input=input)
    assert boxed.stdout.decode() == native.stdout.decode()
    assert boxed.stderr.decode() == native.stderr.decode()
    assert boxed.returncode == native.returncode
    return boxed


def _copy_with_libs(binary, root):
    """Copy a host binary and every library it loads into root, same paths."""
    paths = {binary}
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    for line in out.splitlines():
        for part in line.split():
            if part.startswith("/"):
                paths.add(part)
    for p in paths:
        dst = root + p
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.exists(dst):
            shutil.copy2(os.path.realpath(p), dst)


def _base_dirs(root):
    os.chmod(root, 0o755)     # as a real root: searchable by every user (pytest's are 0700)
    for d in ("bin", "etc", "tmp", "dev", "proc", "sys", "root", "usr/bin"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    # the native side of differential tests runs in a chroot: give it the
    # device nodes sentry's /dev offers (creating them needs root, as CI is)
    for name in ("null", "zero", "full", "random", "urandom", "tty"):
        st = os.stat("/dev/" + name)
        os.mknod(os.path.join(root, "dev", name), st.st_mode, st.st_rdev)
    with open(os.path.join(root, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    with open(os.path.join(root, "etc/group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")


@pytest.fixture(scope="session")
def busybox_root(tmp_path_factory):
    """A rootfs of busybox-static: /bin/busybox and one link per applet."""
    bb = shutil.which("busybox")
    if bb is None:
        pytest.fail("busybox is missing: scripts/setup installs busybox-static")
    root = str(tmp_path_factory.mktemp("busybox-root"))
    _base_dirs(root)
    shutil.copy2(bb, os.path.join(root, "bin/busybox"))
    applets = subprocess.run([bb, "--list"], capture_output=True, text=True).stdout.split()
    for a in applets:
        link = os.path.join(root, "bin", a)
        if not os.path.exists(link):
            os.symlink("busybox", link)
    return root


HOST_PROGRAMS = """bash sh dash ls cat cp mv rm mkdir rmdir ln find sort uniq wc head tail tar
gzip gunzip echo true false sleep env id stat touch chmod readlink realpath pwd
sed grep awk mawk xargs basename dirname tr cut date printf test expr seq md5sum
sha256sum du df diff cmp yes od tee nproc uname""".split()


@pytest.fixture(scope="session")
def host_root(tmp_path_factory):
    """A rootfs of this machine's own dynamic binaries (bash, coreutils, tar…)
    with their libraries and ld.so: a real glibc userland, not the host's /."""
    root = str(tmp_path_factory.mktemp("host-root"))
    _base_dirs(root)
    for name in HOST_PROGRAMS:
        path = shutil.which(name)
        if path is None:
            continue
        _copy_with_libs(path, root)
        dst = os.path.join(root, "bin", name)
        if not os.path.exists(dst):
            shutil.copy2(os.path.realpath(path), dst)
    # gzip is a script on some systems; tar needs it by name
    return root


@pytest.fixture(scope="session")
def cbin(tmp_path_factory):
    """Compile tests/c/NAME.c (static, so it runs in any rootfs); returns its
    path.  Builds of one source with other flags need their own tag."""
    out = tmp_path_factory.mktemp("cbin")
    built = {}

    def build(name, *flags, tag=""):
        key = name + tag
        if key not in built:
            src = os.path.join(HERE, "c", name + ".c")
            exe = str(out / key)
            subprocess.run(["gcc", "-O1", "-static", "-pthread", "-o", exe, src, *flags], check=True)
            built[key] = exe
        return built[key]
    return build


def install(path, root, dest="/bin"):
    """Put a host file into a rootfs; returns its sandbox path."""
    target = os.path.join(dest, os.path.basename(path))
    shutil.copy2(path, root + target)
    return target


def copy_root(src, dst):
    """Copy a test rootfs; cp -a keeps its device nodes as nodes (shutil
    would read /dev/zero forever)."""
    subprocess.run(["cp", "-a", src, dst], check=True)


def shown_copy(cbin, outside_tmp, name):
    """tests/c/NAME.c compiled and copied where the default root shows it
    (its /tmp is private): into outside_tmp, made searchable."""
    path = os.path.join(outside_tmp, name)
    shutil.copy2(cbin(name), path)
    os.chmod(outside_tmp, 0o755)
    return path


def rootfs_with(busybox_root, tmp_path, prog):
    """A copy of the busybox rootfs with prog in /bin and a writable /tmp,
    and beside it a host directory holding "file", to bind read-only:
    (root, that directory)."""
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    shutil.copy2(prog, root + "/bin/" + os.path.basename(prog))
    os.chmod(root + "/tmp", 0o1777)
    ro = str(tmp_path / "ro")
    os.mkdir(ro)
    with open(ro + "/file", "w") as f:
        f.write("ro\n")
    return root, ro


def sentry_run(args, fast=True, **kw):
    """sentry run ARGS; fast=False: with --strace, which turns the C fast
    path off, so Python's handlers answer every call."""
    extra = [] if fast else ["--strace"]
    return subprocess.run(SENTRY + extra + args, capture_output=True, timeout=120, **kw)


@pytest.fixture(scope="session")
def outside_tmp():
    """A host directory the default root shows (its /tmp is private), for
    test programs run with no --rootfs."""
    import tempfile
    d = tempfile.mkdtemp(prefix="sentry-test-", dir="/var/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def veth_namespace(ns, host_if, ns_if, net, who):
    """A network namespace `ns` behind a veth pair, the host side `net`.1/24
    and its side `net`.2/24: a 'remote' host on this machine (who: the tests
    that need it, for the error line when not root).  Yields nothing; the
    caller starts its servers with `ip netns exec ns`."""
    if os.geteuid() != 0:
        pytest.fail(f"{who} make network namespaces: run the suite as root", pytrace=False)
    sh = lambda *c: subprocess.run(c, check=True)
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if, "netns", ns)
        sh("ip", "addr", "add", f"{net}.1/24", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{net}.2/24", "dev", ns_if)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        yield
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def sentry_runtime(top):
    """This checkout's sentry as an OCI runtime binary named `sentry`, in
    top/bin (what podman and containerd's shim run)."""
    from bench.podmanenv import runtime_wrapper
    return runtime_wrapper(top)


def wait_podman_log(podman, name, text, timeout=20):
    """`podman logs NAME` once it holds text (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = podman("logs", name).stdout
        if text in out:
            return out
        time.sleep(0.1)
    return podman("logs", name).stdout
