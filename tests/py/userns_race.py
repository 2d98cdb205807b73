"""A user namespace's uid_map written while a thread swaps the fd number
between the map and a plain file (tests/test_userns.py): run as a user that
is not root, whatever the order, the map never names root's id outside, and
the user never gains root's files.  Prints one line of counts.
Usage: userns_race.py DIR (a directory root owns, mode 755)"""
import ctypes, errno, os, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
DIR = sys.argv[1]
if libc.unshare(0x10000000) != 0:
    sys.exit("unshare: %s" % os.strerror(ctypes.get_errno()))
me = os.geteuid()
plain = os.open(os.path.join("/var/tmp", "userns-race-%d" % os.getpid()), os.O_CREAT | os.O_WRONLY, 0o600)
os.unlink(os.path.join("/var/tmp", "userns-race-%d" % os.getpid()))
target = 100                       # the number both threads name
stop = time.time() + 2
counts = {"eperm": 0, "einval": 0, "ok": 0, "other": 0}


def swapper():
    while time.time() < stop:
        try:
            m = os.open("/proc/self/uid_map", os.O_WRONLY)
        except OSError:
            continue
        os.dup2(m, target)
        os.close(m)
        os.dup2(plain, target)


def writer():
    while time.time() < stop:
        for text in (b"0 0 1\n", b"0 0 4294967295\n", b"0 65534 1\n"):
            try:
                os.write(target, text)
                counts["ok"] += 1
            except OSError as e:
                key = {errno.EPERM: "eperm", errno.EINVAL: "einval"}.get(e.errno, "other")
                counts[key] += 1


threads = [threading.Thread(target=f) for f in (swapper, writer, writer)]
for t in threads:
    t.start()
for t in threads:
    t.join()
mapped = open("/proc/self/uid_map").read().split()
try:
    os.close(os.open(os.path.join(DIR, "f"), os.O_CREAT | os.O_WRONLY, 0o644))
    root_files = "written"
except OSError as e:
    root_files = errno.errorcode[e.errno]
print("refused", counts["eperm"] > 0, "root mapped", mapped[1:2] == ["0"], "root's dir", root_files)
