"""Symlinks the native fast path may follow by itself.

Merged-/usr systems reach every library through /lib -> usr/lib, and sonames
are symlinks too: the native path's one confined lookup (which follows none)
fails and the call goes to Python.  When the Python walk follows a symlink, it
records its sandbox path -> canonical target here, and the native path
substitutes it before its lookup (a final component only when following).

Only guest calls that remove or move names (unlink, rmdir, rename) can make
an entry wrong, and each of them empties the table.
"""
from sentry._native import lib

MAX_LINKS = 256


class LinkCache:
    def __init__(self):
        self.known = {}

    def add(self, spath, target):
        if spath in self.known or len(self.known) >= MAX_LINKS:
            return
        if lib.sn_add_link(spath.encode(), target.encode()) == 0:
            self.known[spath] = target

    def substitute(self, spath, follow):
        """spath with known symlinks replaced by their targets, as the native
        path does (a final component only when following)."""
        for _ in range(8):
            for link, target in self.known.items():
                if spath.startswith(link) and (spath[len(link):len(link) + 1] == "/"
                                               or (follow and len(spath) == len(link))):
                    spath = target.rstrip("/") + spath[len(link):] or "/"
                    break
            else:
                return spath
        return spath

    def clear(self):
        if self.known:
            self.known.clear()
            lib.sn_clear_links()
