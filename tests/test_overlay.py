"""The copy-on-write overlay (sentry/fsimpl/overlay.py): the default root and
--rootfs DIR --overlay are writable, the lower layer never changes, and what
the guest plants in the upper layer (symlinks out, whiteout-looking names,
the Sentry's own xattr) gains it nothing.  tests/test_fileops.py runs the
differential workload on overlays."""
import os
import re
import subprocess

from conftest import copy_root, run_native, run_sentry
from test_fileops import tree_digest
from test_programs import COREUTILS, SH_SCRIPT


def _sh(script, rootfs=None, extra=(), **kw):
    return run_sentry(["/bin/sh", "-c", script], rootfs, extra=extra, **kw)


def test_default_root_is_writable_and_the_host_untouched():
    motd, ls = open("/etc/motd", "rb").read(), os.stat("/bin/ls")
    n_bin = len(os.listdir("/bin"))
    r = _sh("echo x > /etc/motd; rm /bin/ls; ls /bin | wc -l; cat /etc/motd; echo /bin/* | wc -w")
    # as on a writable root: ls is gone, so the pipe counts nothing
    assert r.stdout.decode().split() == ["0", "x", str(n_bin - 1)]
    assert b"ls: not found" in r.stderr
    assert open("/etc/motd", "rb").read() == motd and os.stat("/bin/ls") == ls
    assert _sh("head -1 /proc/mounts").stdout == b"sentry / overlay rw 0 0\n"


def test_default_root_changes_stay_in_the_sandbox():
    victim = "/etc/sentry-must-not-exist"
    hostname, passwd = open("/etc/hostname", "rb").read(), os.stat("/etc/passwd")
    r = _sh(f"echo x > {victim}; mkdir /sentry-dir; touch /usr/x; rm /etc/hostname; chmod 777 /etc/passwd; "
            f"ln /etc/passwd /etc/p2; echo y >> /etc/hostname; cat {victim} /etc/hostname; ls -d /sentry-dir /usr/x; "
            f"stat -c '%a %h' /etc/passwd; cat /dev/null > /etc/hostname; wc -c < /etc/hostname")
    assert r.stderr == b""
    assert r.stdout.decode().split("\n") == ["x", "y", "/sentry-dir", "/usr/x", "777 2", "0", ""]
    assert open("/etc/hostname", "rb").read() == hostname and os.stat("/etc/passwd") == passwd
    assert not os.path.exists(victim) and not os.path.exists("/sentry-dir") and not os.path.exists("/usr/x")
    assert not os.path.exists("/etc/p2")


def test_rm_rf_mv_of_lower_trees_with_gnu_tools():
    """GNU rm (fts, dirfd-relative unlinkat) and mv over copied-up trees."""
    files = sum(len(f) for _, _, f in os.walk("/usr/share/doc/bash"))
    r = run_sentry(["/bin/bash", "-c", "rm -rf /usr/share/doc && mkdir /usr/share/doc && ls -A /usr/share/doc | wc -l; "
                    "ls /usr/share | grep -cx doc; mv /etc/apt /etc/apt2 && ls /etc/apt2 | wc -l; ls -d /etc/apt; "
                    "cp -a /bin/true /usr/share/doc/t && /usr/share/doc/t && echo copied-runs"])
    lines = r.stdout.decode().split()
    assert lines == ["0", "1", str(len(os.listdir("/etc/apt"))), "copied-runs"], r.stderr
    assert b"/etc/apt': No such file" in r.stderr
    assert sum(len(f) for _, _, f in os.walk("/usr/share/doc/bash")) == files and os.path.isdir("/etc/apt")


