#!/usr/bin/env python3
"""A console server for the emulator's serial line.

Bochs' socket-server COM1 takes one peer for its whole life, but the admin
tool connects once per command. This relay is that one peer: it connects
to the emulator's TCP port, appends everything the line carries to a log
file (so tests can read the hypervisor's log), and lends the line to one
client at a time on a Unix socket (vmmctl -c unix:PATH), as a console
server or a serial concentrator would.

With --share, clients are served at the same time instead, so that a
`vmmctl events --follow` stays subscribed while other vmmctl commands come
and go (docs/protocol.md): everything the line says goes to every client
(each vmmctl keeps the answers to its own request ids and every event);
a client's bytes go to the line a whole frame at a time (up to its last
0x00 delimiter) while others are connected, so frames never interleave;
and a Goodbye from a client while others are connected is answered here,
not passed on, since the line has one session and a Goodbye would end the
others' subscription. A client alone on the line gets it byte for byte,
its Goodbye included.

usage: line-relay.py [--share] PORT LOG SOCKET   (runs until the emulator closes the line)
"""
import os
import selectors
import signal
import socket
import struct
import sys
import time
import zlib

from cobs import cobs_decode, cobs_encode

REQUEST, RESPONSE, GOODBYE = 1, 2, 0x02


def connect(port, deadline):
    while True:
        try:
            return socket.create_connection(("localhost", port))
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def goodbye_id(chunk):
    """The request id if CHUNK (between two 0x00) is a valid Goodbye request."""
    raw = cobs_decode(chunk)
    if not raw or len(raw) < 16:
        return None
    body, crc = raw[:-4], struct.unpack("<I", raw[-4:])[0]
    if zlib.crc32(body) != crc:
        return None
    _, ftype, _, _, fid, code, n = struct.unpack_from("<BBBBIHH", body)
    return fid if ftype == REQUEST and code == GOODBYE and n == 0 else None


def goodbye_answer(fid):
    raw = struct.pack("<BBBBIHH", 1, RESPONSE, 0, 0, fid, GOODBYE, 0)
    return b"\0" + cobs_encode(raw + struct.pack("<I", zlib.crc32(raw))) + b"\0"


def main():
    args = sys.argv[1:]
    share = "--share" in args
    args = [a for a in args if a != "--share"]
    port, log_path, sock_path = int(args[0]), args[1], args[2]
    # Stopped by the test's cleanup: still remove the socket file.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    line = connect(port, time.time() + 60)
    log = open(log_path, "ab", buffering=0)
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(8)
    sel = selectors.DefaultSelector()
    sel.register(line, selectors.EVENT_READ, "line")
    sel.register(server, selectors.EVENT_READ, "server")
    clients = {}  # socket -> bytes held back (share mode: an unfinished frame)

    def to_line(client, data):
        if not share:
            line.sendall(data)
            return
        data = clients[client] + data
        if len(clients) == 1:
            clients[client] = b""
            line.sendall(data)
            return
        cut = data.rfind(b"\0") + 1
        clients[client] = data[cut:]
        out = bytearray()
        # Split on the delimiters: a Goodbye is answered here, the rest passed on.
        for part in data[:cut].split(b"\0")[:-1]:
            fid = goodbye_id(part) if part else None
            if fid is not None:
                try:
                    client.sendall(goodbye_answer(fid))
                except OSError:
                    pass
                out += b"\0"
            else:
                out += part + b"\0"
        line.sendall(bytes(out))

    def drop(client):
        sel.unregister(client)
        rest = clients.pop(client)
        if rest:
            line.sendall(rest)
        client.close()

    try:
        while True:
            for key, _ in sel.select():
                if key.data == "line":
                    data = line.recv(65536)
                    if not data:
                        return
                    log.write(data)
                    for client in list(clients):
                        try:
                            client.sendall(data)
                        except OSError:
                            pass  # it is gone: its EOF arrives on the next select
                elif key.data == "server":
                    client, _ = server.accept()
                    clients[client] = b""
                    sel.register(client, selectors.EVENT_READ, client)
                    # One client at a time: the next waits in the backlog.
                    if not share:
                        sel.unregister(server)
                else:
                    client = key.data
                    try:
                        data = client.recv(65536)
                    except OSError:
                        data = b""
                    if data:
                        to_line(client, data)
                        continue
                    drop(client)
                    if not share:
                        sel.register(server, selectors.EVENT_READ, "server")
    finally:
        if os.path.exists(sock_path):
            os.unlink(sock_path)


if __name__ == "__main__":
    main()
