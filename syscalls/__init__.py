"""The syscall table (table.py) and one module of handlers per family.

    file.py      open family, fd-level checks (close, fchmod, ioctl, fcntl)
    path.py      calls that name a path: stat, mkdir, rename, link, xattr, cwd
    exec.py      execve, execveat
    process.py   clone family, process groups, pid-taking calls
    signal.py    kill family
    socket.py    bind, connect, sendto, sendmsg: addresses
    clock.py     clocks that name a pid; clock_settime
    uts.py       uname, sethostname, setdomainname
    sysinfo.py   sysinfo
    writes.py    the write family, where a per-fd filter traps it: asks
                 settings.py (network settings only CAP_NET_ADMIN may write) and
                 controlfiles.py (/proc/<pid>/uid_map and kin)
    deny.py      calls sentry never offers
    namespaces.py  unshare: the namespaces a guest makes
    mount.py     mount, umount2: a guest changes its mount namespace's table
    credentials.py set*id, get*id, capabilities
    idview.py    a user namespace's view of the ids a stat writes
"""
