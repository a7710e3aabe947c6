#!/usr/bin/env python3
"""Writes a directory tree as a newc cpio archive (the initramfs format,
Linux Documentation/driver-api/early-userspace/buffer-format.rst) to stdout.
Owners are root, times are zero, so the archive depends only on the tree."""
import os
import stat
import sys


def entry(out, name, mode, data=b"", ino=0, nlink=1):
    name_b = name.encode() + b"\0"
    hdr = "070701" + "".join(
        "%08X" % v
        for v in (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name_b), 0)
    )
    out.write(hdr.encode() + name_b)
    out.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
    out.write(data)
    out.write(b"\0" * ((4 - len(data) % 4) % 4))


def main():
    top = sys.argv[1]
    out = sys.stdout.buffer
    ino = 1
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        # Symbolic links to directories are listed as directories but not walked.
        names = sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))])
        rel_dir = os.path.relpath(dirpath, top)
        if rel_dir != ".":
            entry(out, rel_dir, os.lstat(dirpath).st_mode, b"", ino, 2)
            ino += 1
        for name in names:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                data = os.readlink(path).encode()
            else:
                with open(path, "rb") as f:
                    data = f.read()
            entry(out, rel, st.st_mode, data, ino)
            ino += 1
    entry(out, "TRAILER!!!", 0)


if __name__ == "__main__":
    main()