def test_real_programs_on_overlays(busybox_root, host_root, tmp_path):
    """busybox sh on --rootfs --overlay; bash and coreutils on an overlay
    rootfs and on the default root: the same output as natively."""
    # on the default root, in a directory of the host's / (not the private /tmp): natively in
    # the same fresh directory of host_root (whose /tmp other tests leave files in)
    work = "/opt/sentry-overlay-test"
    assert not os.path.exists(work)
    in_work = COREUTILS.replace("cd /tmp", f"rm -rf {work}; mkdir -p -m 1777 {work} && cd {work}")
    sh_native = run_native(["/bin/sh", "-c", SH_SCRIPT], busybox_root)
    native = run_native(["/bin/bash", "-c", COREUTILS], host_root)
    native_in_work = run_native(["/bin/bash", "-c", in_work], host_root)
    assert b"tar-ok" in native.stdout and b"tar-ok" in native_in_work.stdout
    bb_before, host_before = tree_digest(busybox_root), tree_digest(host_root)    # after the native runs
    boxed = _sh(SH_SCRIPT, busybox_root, extra=["--overlay"])
    assert (boxed.stdout, boxed.stderr, boxed.returncode) == (sh_native.stdout, sh_native.stderr, sh_native.returncode)
    boxed = run_sentry(["/bin/bash", "-c", COREUTILS], host_root, extra=["--overlay"])
    assert (boxed.stdout, boxed.stderr) == (native.stdout, native.stderr)
    boxed = run_sentry(["/bin/bash", "-c", in_work])
    assert (boxed.stdout, boxed.stderr) == (native_in_work.stdout, native_in_work.stderr)
    assert not os.path.exists(work)
    assert (tree_digest(busybox_root), tree_digest(host_root)) == (bb_before, host_before)


def test_python_on_the_default_root():
    code = r"""
import os, sqlite3, sys, importlib
os.makedirs("/usr/local/lib/sentry_probe", exist_ok=True)
with open("/usr/local/lib/sentry_probe/mod.py", "w") as f:
    f.write("VALUE = 42\n")
sys.path.insert(0, "/usr/local/lib/sentry_probe")
print(importlib.import_module("mod").VALUE)
db = sqlite3.connect("/var/lib/sentry-probe.db")
db.execute("create table t (x)"); db.executemany("insert into t values (?)", [(i,) for i in range(100)]); db.commit()
print(db.execute("select sum(x) from t").fetchone()[0])
os.replace("/etc/os-release", "/etc/os-release.old"); print(os.path.exists("/etc/os-release"))
"""
    r = run_sentry(["python3", "-c", code])
    assert r.stdout == b"42\n4950\nFalse\n", r.stderr
    assert not os.path.exists("/usr/local/lib/sentry_probe") and not os.path.exists("/var/lib/sentry-probe.db")
    assert os.path.exists("/etc/os-release")


def test_overlay_dir_keeps_the_upper_layer(tmp_path, busybox_root):
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    before = tree_digest(root)
    keep = ["--overlay-dir", str(tmp_path / "ovl")]
    r = _sh("echo kept > /etc/new; rm /bin/ls; mkdir /d; echo x > /d/f; rm -rf /etc; mkdir /etc; echo again > /etc/new",
            root, extra=keep)
    assert r.returncode == 0, r.stderr
    r = _sh("cat /etc/new /d/f; ls /etc; /bin/ls / 2>&1; echo ls-gone; ls /bin/cat", root, extra=keep)
    assert r.stdout.decode().split("\n") == ["again", "x", "new", "/bin/sh: /bin/ls: not found", "ls-gone", "/bin/cat", ""]
    # a fresh private overlay sees none of it; without --overlay the rootfs is written in place
    r = _sh("cat /etc/new 2>&1; ls /etc/passwd", root, extra=["--overlay"])
    assert r.stdout == b"cat: can't open '/etc/new': No such file or directory\n/etc/passwd\n"
    assert tree_digest(root) == before
    _sh("echo in-place > /etc/new", root)
    assert open(os.path.join(root, "etc/new")).read() == "in-place\n"


def test_overlay_dir_serves_one_sandbox_at_a_time(tmp_path, busybox_root):
    from conftest import SENTRY
    keep = ["--overlay-dir", str(tmp_path / "ovl")]
    first = subprocess.Popen(SENTRY + ["--rootfs", busybox_root] + keep + ["--", "/bin/sh", "-c", "echo up; sleep 3"],
                             stdout=subprocess.PIPE)
    try:
        assert first.stdout.readline() == b"up\n"
        second = _sh("echo never", busybox_root, extra=keep)
        assert second.returncode == 125 and second.stdout == b""
        assert second.stderr == f"sentry: --overlay-dir {tmp_path / 'ovl'}: in use by another sandbox\n".encode()
    finally:
        first.kill()
        first.wait()
    assert _sh("echo after", busybox_root, extra=keep).stdout == b"after\n"


