"""Backends of the mount table, one module per kind of file system.

All are host directories underneath (vfs.mount.Mount): what differs is which
names resolve, what may be written, and what is generated on lookup.
"""
