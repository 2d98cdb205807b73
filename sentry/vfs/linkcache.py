"""Symlinks the walk has followed, remembered by the walk itself.

Merged-/usr systems reach every library through /lib -> usr/lib, and sonames
are symlinks too.  The walk (native/resolve.c) remembers where a symlink it
followed leads, when that does not depend on who asks (nothing Python serves,
such as /proc/self, on the way), and substitutes it at the head of later
absolute paths, saving a readlink and a lookup per link.

Only guest calls that remove or move names (unlink, rmdir, rename) can make
an entry wrong, and each of them empties the memo.
"""
from sentry._native import lib


class LinkCache:
    def __init__(self, table):
        self.table = table

    def clear(self):
        lib.sn_table_clear_links(self.table)