def test_copy_up_happens_once_for_a_large_file(tmp_path, busybox_root):
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    block = os.urandom(1 << 20)
    with open(os.path.join(root, "big"), "wb") as f:
        for _ in range(64):
            f.write(block)
    log = tmp_path / "log"
    script = ("exec 3>>/big 4<>/big; echo end >&3; stat -c %i /big; exec 5>>/big; stat -c %i /big; "
              "echo more >&5; truncate -s 67108870 /big; stat -c '%i %s' /big; md5sum /big | cut -c1-32")
    r = _sh(script, root, extra=["--overlay", "--debug", "--log", str(log)])
    assert r.returncode == 0, r.stderr
    ino1, ino2, last, md5 = r.stdout.decode().split("\n")[:4]
    assert ino1 == ino2 == last.split()[0] and last.split()[1] == "67108870"
    expected = subprocess.run(["md5sum"], input=block * 64 + b"end\nmo", capture_output=True).stdout[:32]
    assert md5.encode() == expected
    copies = re.findall(r"overlay: copied up (\S+) \((\d+) bytes", log.read_text())
    assert copies == [("big", str(64 << 20))]
    assert os.path.getsize(os.path.join(root, "big")) == 64 << 20


def test_upper_layer_on_another_file_system(tmp_path, busybox_root):
    """An --overlay-dir on tmpfs over an ext4 rootfs: copy-up crosses file
    systems (copy_file_range says EXDEV there; sendfile does it)."""
    import tempfile
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    with open(os.path.join(root, "sparse"), "wb") as f:
        f.truncate(1 << 20)
        f.write(b"head")
    # a program no process runs (the shell's own busybox is busy: ETXTBSY)
    import shutil
    os.makedirs(os.path.join(root, "opt"), exist_ok=True)
    shutil.copy2(os.path.join(root, "bin/busybox"), os.path.join(root, "opt/true"))
    before = tree_digest(root)
    ovl = tempfile.mkdtemp(prefix="sentry-test-", dir="/dev/shm")
    try:
        r = _sh("echo tail >> /sparse; echo more >> /opt/true; wc -c < /sparse; tail -c 5 /sparse; "
                "/opt/true && echo runs", root, extra=["--overlay-dir", ovl])
        assert r.stdout.decode().split() == ["1048581", "tail", "runs"], r.stderr
        assert r.stderr == b""
        upper = os.path.join(ovl, "upper")
        assert os.stat(os.path.join(upper, "sparse")).st_blocks * 512 < 1 << 20      # holes kept
        assert os.path.getsize(os.path.join(upper, "opt/true")) == os.path.getsize(os.path.join(root, "opt/true")) + 5
    finally:
        shutil.rmtree(ovl)
    assert tree_digest(root) == before


def test_symlinks_planted_in_the_upper_layer_stay_inside(tmp_path, busybox_root):
    """Symlinks put in an --overlay-dir's upper layer by someone else, or by
    the guest, resolve inside the sandbox like any other."""
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    before = tree_digest(root)
    secret = tmp_path / "secret"
    secret.write_text("SECRET\n")
    ovl = tmp_path / "ovl"
    keep = ["--overlay-dir", str(ovl)]
    assert _sh("echo v > /etc/v", root, extra=keep).returncode == 0      # /etc copied up
    upper = ovl / "upper"
    os.symlink(str(secret), upper / "etc/abs")
    os.symlink("../" * 20 + str(secret).lstrip("/"), upper / "etc/rel")
    os.unlink(upper / "etc/passwd")                                      # a placeholder
    os.symlink(str(secret), upper / "etc/passwd")
    os.symlink(str(tmp_path), upper / "out")                             # a directory
    r = _sh("cat /etc/abs /etc/rel /etc/passwd /out/secret; ls /out; echo pwned > /etc/abs; echo pwned > /out/secret; "
            "ln -s /etc/group /link && chmod 600 /link && echo g >> /link && tail -1 /etc/group; "
            "ln -s / /up && cat /up/../../../../secret", root, extra=keep)
    assert b"SECRET" not in r.stdout + r.stderr and r.stdout == b"g\n"
    assert secret.read_text() == "SECRET\n" and sorted(os.listdir(tmp_path)) == ["ovl", "root", "secret"]
    assert tree_digest(root) == before


