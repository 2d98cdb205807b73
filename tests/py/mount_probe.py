"""Mounts as a guest makes them (tests/test_guest_mounts.py): mount(2) and
umount2(2) with Linux's errnos, tmpfs, binds, remounts, propagation, and a
child's mount namespace of its own.  Run natively under `unshare -m` (as
root) or `unshare -rm`, and in the sandbox: the same transcript.
Usage: mount_probe.py DIR (DIR: an empty directory, outside /tmp)"""
import ctypes
import errno
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
D = sys.argv[1]
MS_RDONLY, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_MOVE, MS_REC = 1, 8, 32, 4096, 8192, 16384
MS_PRIVATE, MS_SLAVE, MS_SHARED, MS_NOUSER = 1 << 18, 1 << 19, 1 << 20, 1 << 31
MNT_DETACH, MNT_EXPIRE, UMOUNT_NOFOLLOW = 2, 4, 8
CLONE_NEWNS = 0x20000


def enc(s):
    return None if s is None else os.fsencode(s)


def check(label, r):
    print(label, "ok" if r == 0 else errno.errorcode[ctypes.get_errno()], flush=True)


def mount(label, src, tgt, fstype, flags=0, data=None):
    check(label, libc.mount(enc(src), enc(tgt), enc(fstype), flags, enc(data)))


def umount(label, tgt, flags=0):
    check(label, libc.umount2(enc(tgt), flags))


def attempt(label, fn):
    try:
        v = fn()
        print(label, "ok", "" if v is None else v, flush=True)
    except OSError as e:
        print(label, errno.errorcode[e.errno], flush=True)


def read(path):
    with open(path) as f:
        return f.read().strip()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def listed(path):
    """Whether /proc/self/mountinfo names a mount at path."""
    return any(line.split()[4] == path for line in open("/proc/self/mountinfo"))


def p(*names):
    return os.path.join(D, *names)


for n in ("t", "b", "src", "m"):
    os.mkdir(p(n))
write(p("t", "under"), "under")
write(p("src", "f"), "src")
write(p("file"), "file")

# errors first, in Linux's order
mount("missing target", None, p("nope"), "tmpfs")
mount("unknown type", "x", p("t"), "nosuchfs")
mount("no type", "x", p("t"), None)
mount("MS_NOUSER", "x", p("t"), "tmpfs", MS_NOUSER)
mount("bad option", "x", p("t"), "tmpfs", 0, "bogus=1")
mount("tmpfs on a file", "x", p("file"), "tmpfs")
mount("bind of nothing", None, p("b"), None, MS_BIND)
mount("bind of a missing path", p("nope"), p("b"), None, MS_BIND)
mount("bind of a dir on a file", p("src"), p("file"), None, MS_BIND)
mount("private, not a mount point", None, p("src"), None, MS_PRIVATE)
umount("umount of no mount point", p("src"))
umount("umount of nothing", p("nope"))
umount("umount2 bad flags", p("t"), 0x100)

# a tmpfs
mount("tmpfs", "x", p("t"), "tmpfs", 0, "size=1m,mode=750")
print("mode", oct(os.stat(p("t")).st_mode & 0o7777), "entries", os.listdir(p("t")), "listed", listed(p("t")))
write(p("t", "x"), "in tmpfs")
print("read", read(p("t", "x")))
os.mkdir(p("t", "sub"))
os.chdir(p("t", "sub"))
print("cwd", os.getcwd() == p("t", "sub"))
os.chdir("/")
mount("private", None, p("t"), None, MS_PRIVATE)
mount("two kinds", None, p("t"), None, MS_PRIVATE | MS_SHARED)
mount("rslave /", None, "/", None, MS_REC | MS_SLAVE)
mount("rprivate /", None, "/", None, MS_REC | MS_PRIVATE)
mount("remount ro", None, p("t"), None, MS_REMOUNT | MS_RDONLY)
attempt("write there", lambda: write(p("t", "y"), "y"))
mount("remount rw", None, p("t"), None, MS_REMOUNT)
attempt("write again", lambda: write(p("t", "y"), "y"))
mount("nested tmpfs", "y", p("t", "sub"), "tmpfs")
umount("umount busy", p("t"))
umount("expire with detach", p("t"), MNT_EXPIRE | MNT_DETACH)
umount("umount lazily", p("t"), MNT_DETACH)
print("after", sorted(os.listdir(p("t"))), "listed", listed(p("t")), listed(p("t", "sub")))

