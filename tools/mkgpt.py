#!/usr/bin/env python3
"""Writes a GUID partition table (UEFI 2.10, 5.3) onto a disk image: the
protective MBR, the primary header and entries, their backup at the end.
A server's disk with an EFI system partition and a store partition, for
the tests (tools/mkdisk.sh --store-partition); no partitioning tool needed.

usage: tools/mkgpt.py IMAGE TYPE:START:SECTORS:NAME...
  TYPE: esp, store, or a GUID; START and SECTORS in 512-byte sectors.
"""
import struct
import sys
import uuid
import zlib

TYPES = {
    "esp": "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
    "store": "c78ea6a6-4a69-4576-97fd-0fa745dc6db4",  # lib/store.h STORE_GPT_TYPE
}
SECTOR, ENTRIES, ENTRY_SIZE = 512, 128, 128
ENTRY_SECTORS = ENTRIES * ENTRY_SIZE // SECTOR


def header(current, backup, first, last, disk_guid, entries_lba, entries_crc):
    fields = struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x00010000, 92, 0, 0, current,
                         backup, first, last, disk_guid, entries_lba, ENTRIES, ENTRY_SIZE,
                         entries_crc)
    crc = zlib.crc32(fields)
    return (fields[:16] + struct.pack("<I", crc) + fields[20:]).ljust(SECTOR, b"\0")


def main():
    image, specs = sys.argv[1], sys.argv[2:]
    with open(image, "r+b") as f:
        f.seek(0, 2)
        sectors = f.tell() // SECTOR
        first, last = 2 + ENTRY_SECTORS, sectors - 2 - ENTRY_SECTORS
        entries = b""
        for spec in specs:
            kind, start, count, name = spec.split(":")
            start, count = int(start), int(count)
            if start < first or start + count - 1 > last:
                sys.exit("mkgpt: %s does not fit in sectors %d-%d" % (spec, first, last))
            entries += struct.pack("<16s16sQQQ72s", uuid.UUID(TYPES.get(kind, kind)).bytes_le,
                                   uuid.uuid4().bytes_le, start, start + count - 1, 0,
                                   name.encode("utf-16-le"))
        entries = entries.ljust(ENTRIES * ENTRY_SIZE, b"\0")
        crc = zlib.crc32(entries)
        disk_guid = uuid.uuid4().bytes_le
        # The protective MBR: one partition of type EEh over the whole disk (5.2.3).
        mbr = bytearray(SECTOR)
        mbr[446:462] = struct.pack("<BBBBBBBBII", 0, 0, 2, 0, 0xEE, 0xFF, 0xFF, 0xFF, 1,
                                   min(sectors - 1, 0xFFFFFFFF))
        mbr[510:512] = b"\x55\xaa"
        f.seek(0)
        f.write(bytes(mbr))
        f.write(header(1, sectors - 1, first, last, disk_guid, 2, crc))
        f.write(entries)
        f.seek((sectors - 1 - ENTRY_SECTORS) * SECTOR)
        f.write(entries)
        f.write(header(sectors - 1, 1, first, last, disk_guid, sectors - 1 - ENTRY_SECTORS, crc))


if __name__ == "__main__":
    main()