def test_whiteout_names_made_by_the_guest_remove_nothing(tmp_path, busybox_root):
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    os.makedirs(os.path.join(root, "data/dir"))
    for name in ("foo", "dir/bar"):
        with open(os.path.join(root, "data", name), "w") as f:
            f.write("keep\n")
    before = tree_digest(root)
    keep = ["--overlay-dir", str(tmp_path / "ovl")]
    r = _sh("touch /data/.wh.foo /data/.wh..wh..opq; mkdir /data/dir/.wh.bar; mknod /data/.wh.dir c 0 0; "
            "mknod /data/foo2 c 0 0; ls -a /data /data/dir; cat /data/foo /data/dir/bar", root, extra=keep)
    # root's device nodes are stand-in files (vfs/devnodes.py): a 0:0 node
    # is a name like any other, never overlayfs's whiteout
    listing = ["/data:", ".", "..", ".wh..wh..opq", ".wh.dir", ".wh.foo", "dir", "foo", "foo2",
               "/data/dir:", ".", "..", ".wh.bar", "bar", "keep", "keep"]
    assert r.stdout.decode().split() == listing, r.stderr
    r = _sh("ls -a /data /data/dir; cat /data/foo /data/dir/bar", root, extra=keep)
    assert r.stdout.decode().split() == listing
    assert tree_digest(root) == before


def test_the_sentrys_xattrs_are_out_of_reach():
    """Placeholders are marked with user.sentry.lower: the guest can neither
    set it (forging a placeholder), remove it, nor see it."""
    code = r"""
import errno, os
def attempt(f):
    try:
        f(); return "done"
    except OSError as e:
        return errno.errorcode[e.errno]
os.mkdir("/var/sentry-x"); p = "/var/sentry-x/f"
with open(p, "w") as f:
    f.write("mine\n")
fd = os.open(p, os.O_RDWR); d = os.open("/var/sentry-x", os.O_RDONLY)
print(attempt(lambda: os.setxattr(p, "user.sentry.lower", b"")), attempt(lambda: os.setxattr(fd, "user.sentry.lower", b"")),
      attempt(lambda: os.setxattr(d, "user.sentry.lower", b"")), attempt(lambda: os.setxattr("/var/sentry-x", "user.sentry.x", b"")),
      attempt(lambda: os.removexattr("/usr", "user.sentry.lower")), attempt(lambda: os.removexattr(d, "user.sentry.lower")))
print(attempt(lambda: os.getxattr("/usr", "user.sentry.lower")), attempt(lambda: os.getxattr("/", "user.sentry.lower")))
print([n for n in os.listxattr("/") + os.listxattr("/usr") + os.listxattr("/var") if n.startswith("user.sentry")])
os.setxattr(p, "user.ok", b"1"); print(os.listxattr(p), open(p).read().strip(), sorted(os.listdir("/var/sentry-x")))
libc = ctypes.CDLL(None, use_errno=True)     # renameat2(RENAME_WHITEOUT) would leave a char device 0/0
print(libc.syscall(316, -100, p.encode(), -100, b"/var/sentry-x/g", 4), errno.errorcode[ctypes.get_errno()], os.listdir("/var/sentry-x"))
"""
    r = run_sentry(["python3", "-c", "import ctypes\n" + code])
    assert r.stdout.decode().split("\n") == [
        "EPERM EPERM EPERM EPERM EPERM EPERM", "ENODATA ENODATA", "[]", "['user.ok'] mine ['f']",
        "-1 EPERM ['f']", ""], r.stderr


def test_lower_fds_never_write_the_lower_layer(tmp_path, busybox_root):
    """An fd opened before copy-up is on the lower file: attribute calls on it
    are refused, and it cannot be hard-linked into the upper layer."""
    code = r"""
import errno, fcntl, os, struct
def attempt(f):
    try:
        f(); return "done"
    except OSError as e:
        return errno.errorcode[e.errno]
fd = os.open("/etc/hostname", os.O_RDONLY); root = os.open("/", os.O_RDONLY)
print(attempt(lambda: os.fchmod(fd, 0o777)), attempt(lambda: os.fchown(fd, 1, 1)),
      attempt(lambda: os.utime(fd, (1, 1))), attempt(lambda: os.setxattr(fd, "user.x", b"1")),
      attempt(lambda: os.link(f"/proc/self/fd/{fd}", "/etc/stolen", src_dir_fd=root, follow_symlinks=True)),
      attempt(lambda: fcntl.ioctl(fd, 0x40086602, struct.pack("i", 0x40))))     # FS_IOC_SETFLAGS nodump
with open("/etc/hostname", "w") as f:
    f.write("new\n")
print(os.read(fd, 100) == open("/var/tmp/hostname.copy", "rb").read(), open("/etc/hostname").read().strip())
"""
    import shutil
    shutil.copy("/etc/hostname", "/var/tmp/hostname.copy")
    try:
        st = os.stat("/etc/hostname")
        r = run_sentry(["python3", "-c", code])
        assert r.stdout == b"EROFS EROFS EROFS EROFS EXDEV EROFS\nTrue new\n", r.stderr
        assert os.stat("/etc/hostname") == st
        flags = subprocess.run(["lsattr", "/etc/hostname"], capture_output=True, text=True).stdout
        assert "d" not in flags.split()[0]
    finally:
        os.unlink("/var/tmp/hostname.copy")


