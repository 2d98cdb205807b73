"""User namespaces as a user makes them (tests/test_userns.py): unshare and
clone with CLONE_NEWUSER, the maps' rules, the ids seen through them, and
what the namespace's capabilities reach and do not.  Run natively and in
the sandbox as uid 0, 1000 and 65534: the same transcript.
Usage: userns_probe.py UID GID DIR (DIR: a directory root owns, mode 755)"""
import ctypes, os, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
DIR = sys.argv[3]
CLONE_NEWUSER, CLONE_NEWUTS = 0x10000000, 0x04000000
def r(what, f):
    try:
        v = f(); print(what, "ok", v if v is not None else "")
    except OSError as e:
        print(what, errno.errorcode[e.errno])
def unshare(flags):
    if libc.unshare(flags) != 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
def write(path, data):
    fd = os.open(path, os.O_WRONLY)
    try: return os.write(fd, data.encode())
    finally: os.close(fd)
print("uid", os.getuid(), os.geteuid())
# a child made in a user namespace of its own by clone(CLONE_NEWUSER)
import signal
CLONE_NEWUSER_ = 0x10000000
pid = libc.syscall(56, CLONE_NEWUSER_ | signal.SIGCHLD, 0, 0, 0, 0)
if pid == 0:
    print("clone child", os.getuid(), open("/proc/self/uid_map").read().split(), flush=True)
    os._exit(0)
if pid > 0:
    os.waitpid(pid, 0)
print("clone", "ok" if pid > 0 else errno.errorcode[ctypes.get_errno()])

r("unshare user", lambda: unshare(CLONE_NEWUSER))
print("unmapped ids", os.getuid(), os.getgid(), os.stat("/").st_uid)
r("setuid(0) unmapped", lambda: os.setuid(0))
r("map root", lambda: write("/proc/self/uid_map", "0 0 1\n"))
r("map two", lambda: write("/proc/self/uid_map", "0 %d 1\n1 0 1\n" % int(sys.argv[1])))
r("gid map before deny", lambda: write("/proc/self/gid_map", "0 %d 1\n" % int(sys.argv[2])))
r("setgroups deny", lambda: write("/proc/self/setgroups", "deny"))
r("uid map own", lambda: write("/proc/self/uid_map", "0 %d 1\n" % int(sys.argv[1])))
r("uid map again", lambda: write("/proc/self/uid_map", "0 %d 1\n" % int(sys.argv[1])))
r("gid map own", lambda: write("/proc/self/gid_map", "0 %d 1\n" % int(sys.argv[2])))
r("setgroups allow", lambda: write("/proc/self/setgroups", "allow"))
print("mapped ids", os.getuid(), os.geteuid(), os.getgid(), os.getresuid())
# ids others see of it, through its namespace: a socket's peer, credentials
# passed and received, a signal's sender
import socket, struct, signal
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
b.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print("peercred", struct.unpack("3i", a.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1:])
r("send own creds", lambda: a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS,
                                                 struct.pack("3i", os.getpid(), 0, 0))]) and None)
r("send unmapped creds", lambda: a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS,
                                                      struct.pack("3i", os.getpid(), 12345, 0))]) and None)
msg, anc, _, _ = b.recvmsg(16, socket.CMSG_SPACE(12))
print("received creds", [struct.unpack("3i", d)[1:] for lvl, kind, d in anc])
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
os.kill(os.getpid(), signal.SIGUSR1)
print("si_uid", signal.sigwaitinfo([signal.SIGUSR1]).si_uid)
print("root dir owner", os.stat("/").st_uid, os.stat("/").st_gid)
fd = os.open("/", os.O_RDONLY); print("fstat root", os.fstat(fd).st_uid); os.close(fd)
print("statx", os.popen("stat -c %u:%g " + DIR).read().strip())
print("own file", os.popen("f=$(mktemp); stat -c %u:%g $f; ls -ln $f | cut -d' ' -f3,4; rm -f $f").read().split())
r("read shadow", lambda: open("/etc/shadow").close())
r("write root dir", lambda: os.close(os.open(DIR + "/f", os.O_CREAT | os.O_WRONLY, 0o644)))
r("unlink it", lambda: os.unlink(DIR + "/f"))
r("setgroups([])", lambda: os.setgroups([]))
r("setuid(0)", lambda: os.setuid(0))
r("setuid(5)", lambda: os.setuid(5))
def call(rc):
    if rc != 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
r("sethostname", lambda: call(libc.sethostname(b"x", 1)))
r("unshare uts", lambda: unshare(CLONE_NEWUTS))
r("sethostname own", lambda: call(libc.sethostname(b"inner", 5)))
print("hostname", os.uname().nodename)
r("chroot", lambda: os.chroot("/"))
r("nice -5", lambda: os.nice(-5))
r("nested unshare", lambda: unshare(CLONE_NEWUSER))
print("nested ids", os.getuid(), os.getgid())
r("nested map", lambda: write("/proc/self/uid_map", "7 0 1\n"))
print("nested mapped", os.getuid())

