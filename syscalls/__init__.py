"""The syscall table (table.py) and one module of handlers per family.

    file.py      open family, fd-level checks (close, fchmod, ioctl, fcntl)
    path.py      calls that name a path: stat, mkdir, rename, link, xattr, cwd
    exec.py      execve, execveat
    process.py   clone family, process groups, pid-taking calls
    signal.py    kill family
    socket.py    bind, connect, sendto, sendmsg: addresses
    identity.py  uname and friends
    deny.py      calls sentry never offers
"""