def test_placeholder_inodes_rotate_before_the_link_limit(tmp_path, monkeypatch):
    """File placeholders are hard links to a few inodes: a new one is made
    before a file system's link limit, and all are known again on reload."""
    from sentry.fsimpl import overlay
    monkeypatch.setattr(overlay, "MAX_LINKS", 3)
    work, upper = tmp_path / "work", tmp_path / "upper"
    work.mkdir()
    upper.mkdir()
    pool = overlay.Placeholders(os.open(work, os.O_RDONLY))
    d = os.open(upper, os.O_RDONLY)
    for i in range(7):
        pool.link(0o100000, d, f"f{i}")
    pool.link(0o120000, d, "l")
    inodes = {os.lstat(upper / f"f{i}").st_ino for i in range(7)}
    # each inode: its name in the work directory and two placeholders
    assert len(inodes) == 4 and max(os.lstat(upper / f"f{i}").st_nlink for i in range(7)) <= 3
    again = overlay.Placeholders(os.open(work, os.O_RDONLY))
    assert all(os.lstat(upper / n) in again for n in ["l"] + [f"f{i}" for i in range(7)])
    assert os.lstat(tmp_path) not in again


def test_native_lookups_follow_directory_changes(tmp_path, busybox_root):
    """The native fast path caches which layer holds each directory: every
    copy-up, removal and rename must be seen at once (differential, against
    the same script on a copy of the rootfs, natively)."""
    script = """
stat -c '%n %s' /data/sub/f /data/sub/deep/g; ls /data/sub
rm -rf /data/sub && mkdir /data/sub; stat -c %n /data/sub/f 2>&1; ls -a /data/sub
echo 22 > /data/sub/f; stat -c '%n %s' /data/sub/f; cat /data/other/h
mv /data /data2; stat -c %n /data/other/h 2>&1; stat -c '%n %s' /data2/other/h /data2/sub/f
mkdir /data; stat -c %n /data/sub 2>&1; ls -a /data; mv /data2/other /data/other; cat /data/other/h
rm -rf /data2 /data/other/h; ls -a /data/other; stat -c %n /data2/sub/f 2>&1
ln -s /data/other /o; echo new > /o/h; cat /data/other/h; rm /o; stat -c %n /o/h 2>&1
"""
    def make(root):
        copy_root(busybox_root, root)
        for path, text in (("data/sub/f", "f\n"), ("data/sub/deep/g", "gg\n"), ("data/other/h", "h\n")):
            os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
            with open(os.path.join(root, path), "w") as f:
                f.write(text)
    make(str(tmp_path / "native"))
    make(str(tmp_path / "boxed"))
    before = tree_digest(str(tmp_path / "boxed"))
    native = run_native(["/bin/sh", "-c", script], str(tmp_path / "native"))
    boxed = _sh(script, str(tmp_path / "boxed"), extra=["--overlay"])
    assert b"new" in native.stdout
    assert (boxed.stdout, boxed.stderr, boxed.returncode) == (native.stdout, native.stderr, native.returncode)
    assert tree_digest(str(tmp_path / "boxed")) == before


ETXTBSY_SCRIPT = r"""
sleep 2 & sleep 0.5
(cat /dev/null > /bin/sleep) 2>/dev/null; echo write $?
truncate -s 0 /bin/sleep 2>/dev/null; echo truncate $?
python3 -c 'import os
for p in ("/bin/sleep", "/lib64/ld-linux-x86-64.so.2"):
    try:
        os.open(p, os.O_WRONLY); print("open ok")
    except OSError as e:
        print("open", os.strerror(e.errno))'
wait
truncate -s 0 /bin/sleep; echo after $? $(stat -c %s /bin/sleep)
"""


