# Run as root: set files up, drop to a user, probe.  Same output natively and in sentry.
import os, subprocess, sys
base = sys.argv[1]
os.chdir(base)
for d in ("open", "closed", "sticky", "mine"):
    os.makedirs(d, exist_ok=True)
os.chmod("open", 0o755); os.chmod("closed", 0o700); os.chmod("sticky", 0o1777)
os.chown("mine", 1000, 1000)
for name, mode in (("open/ro", 0o644), ("open/secret", 0o600), ("open/group", 0o640), ("open/script", 0o755),
                   ("open/noexec", 0o644), ("closed/f", 0o644), ("sticky/roots", 0o666)):
    with open(name, "w") as f:
        f.write("#!/bin/sh\necho ran\n")
    os.chmod(name, mode)
os.chown("open/group", 0, 100)
os.setgroups([100]); os.setgid(1000); os.setuid(1000)
def probe(what, f):
    try:
        r = f()
        print(what, "ok" if r is None or r is True else r)
    except OSError as e:
        print(what, e.strerror)
probe("read ro", lambda: open("open/ro").read(3))
probe("write ro", lambda: open("open/ro", "a") and None)
probe("read secret", lambda: open("open/secret").read(3))
probe("read group", lambda: open("open/group").read(3))
probe("truncate ro", lambda: os.truncate("open/ro", 0))
probe("create in open", lambda: open("open/new", "w") and None)
probe("mkdir in open", lambda: os.mkdir("open/d"))
probe("unlink in open", lambda: os.unlink("open/ro"))
probe("rename in open", lambda: os.rename("open/ro", "mine/ro"))
probe("stat closed/f", lambda: os.stat("closed/f").st_size)
probe("list closed", lambda: os.listdir("closed"))
probe("chdir closed", lambda: os.chdir("closed"))
probe("access secret R", lambda: os.access("open/secret", os.R_OK))
probe("access ro R", lambda: os.access("open/ro", os.R_OK))
probe("access ro W", lambda: os.access("open/ro", os.W_OK))
probe("exec script", lambda: subprocess.run(["./open/script"], capture_output=True, text=True).stdout.strip())
probe("exec noexec", lambda: subprocess.run(["./open/noexec"]) and None)
probe("create in mine", lambda: open("mine/f", "w").write("x"))
probe("unlink roots in sticky", lambda: os.unlink("sticky/roots"))
probe("write roots in sticky", lambda: open("sticky/roots", "a").write("x"))
probe("own in sticky", lambda: open("sticky/mine", "w").write("x"))
probe("unlink own in sticky", lambda: os.unlink("sticky/mine"))
probe("mode of new", lambda: oct(os.stat("mine/f").st_mode))
