"""Device nodes the sandbox's root makes (CAP_MKNOD): stand-in files the
Sentry shows as the nodes (sentry/vfs/devnodes.py), never real host nodes.
Compared with the same script run natively as root."""
import os
import subprocess

from conftest import run_sentry

SCRIPT = r'''
cd "$1" || exit 1
umask 022
mknod null2 c 1 3 && mknod disk b 254 7 && mknod weird c 240 1 && mkfifo fifo
ls -l null2 disk weird fifo | awk '{print $1, $5, $6, $NF}'
stat -c '%n %F %t %T %a %s %h' null2 disk weird
echo hello > null2; echo "write rc=$?"
head -c 4 null2 | wc -c
chmod 600 null2; stat -c '%n %F %a' null2
chown 1000:1000 null2; stat -c '%n %u %g %F' null2
python3 -c 'import os,stat; st=os.stat("disk"); print(stat.S_ISBLK(st.st_mode), os.major(st.st_rdev), os.minor(st.st_rdev))'
python3 -c 'import os; os.mknod("big", 0o020640, os.makedev(4095, 1048575)); st = os.lstat("big"); print(oct(st.st_mode), os.major(st.st_rdev), os.minor(st.st_rdev))'
mv disk disk2; ls -l disk2 | cut -c1
cp -a null2 null3; stat -c '%n %F %t %T' null3
tar cf t.tar null3 disk2 && mkdir x && tar xf t.tar -C x && stat -c '%n %F %t %T' x/null3 x/disk2
cat null2/x 2>&1 | sed 's/.*: //'
python3 -c '
import os
for n in ("null2", "fifo"):
    for what, f in (("set", lambda: os.setxattr(n, "user.a", b"1")), ("get", lambda: os.getxattr(n, "user.a")),
                    ("list", lambda: os.listxattr(n))):
        try:
            print(n, what, f())
        except OSError as e:
            print(n, what, os.strerror(e.errno))
'
rm -r null2 null3 disk2 weird fifo big t.tar x
setpriv --reuid 1000 --regid 1000 --clear-groups mknod "$1/u" c 1 3 2>&1 | sed 's/.*: //'
ls
'''


def test_device_nodes_as_natively(outside_tmp):
    d = os.path.join(outside_tmp, "devnodes")
    os.makedirs(d, exist_ok=True)
    native = subprocess.run(["bash", "-c", SCRIPT, "sh", d], capture_output=True)
    boxed = run_sentry(["bash", "-c", SCRIPT, "sh", d])
    assert native.returncode == 0 and b"character special file" in native.stdout, native.stderr
    assert boxed.stdout.decode() == native.stdout.decode(), boxed.stderr
    assert boxed.stderr == native.stderr


POLICY = r'''
cd "$1" || exit 1
mknod zero2 c 1 5 && mknod disk b 254 0 && mknod mem c 1 1
head -c 3 zero2 | od -An -tx1
for n in disk mem; do (cat $n > /dev/null) 2>&1 | sed 's/.*: //'; done
python3 -c '
import os, errno
for n in ("disk", "mem"):
    try:
        os.open(n, os.O_RDWR)
    except OSError as e:
        print(n, errno.errorcode[e.errno])
fd = os.open("disk", os.O_PATH)
print("O_PATH ok", fd > 0)
'
rm zero2 disk mem
'''


def test_a_node_opens_the_sandboxs_device_or_nothing(outside_tmp):
    """A node of the sandbox's /dev set (zero) reads as /dev/zero; any other
    (a host disk's number, /dev/mem's) is EPERM, as a container's device
    policy gives, and never reaches a host device."""
    d = os.path.join(outside_tmp, "devpolicy")
    os.makedirs(d, exist_ok=True)
    r = run_sentry(["bash", "-c", POLICY, "sh", d])
    assert r.stdout.decode() == (" 00 00 00\nOperation not permitted\nOperation not permitted\n"
                                 "disk EPERM\nmem EPERM\nO_PATH ok True\n"), r.stderr


RACE = r'''
import os, stat, threading
os.chdir(os.environ["DIR"])
os.mknod("standin", 0o060666, os.makedev(254, 0))
open("plain", "w").write("data")
stop = False
def swap():
    while not stop:
        os.rename("standin", "x")
        os.rename("plain", "standin")
        os.rename("standin", "plain")
        os.rename("x", "standin")
t = threading.Thread(target=swap)
t.start()
bad = opened = 0
for _ in range(2000):
    try:
        fd = os.open("standin", os.O_RDONLY)
    except OSError:
        continue
    opened += 1
    st = os.fstat(fd)
    if stat.S_ISBLK(st.st_mode) or stat.S_ISCHR(st.st_mode):
        bad += 1
    os.close(fd)
stop = True
t.join()
print("device fds", bad, "opened", opened > 0)
'''


def test_a_racing_rename_never_opens_a_device(outside_tmp):
    """While a thread swaps a block device's stand-in and a plain file under
    one name, opening that name gives the plain file or EPERM, never a
    device fd."""
    d = os.path.join(outside_tmp, "devrace")
    os.makedirs(d, exist_ok=True)
    r = run_sentry(["python3", "-c", RACE], env=dict(os.environ, DIR=d), timeout=300)
    assert r.stdout == b"device fds 0 opened True\n", r.stderr
