"""socketpair(2) in a new network namespace (run in `unshare -n`): the
lowest free numbers, SOCK_CLOEXEC and SOCK_NONBLOCK as asked, data both
ways, EFAULT for a bad array with no fd left behind, EOPNOTSUPP for an
internet family, and many pairs made at once by threads, each a connected
pair (tests/test_netns.py, natively and inside)."""
import ctypes, errno, fcntl, os, socket, threading
libc = ctypes.CDLL(None, use_errno=True)
SOCK_CLOEXEC, SOCK_NONBLOCK = 0o2000000, 0o4000


def pair(kind, family=socket.AF_UNIX, sv=None):
    fds = (ctypes.c_int * 2)()
    r = libc.syscall(53, family, kind, 0, sv if sv is not None else fds)
    return (list(fds) if r == 0 else errno.errorcode[ctypes.get_errno()])


fds = lambda: sorted(int(f) for f in os.listdir("/proc/self/fd"))
before = fds()
free = os.dup(0)
os.close(free)
a, b = pair(socket.SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK)
print("lowest", a == free and b > a)
print("cloexec", [bool(fcntl.fcntl(f, fcntl.F_GETFD) & fcntl.FD_CLOEXEC) for f in (a, b)])
print("nonblock", [bool(fcntl.fcntl(f, fcntl.F_GETFL) & os.O_NONBLOCK) for f in (a, b)])
os.write(a, b"ping")
os.write(b, b"pong")
print("data", os.read(b, 10), os.read(a, 10))
c, d = pair(socket.SOCK_DGRAM)
print("plain", [bool(fcntl.fcntl(f, fcntl.F_GETFD) & fcntl.FD_CLOEXEC) for f in (c, d)],
      socket.socket(fileno=os.dup(c)).type == socket.SOCK_DGRAM)
for f in (a, b, c, d):
    os.close(f)
print("bad array", pair(socket.SOCK_STREAM, sv=ctypes.c_void_p(1)), fds() == before)
print("inet", pair(socket.SOCK_STREAM, family=socket.AF_INET))
made, lock = [], threading.Lock()


def make():
    for _ in range(40):
        x, y = pair(socket.SOCK_STREAM)
        os.write(x, b"!")
        ok = os.read(y, 1) == b"!"
        with lock:
            made.append(ok)
        os.close(x)
        os.close(y)


threads = [threading.Thread(target=make) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("threads", len(made), all(made), fds() == before)