# expiry: marked first, then gone
mount("tmpfs again", "x", p("t"), "tmpfs")
umount("expire", p("t"), MNT_EXPIRE)
umount("expire again", p("t"), MNT_EXPIRE)
print("after expiry", sorted(os.listdir(p("t"))))

# binds
mount("bind", p("src"), p("b"), None, MS_BIND)
print("through the bind", read(p("b", "f")), "listed", listed(p("b")))
write(p("b", "g"), "written through")
print("in the source", read(p("src", "g")))
mount("remount bind ro", None, p("b"), None, MS_REMOUNT | MS_BIND | MS_RDONLY)
attempt("create in ro bind", lambda: write(p("b", "h"), "h"))
attempt("unlink in ro bind", lambda: os.unlink(p("b", "g")))
attempt("access W_OK", lambda: os.access(p("b", "g"), os.W_OK))
attempt("source still writable", lambda: write(p("src", "h"), "h"))
mount("remount bind noexec", None, p("b"), None, MS_REMOUNT | MS_BIND | MS_NOEXEC)
attempt("create in rw again", lambda: write(p("b", "i"), "i"))
umount("umount bind", p("b"))
print("bind gone", sorted(os.listdir(p("b"))))
mount("bind a file", p("src", "f"), p("file"), None, MS_BIND)
print("file now", read(p("file")))
umount("umount file", p("file"))
print("file again", read(p("file")))
mount("bind over itself", p("src"), p("src"), None, MS_BIND)
print("self bind", sorted(os.listdir(p("src"))))
umount("umount self bind", p("src"))
mount("rbind", D, p("b"), None, MS_BIND | MS_REC)
print("rbind shows", sorted(os.listdir(p("b")))[:3])
umount("umount rbind", p("b"), MNT_DETACH)

# a move
mount("tmpfs to move", "x", p("t"), "tmpfs")
write(p("t", "moved"), "moved")
mount("move", p("t"), p("m"), None, MS_MOVE)
print("moved", sorted(os.listdir(p("m"))), sorted(os.listdir(p("t"))))
umount("umount moved", p("m"))

# a child in a mount namespace of its own
mount("parent's tmpfs", "x", p("t"), "tmpfs")
write(p("t", "parent"), "parent")
mine = os.readlink("/proc/self/ns/mnt")
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    out = []
    out.append("child sees " + ",".join(sorted(os.listdir(p("t")))))
    if libc.unshare(CLONE_NEWNS) != 0:
        out.append("unshare " + errno.errorcode[ctypes.get_errno()])
    out.append("ns differs %s" % (os.readlink("/proc/self/ns/mnt") != mine))
    out.append("umount inherited %s" % (libc.umount2(enc(p("t")), 0) == 0))
    out.append("child after umount " + ",".join(sorted(os.listdir(p("t")))))
    libc.mount(b"c", enc(p("t")), b"tmpfs", 0, None)
    write(p("t", "child"), "child")
    out.append("child mounts %s" % listed(p("t")))
    os.write(w, ("\n".join(out) + "\n").encode())
    os._exit(0)
os.close(w)
os.waitpid(pid, 0)
print(os.read(r, 65536).decode(), end="")
print("parent sees", sorted(os.listdir(p("t"))), "ns", os.readlink("/proc/self/ns/mnt") == mine)
umount("umount parent's", p("t"))
print("done", sorted(os.listdir(p("t"))))

# pivot_root, in a child of a mount namespace of its own
libc.syscall.restype = ctypes.c_long
SYS_pivot_root = 155


def pivot(label, new, old):
    check(label, libc.syscall(SYS_pivot_root, enc(new), enc(old)))


os.mkdir(p("nr"))
pivot("pivot to no mount point", p("nr"), p("nr"))
pivot("pivot to /", "/", p("nr"))
pivot("pivot to a file", p("file"), p("file"))
pivot("pivot to nothing", p("nope"), p("nope"))
mount("new root", "x", p("nr"), "tmpfs")
os.mkdir(p("nr", "old"))
write(p("nr", "mark"), "new")
pivot("put_old outside", p("nr"), p("t"))
pid = os.fork()
if pid == 0:
    if libc.unshare(CLONE_NEWNS) != 0:
        os._exit(3)
    pivot("pivot", p("nr"), p("nr", "old"))
    os.chdir("/")
    print("new root holds", sorted(os.listdir("/")), flush=True)
    print("old root below", os.path.isdir("/old" + D), read("/mark"), flush=True)
    umount("umount old root busy", "/old")
    umount("umount old root", "/old", MNT_DETACH)
    print("old root gone", sorted(os.listdir("/old")), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print("parent still", sorted(os.listdir(p("nr"))))
umount("umount new root", p("nr"))
