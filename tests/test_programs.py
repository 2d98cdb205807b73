"""Real programs give the same output inside sentry as natively."""
import os
import subprocess


from conftest import assert_same, run_sentry

SH_SCRIPT = r"""
set -e
echo start
echo one two three | tr ' ' '\n' | sort -r | head -2
(cd /tmp && echo "in subshell: $(pwd)")
x=$(echo captured); echo "$x"
echo redirected > /tmp/out.txt; cat < /tmp/out.txt; rm /tmp/out.txt
for i in 1 2 3; do echo "bg $i" > /tmp/bg.$i & done; wait
cat /tmp/bg.1 /tmp/bg.2 /tmp/bg.3; rm /tmp/bg.*
trap 'echo got USR1' USR1; kill -USR1 $$
sleep 0.2 & wait $!; echo "waited $?"
false || echo "false failed"
ls / | grep -c . > /dev/null && echo listed
mkdir -p /tmp/a/b/c && touch /tmp/a/b/c/f && find /tmp/a | sort && rm -r /tmp/a
ln -s /etc/passwd /tmp/lnk && head -1 /tmp/lnk && readlink /tmp/lnk && rm /tmp/lnk
echo end
"""


def test_busybox_sh_script(busybox_root):
    r = assert_same(["/bin/sh", "-c", SH_SCRIPT], busybox_root)
    assert b"got USR1" in r.stdout and r.stdout.endswith(b"end\n")


def test_bash_script(host_root):
    script = SH_SCRIPT + r"""
declare -A m=([k]=v); echo "${m[k]}"
mapfile -t arr <<< "$(printf '%s\n' a b c)"; echo "${#arr[@]}"
echo $(( 6 * 7 ))
"""
    r = assert_same(["/bin/bash", "-c", script], host_root)
    assert b"42" in r.stdout


COREUTILS = r"""
cd /tmp && mkdir -p src/sub && for i in $(seq 1 50); do echo "file $i" > src/f$i; done
echo nested > src/sub/n; ln -s f1 src/link; chmod 640 src/f2
cp -a src dst && ls -la dst | awk '{print $1, $NF}' | sort
find dst -type f | sort | head -5; find dst -type l
sort -n -k2 dst/f1 dst/f10 dst/f3; wc -l dst/* 2>/dev/null | tail -1
tar czf a.tgz src && mkdir x && tar xzf a.tgz -C x && diff -r src x/src && echo tar-ok
gzip -c dst/f1 | gunzip; stat -c '%a %n' dst/f2; md5sum dst/sub/n | cut -c1-32
rm -r src dst x a.tgz; ls
"""


def test_coreutils(host_root):
    r = assert_same(["/bin/bash", "-c", COREUTILS], host_root)
    assert b"tar-ok" in r.stdout


def test_python_default_root():
    code = r"""
import json, sqlite3, subprocess, threading, multiprocessing, os, tempfile
print(json.dumps({"a": [1, 2]}))
out = subprocess.run(["echo", "from child"], capture_output=True, text=True).stdout
print(out.strip())
res = []
ts = [threading.Thread(target=res.append, args=(i,)) for i in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]; print(sorted(res))
def sq(x): return x * x
if __name__ == "__main__":
    with multiprocessing.Pool(2) as p: print(p.map(sq, range(5)))
    lock = multiprocessing.Lock(); q = multiprocessing.Queue()
    pr = multiprocessing.Process(target=q.put, args=("queued",)); pr.start(); print(q.get()); pr.join()
    db = sqlite3.connect(os.path.join(tempfile.mkdtemp(), "t.db"))
    db.execute("create table t(x)"); db.executemany("insert into t values (?)", [(i,) for i in range(100)])
    db.commit(); print(db.execute("select sum(x) from t").fetchone()[0])
"""
    native = subprocess.run(["python3", "-c", code], capture_output=True, timeout=120)
    boxed = run_sentry(["python3", "-c", code])
    assert boxed.stderr == native.stderr == b""
    assert boxed.stdout == native.stdout
    assert b"queued" in boxed.stdout and b"4950" in boxed.stdout


