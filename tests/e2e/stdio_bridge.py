#!/usr/bin/env python3
"""The management line on stdin/stdout: what `vmmctl -c exec:COMMAND` runs
in the end-to-end test, standing in for a BMC's serial-over-LAN client.

usage: stdio_bridge.py UNIX_SOCKET
Copies stdin to the socket and the socket to stdout until either ends.
"""
import os
import selectors
import socket
import sys

sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
sel = selectors.DefaultSelector()
sel.register(sys.stdin.fileno(), selectors.EVENT_READ)
sel.register(sock, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        if key.fileobj is sock:
            data = sock.recv(4096)
            if not data:
                sys.exit(0)
            os.write(sys.stdout.fileno(), data)
        else:
            data = os.read(sys.stdin.fileno(), 4096)
            if not data:
                sys.exit(0)
            sock.sendall(data)
