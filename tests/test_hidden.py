"""Hidden paths (sentry/fsimpl/hidden.py): on the default root the host's
secrets are empty stand-ins, whatever way the guest looks; --expose shows one
again, --hide adds one (with --rootfs too)."""
import os
import shutil
import tempfile

import pytest

from conftest import copy_root, run_native, run_sentry

SECRET = "SENTRY-HIDDEN-TEST-SECRET"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the host's secrets are readable by root only")


@pytest.fixture
def planted():
    """Secret files in /root and a secret home in /home: host files a
    guest run as root could read were they not hidden."""
    made = []
    try:
        root_dir = tempfile.mkdtemp(prefix="sentry-hidden-", dir="/root")
        made.append(root_dir)
        made.append(tempfile.mkdtemp(prefix="sentry-hidden-other-", dir="/root"))
        for d in made:
            with open(os.path.join(d, "key"), "w") as f:
                f.write(SECRET + "\n")
        os.makedirs("/home", exist_ok=True)
        home = tempfile.mkdtemp(prefix="sentry-hidden-", dir="/home")
        made.append(home)
        os.mkdir(os.path.join(home, ".ssh"))
        with open(os.path.join(home, ".ssh", "id_ed25519"), "w") as f:
            f.write(SECRET + "\n")
        yield root_dir, home, made[1]
    finally:
        for d in made:
            shutil.rmtree(d, ignore_errors=True)


def _host_shadow():
    try:
        with open("/etc/shadow") as f:
            return [line for line in f.read().splitlines() if line]
    except FileNotFoundError:
        return []


def _no_secret(r):
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    assert SECRET not in out, out
    for line in _host_shadow():
        assert line not in out, out


def test_default_root_hides_host_secrets(planted):
    root_dir, home, _ = planted
    r = run_sentry(["/bin/sh", "-c",
                    f"cat /etc/shadow /etc/gshadow {root_dir}/key {home}/.ssh/id_ed25519; "
                    "echo shadow=$(wc -c < /etc/shadow); stat -c '%F %a' /etc/shadow /root /home; "
                    "echo root=$(ls -A /root | wc -l) home=$(ls -A /home | wc -l)"])
    _no_secret(r)
    out = r.stdout.decode()
    if _host_shadow():
        st = os.stat("/etc/shadow")
        assert "shadow=0\n" in out
        assert f"regular empty file {st.st_mode & 0o7777:o}\n" in out
    assert f"directory {os.stat('/root').st_mode & 0o7777:o}\n" in out
    assert "root=0 home=0" in out, out


def test_hidden_content_is_unreachable_by_any_route(planted):
    """Hard links, `..`, /proc/self/root, a directory fd, /proc/self/fd,
    symlinks, listing and search, moving a parent, removing the stand-in."""
    root_dir, _, _ = planted
    name = os.path.basename(root_dir)
    script = f"""
import os, subprocess
def attempt(what, f):
    try:
        print(what + ":", repr(f()))
    except OSError as e:
        print(what + ":", os.strerror(e.errno))
def read(p):
    with open(p, "rb") as f:
        return f.read()
attempt("hard link", lambda: (os.link("/etc/shadow", "/tmp/s"), read("/tmp/s")))
attempt("hard link key", lambda: (os.link("{root_dir}/key", "/tmp/k"), read("/tmp/k")))
attempt("dotdot", lambda: read("/root/../root/{name}/key"))
attempt("proc root", lambda: read("/proc/self/root/etc/shadow"))
attempt("proc root key", lambda: read("/proc/1/root{root_dir}/key"))
d = os.open("/etc", os.O_RDONLY)
attempt("dirfd", lambda: os.read(os.open("shadow", os.O_RDONLY, dir_fd=d), 4096))
fd = os.open("/etc/shadow", os.O_RDONLY)
attempt("fd link", lambda: (os.readlink(f"/proc/self/fd/{{fd}}"), read(f"/proc/self/fd/{{fd}}")))
os.symlink("{root_dir}/key", "/tmp/l")
attempt("symlink", lambda: read("/tmp/l"))
attempt("list root", lambda: os.listdir("/root"))
attempt("walk root", lambda: [p for p, _, _ in os.walk("/root")])
attempt("move etc", lambda: os.rename("/etc", "/etc2"))
attempt("remove", lambda: os.unlink("/etc/shadow"))
attempt("rmdir", lambda: os.rmdir("/root"))
os.chdir("/root")
attempt("cwd", lambda: (os.getcwd(), os.listdir(".")))
attempt("find", lambda: subprocess.run("find /etc /root /home \\\\( -name shadow -o -path '*sentry-hidden-*' \\\\) -type f "
                                       "-exec cat {{}} + 2>/dev/null | wc -c",
                                       shell=True, capture_output=True).stdout)
attempt("tar", lambda: subprocess.run("tar cf - /root /etc/shadow 2>/dev/null | tar tvf - | wc -l",
                                      shell=True, capture_output=True).stdout)
"""
    r = run_sentry(["python3", "-c", script])
    _no_secret(r)
    out = dict(line.split(": ", 1) for line in r.stdout.decode().splitlines())
    assert len(out) >= 16, r.stdout.decode() + r.stderr.decode()
    assert out["hard link"] in ("(None, b'')", "Invalid cross-device link")
    assert out["hard link key"] == "No such file or directory"
    assert out["dotdot"] == out["proc root key"] == "No such file or directory"
    assert out["proc root"] == out["dirfd"] == "b''"
    assert out["fd link"] == "('/etc/shadow', b'')"
    assert out["symlink"] == "No such file or directory"
    assert out["list root"] == "[]" and out["walk root"] == "['/root']"
    assert out["move etc"] == out["remove"] == out["rmdir"] == "Device or resource busy"
    assert out["cwd"] == "('/root', [])"
    assert out["find"] == "b'0\\n'"