MULTIPROCESSING = r"""
import multiprocessing as mp
def work(q, lock, i):
    with lock:
        q.put(i * i)
q, lock = mp.Queue(), mp.Lock()
ps = [mp.Process(target=work, args=(q, lock, i)) for i in range(4)]
for p in ps: p.start()
for p in ps: p.join()
print(sorted(q.get() for _ in range(4)), [p.exitcode for p in ps])
sem, ev, v = mp.Semaphore(2), mp.Event(), mp.Value("i", 7)
with sem: ev.set()
print(ev.is_set(), v.value)
for method in ("fork", "spawn", "forkserver"):
    ctx = mp.get_context(method)
    with ctx.Pool(2) as pool:
        print(method, pool.map(abs, [-1, -2, 3]))
    with ctx.Manager() as m:
        d = m.dict(); d["k"] = [1, 2]; l = m.Lock()
        with l: print(method, dict(d))
"""


def test_python_multiprocessing():
    """POSIX semaphores in /dev/shm (Lock, Queue, Semaphore, Event, Value),
    every start method, and Managers, whose address is the name of the unix
    socket they bound (getsockname)."""
    native = subprocess.run(["python3", "-c", MULTIPROCESSING], capture_output=True, timeout=120)
    boxed = run_sentry(["python3", "-c", MULTIPROCESSING])
    assert native.returncode == 0 and native.stderr == b""
    assert (boxed.stdout, boxed.stderr, boxed.returncode) == (native.stdout, native.stderr, 0)


def test_gcc_compiles_and_runs():
    """Compiles in a fresh directory of the sandbox's private /tmp (and stops
    if it cannot go there), so no source or object file lands in the checkout."""
    script = r"""
set -e
cd "$(mktemp -d)"
cat > a.c <<'END'
#include <stdio.h>
int twice(int);
int main(void) { printf("%d\n", twice(21)); return 0; }
END
printf 'int twice(int x) { return 2 * x; }\n' > b.c
gcc -O2 -Wall -c a.c && gcc -O2 -c b.c && gcc -o prog a.o b.o && ./prog
"""
    r = run_sentry(["/bin/sh", "-c", script])
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"42\n"


def test_default_root_private_tmp():
    r = run_sentry(["/bin/sh", "-c", "echo secret > /tmp/sentry-private && cat /tmp/sentry-private"])
    assert r.stdout == b"secret\n"
    assert not os.path.exists("/tmp/sentry-private")


SANDBOX_DEV = "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero"


def test_dev_lists_the_sandboxs_nodes_only(busybox_root):
    """/dev is the sandbox's own: a listing names its nodes, with their types,
    and none of the host's; /proc/self/fd names them as /dev paths."""
    for rootfs in (None, busybox_root):
        r = run_sentry(["/bin/sh", "-c", "echo $(ls /dev); echo $(find /dev -maxdepth 1 -type c | sort); "
                        "exec 3>/dev/null; readlink /proc/self/fd/3; ls -l /dev/null | cut -c1"], rootfs)
        assert r.stdout.decode().splitlines() == [
            SANDBOX_DEV, "/dev/full /dev/null /dev/random /dev/tty /dev/urandom /dev/zero",
            "/dev/null", "c"], r.stderr.decode()


def test_default_root_hides_host_devices():
    r = run_sentry(["/bin/sh", "-c", "ls /dev/sda /dev/mem /dev/kmsg 2>&1 | wc -l; "
                    "echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | od -An -tx1; "
                    "ls /sys/block /sys/firmware 2>&1 | wc -l; echo $(ls /sys/class /sys/devices/virtual)"])
    lines = r.stdout.decode().split("\n")
    assert lines[0].strip() == "3"          # three "No such file" lines
    assert "null-ok" in r.stdout.decode() and "00 00 00 00" in r.stdout.decode()
    assert lines[-3].strip() == "2"
    assert lines[-2] == "/sys/class: net /sys/devices/virtual: net"   # the interfaces (tests/test_network.py)
