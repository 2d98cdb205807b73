"""chroot(2), emulated (syscalls/path.py sys_chroot, syscalls/lookup.py): the
Sentry resolves a chrooted process's paths from its root, where `..` and
absolute symlinks stop, and names its cwd and programs from there.  The
same programs run natively with chroot(8) and chroot(2) as root, and in
the sandbox; a chroot never reaches beyond the sandbox, which is the real
confinement, but inside it holds as Linux holds it."""
import os
import shutil
import subprocess

from conftest import run_sentry

INSIDE = r"""
echo motd > /etc/motd
ln -sf /etc/motd /tmp/abs; ln -sf ../../../../../etc/motd /tmp/rel
cat /tmp/abs /tmp/rel
pwd; cd /bin; pwd; cd ../../..; pwd; ls /
readlink -f /tmp/abs; realpath /../../tmp/rel
printf '#!/bin/bash\necho script "$0" "$(pwd)"\n' > /tmp/s.sh; chmod +x /tmp/s.sh; /tmp/s.sh
bash -c 'cd /tmp && echo child $(pwd) && ls /..'
stat -c '%n %F' /../../bin/bash /etc
ls /secret 2>&1
"""

# chroot(2) with the cwd left outside, its errors, and who may call it
PROBE = r"""
import os, sys
def show(what, f):
    try:
        print(what, f())
    except OSError as e:
        print(what, os.strerror(e.errno))
os.chdir(sys.argv[1])
show("nonexistent", lambda: os.chroot("nonexistent"))
show("a file", lambda: os.chroot("inner/etc/motd"))
pid = os.fork()
if pid == 0:
    os.setgid(1000); os.setuid(1000)
    show("no search", lambda: os.chroot("closed/inner"))
    show("not root", lambda: os.chroot("inner"))
    os._exit(0)
os.waitpid(pid, 0)
show("chroot", lambda: os.chroot("inner"))
show("cwd outside", os.getcwd)
show("relative from outside", lambda: os.path.exists("inner/etc/motd") and os.path.exists("secret/f"))
show("absolute", lambda: sorted(os.listdir("/"))[:3])
show("secret", lambda: open("/secret/f").read())
os.chdir("/")
show("cwd", os.getcwd)
show("up", lambda: sorted(os.listdir("../..")) == sorted(os.listdir("/")))
"""

# A thread swaps inner/d between a directory and symlinks that climb out
# of the root, while another opens d/f: never the file outside the root.
RACE = r"""
import os, sys, threading, time
os.chdir(sys.argv[1])
os.chroot("inner"); os.chdir("/")
for name in ("/d", "/d.new"):
    if os.path.islink(name):
        os.unlink(name)
os.makedirs("/d.dir", exist_ok=True)
open("/d.dir/f", "w").write("inside")
links = ["../secret", "/../secret", "../../../../secret", "/../../" + os.path.basename(sys.argv[1]) + "/secret"]
os.symlink("/d.dir", "/d")
stop = False
def swap():
    i = 0
    while not stop:
        os.symlink("/d.dir" if i % 2 else links[i // 2 % len(links)], "/d.new")
        os.rename("/d.new", "/d")
        i += 1
t = threading.Thread(target=swap)
t.start()
seen = set()
end = time.time() + 3
while time.time() < end:
    try:
        seen.add(open("/d/f").read())
    except OSError as e:
        seen.add(os.strerror(e.errno))
stop = True
t.join()
print("escaped" if "escaped" in seen else "held", "inside" in seen)
"""


def _tree(base, host_root):
    inner = os.path.join(base, "inner")
    if not os.path.exists(inner):
        # not its /dev: copying a device node copies what it reads (/dev/zero: no end)
        shutil.copytree(host_root, inner, symlinks=True, ignore=lambda d, names: ["dev"] if d == host_root else [])
    for d in ("tmp", "etc"):
        os.makedirs(os.path.join(inner, d), exist_ok=True)
    os.chmod(os.path.join(inner, "tmp"), 0o1777)
    os.makedirs(os.path.join(base, "secret"), exist_ok=True)
    with open(os.path.join(base, "secret", "f"), "w") as f:
        f.write("escaped")
    closed = os.path.join(base, "closed", "inner")
    os.makedirs(closed, exist_ok=True)
    os.chmod(os.path.dirname(closed), 0o700)
    return inner


def test_a_chrooted_shell_sees_its_root_as_natively(host_root, outside_tmp):
    inner = _tree(outside_tmp, host_root)
    native = subprocess.run(["chroot", inner, "/bin/bash", "-c", INSIDE], capture_output=True, timeout=60)
    assert native.stdout.decode().splitlines()[:2] == ["motd", "motd"]
    boxed = run_sentry(["/bin/sh", "-c", 'cd "$1" && exec chroot inner /bin/bash -c "$2"', "sh", outside_tmp, INSIDE])
    assert boxed.stdout == native.stdout, boxed.stderr
    assert (boxed.stderr, boxed.returncode) == (native.stderr, native.returncode)


def test_chroot_errors_and_a_cwd_left_outside_as_natively(host_root, outside_tmp):
    _tree(outside_tmp, host_root)
    native = subprocess.run(["python3", "-c", PROBE, outside_tmp], capture_output=True, timeout=60)
    assert native.returncode == 0, native.stderr
    lines = native.stdout.decode().splitlines()
    assert "chroot None" in lines and "secret No such file or directory" in lines, lines
    boxed = run_sentry(["python3", "-c", PROBE, outside_tmp])
    assert boxed.stdout.decode().splitlines() == lines, boxed.stderr


def test_symlinks_racing_out_of_the_root_are_held(host_root, outside_tmp):
    _tree(outside_tmp, host_root)
    native = subprocess.run(["python3", "-c", RACE, outside_tmp], capture_output=True, timeout=60)
    assert native.stdout.decode().split() == ["held", "True"], native.stderr
    boxed = run_sentry(["python3", "-c", RACE, outside_tmp], timeout=120)
    assert boxed.stdout.decode().split() == ["held", "True"], boxed.stderr