def test_expose_and_hide(planted):
    root_dir, home, other = planted
    r = run_sentry(["/bin/sh", "-c", f"cat {root_dir}/key; cat /etc/hostname; echo hostname=$?; "
                    f"ls -A {home}/.ssh; ls -A {other}; cat {other}/key"],
                   extra=["--expose", root_dir, "--hide", "/etc/hostname", "--expose", f"{home}/.ssh"])
    out = r.stdout.decode().splitlines()
    assert out[0] == SECRET                        # opted in
    assert out[1] == "hostname=0"                  # hidden: empty
    assert out[2] == "id_ed25519"                  # exposed below a hidden directory
    assert out[3:] == [], r.stdout                 # /root's other entries stay hidden
    if _host_shadow():
        e = run_sentry(["cat", "/etc/shadow"], extra=["--expose", "/etc/shadow"])
        assert e.stdout.decode().splitlines() == _host_shadow()


def test_hide_below_an_exposed_directory(planted):
    root_dir, _, _ = planted
    with open(os.path.join(root_dir, "visible"), "w") as f:
        f.write("seen\n")
    r = run_sentry(["/bin/sh", "-c", f"cat {root_dir}/visible {root_dir}/key"],
                   extra=["--expose", "/root", "--hide", f"{root_dir}/key"])
    assert r.stdout == b"seen\n", r.stderr
    _no_secret(r)


def test_hide_with_rootfs_is_differential(tmp_path, busybox_root):
    """--rootfs hides nothing by default; --hide there gives what an empty
    directory and an empty file give natively, and leaves the rootfs as it
    was, guest writes included."""
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    os.makedirs(os.path.join(root, "srv/keys"))
    with open(os.path.join(root, "srv/keys/k"), "w") as f:
        f.write(SECRET + "\n")
    os.chmod(os.path.join(root, "srv/keys"), 0o750)
    with open(os.path.join(root, "etc/shadow"), "w") as f:
        f.write(SECRET + "\n")
    os.chmod(os.path.join(root, "etc/shadow"), 0o640)
    plain = run_sentry(["/bin/cat", "/etc/shadow"], root)
    assert plain.stdout.decode() == SECRET + "\n"        # no default hiding under --rootfs
    script = ["/bin/sh", "-c", "ls -la /srv/keys | sed 1d | awk '{print $1, $NF}'; "
              "stat -c '%F %a' /etc/shadow /srv/keys; wc -c < /etc/shadow; cat /etc/shadow /srv/keys/k; "
              "echo new > /srv/keys/n && cat /srv/keys/n; ls /srv/keys"]
    boxed = run_sentry(script, root, extra=["--hide", "/srv/keys", "--hide", "/etc/shadow"])
    _no_secret(boxed)
    assert os.listdir(os.path.join(root, "srv/keys")) == ["k"]     # the write stayed private
    # natively: the same tree with an empty directory and an empty file there
    empty = str(tmp_path / "empty")
    copy_root(root, empty)
    shutil.rmtree(os.path.join(empty, "srv/keys"))
    os.mkdir(os.path.join(empty, "srv/keys"), 0o750)
    os.chmod(os.path.join(empty, "srv/keys"), 0o750)
    open(os.path.join(empty, "etc/shadow"), "w").close()
    native = run_native(script, empty)
    assert boxed.stdout.decode() == native.stdout.decode()
    assert boxed.stderr.decode() == native.stderr.decode() and boxed.returncode == native.returncode