def test_a_running_program_of_the_lower_layer_is_busy():
    """Writing a program a sandbox process runs is ETXTBSY, as on Linux,
    though the write would go to the overlay's copy of it (a file of the
    host's tree, unchanged); once it has exited, the copy is made."""
    before = os.stat("/bin/sleep")
    r = run_sentry(["/bin/bash", "-c", ETXTBSY_SCRIPT])
    assert r.stdout.decode().splitlines() == [
        "write 1", "truncate 1", "open Text file busy", "open Text file busy", "after 0 0"], r.stderr
    after = os.stat("/bin/sleep")
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)


# A program copied into a writable directory, run, and written while it
# runs: every way of opening it for writing (the C fast path's and Python's)
# and truncate(2).
BUSY_IN_PLACE = r"""
cd "$1" && cp /bin/sleep ./prog && ./prog 2 & sleep 0.5
python3 - "$1/prog" <<'PY'
import os, sys
for name, flags in (("wronly", os.O_WRONLY), ("rdwr", os.O_RDWR), ("trunc", os.O_WRONLY | os.O_TRUNC),
                    ("creat", os.O_WRONLY | os.O_CREAT | os.O_TRUNC), ("rdonly", os.O_RDONLY)):
    try:
        os.close(os.open(sys.argv[1], flags, 0o755)); print(name, "ok")
    except OSError as e:
        print(name, os.strerror(e.errno))
try:
    os.truncate(sys.argv[1], 0); print("truncate ok")
except OSError as e:
    print("truncate", os.strerror(e.errno))
PY
wait
"""


def test_a_running_program_in_a_writable_directory_is_busy(tmp_path):
    """ETXTBSY for a program run from the sandbox's /tmp and from a bind
    mount, as natively from a directory of the host: the fast path leaves
    writes to executables to Python, which knows what runs."""
    (tmp_path / "native").mkdir()
    (tmp_path / "bound").mkdir()
    native = subprocess.run(["/bin/bash", "-c", BUSY_IN_PLACE, "sh", str(tmp_path / "native")],
                            capture_output=True, timeout=60)
    assert native.stdout.decode().splitlines()[0] == "wronly Text file busy", native.stderr
    for where in ("/tmp", "/mnt"):
        r = run_sentry(["/bin/bash", "-c", BUSY_IN_PLACE, "sh", where],
                       extra=["--mount", f"type=bind,src={tmp_path / 'bound'},dst=/mnt"])
        assert r.stdout == native.stdout, (where, r.stderr)


def test_a_stat_of_a_lower_directory_copies_nothing_up(tmp_path, busybox_root):
    """A stat shows a lower directory's own attributes with its twin's
    identity (the placeholder in its parent, completed for it), which stays
    when the directory is listed and changed; only its parent is copied up."""
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    for d in ("data/d/s1", "data/d/s2"):
        os.makedirs(os.path.join(root, d))
    open(os.path.join(root, "data/d/f"), "w").close()
    os.chmod(os.path.join(root, "data/d"), 0o751)
    show = "stat -c '%d %i %h %a' /data/d"
    r = _sh(show, root, extra=["--overlay", "--debug"])
    assert "overlay: copied up directory data (" in r.stderr.decode()
    assert "copied up directory data/d " not in r.stderr.decode(), r.stderr.decode()
    first = r.stdout.split()
    assert first[2:] == [b"4", b"751"]          # the lower directory's: 2 + two subdirectories
    r = _sh(f"{show}; ls /data/d; {show}; touch /data/d/new; {show}; ls -id /data/d; ls -i /data | grep ' d$'",
            root, extra=["--overlay"])
    lines = r.stdout.decode().splitlines()
    before, listed, after = lines[0], lines[4], lines[5]
    assert lines[1:4] == ["f", "s1", "s2"], r.stderr
    assert before == listed == after, lines
    ino = before.split()[1]
    assert lines[6].split()[0] == ino and lines[7].split()[0] == ino, lines


def test_gnu_find_and_du_walk_lower_trees_they_stat():
    """find and du (fts) stat each directory before they open it: the
    identity the stat showed is the one the open finds, with no complaint."""
    script = "find /usr/share/doc | wc -l; du -s --inodes /usr/share/doc | cut -f1; find /usr/share/doc -type d | wc -l"
    native = subprocess.run(["/bin/bash", "-c", script], capture_output=True, timeout=120)
    r = run_sentry(["/bin/bash", "-c", script])
    assert (r.stdout, r.stderr) == (native.stdout, native.stderr)
