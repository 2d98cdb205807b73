"""Stat results of files the guest sees otherwise than the host: a device
node's stand-in (vfs/devnodes.py), a socket whose mode an ACL carries
(vfs/sockperm.py).  The one resolver (vfs/resolve.py) hands these views on."""
import os
import stat

# what os.stat_result takes by name: all but its first ten fields
_BY_NAME = ("st_atime", "st_mtime", "st_ctime", "st_atime_ns", "st_mtime_ns", "st_ctime_ns",
            "st_blksize", "st_blocks", "st_rdev")


def stat_as(st, st_mode, st_size=None, **by_name):
    """st with its mode (and size, blocks, rdev) changed."""
    fields = list(st)[:10]
    fields[stat.ST_MODE] = st_mode
    if st_size is not None:
        fields[stat.ST_SIZE] = st_size
    return os.stat_result(fields, dict({name: getattr(st, name) for name in _BY_NAME}, **by_name))