def test_hidden_paths_follow_symlinks_and_warn_for_a_hidden_cwd(planted):
    """--hide through a symlink hides its target; a working directory that
    is hidden is said so."""
    root_dir, _, _ = planted
    link = tempfile.mktemp(prefix="sentry-hidden-link-", dir="/var/tmp")
    os.symlink(root_dir, link)
    try:
        r = run_sentry(["/bin/sh", "-c", f"pwd; cat {link}/key; ls {root_dir}"],
                       extra=["--expose", "/root", "--hide", link], cwd=root_dir,
                       env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(__file__))))
    finally:
        os.unlink(link)
    _no_secret(r)
    assert r.stdout.decode().splitlines() == [root_dir], r.stderr
    assert "hidden in the sandbox" in r.stderr.decode()


@pytest.mark.parametrize("args, message", [
    (["--hide", "relative"], "absolute path"),
    (["--expose", "/"], "absolute path"),
    (["--hide", "/proc/1"], "sandbox's own"),
    (["--hide", "/etc/x", "--expose", "/etc/x"], "one or the other"),
])
def test_bad_hide_and_expose_are_refused(args, message):
    r = run_sentry(["/bin/true"], extra=args)
    assert r.returncode == 125 and message in r.stderr.decode(), r.stderr


def test_a_hidden_path_leading_to_the_root_hides_nothing(tmp_path, busybox_root):
    root = str(tmp_path / "root")
    copy_root(busybox_root, root)
    os.symlink("/", os.path.join(root, "up"))
    r = run_sentry(["/bin/sh", "-c", "ls /bin/sh /up/bin/sh"], root, extra=["--hide", "/up"])
    assert r.stdout == b"/bin/sh\n/up/bin/sh\n" and r.returncode == 0, r.stderr


USERADD = ("useradd -m bob && echo 'bob:secret' | chpasswd && grep -c '^bob:' /etc/shadow /etc/passwd; "
           "ls -d /home/bob; echo mine > /tmp/g; mv /tmp/g /etc/gshadow && cat /etc/gshadow")


@pytest.mark.parametrize("upper", ["same", "other"])
def test_a_file_renamed_over_a_hidden_file_takes_its_place(upper):
    """useradd, passwd and chpasswd rename a new /etc/shadow over the old:
    over a hidden path's stand-in that works as for any file, the guest's
    file taking its place (on one host file system by rename, across two by
    a copy), and the host's own file is neither read nor changed."""
    before = {p: os.stat(p) for p in ("/etc/shadow", "/etc/gshadow", "/etc/passwd")}
    extra = []
    ovl = None
    if upper == "other":          # the upper layer on tmpfs, the stand-ins on the disk
        ovl = tempfile.mkdtemp(prefix="sentry-test-", dir="/dev/shm")
        extra = ["--overlay-dir", ovl]
    try:
        r = run_sentry(["/bin/sh", "-c", USERADD], extra=extra)
    finally:
        if ovl:
            shutil.rmtree(ovl)
    assert r.stdout.decode().splitlines() == ["/etc/shadow:1", "/etc/passwd:1", "/home/bob", "mine"], r.stderr
    for p, st in before.items():
        now = os.stat(p)
        assert (now.st_ino, now.st_mtime_ns, now.st_size) == (st.st_ino, st.st_mtime_ns, st.st_size)
    with open("/etc/shadow") as f:
        assert "bob:" not in f.read()
