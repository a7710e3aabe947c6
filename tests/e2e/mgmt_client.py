#!/usr/bin/env python3
"""The management line's protocol phase (docs/protocol.md), below the tool.

tests/e2e/mgmt-boot.sh drives every API call through the admin tool
(build/vmmctl); this client covers what vmmctl must not do on purpose: the
human shell typed byte by byte, a request id sent twice, line noise, a
corrupt and a cut-off frame, an unknown request code, a malformed payload;
and it times single frames for the BENCH lines. It connects to the console
server's Unix socket (tools/line-relay.py, which records the line in
serial.out) and prints one "PASS name" / "FAIL name" line per check.

The line has a key (tests/e2e/configs/mgmt.conf): the client authenticates
at the shell as a person would (auth challenge, auth answer) and in framed
mode as a tool does, signing every request of its session.

usage: mgmt_client.py SOCKET KEY-HEX

The framing here is written from the protocol document, not from
mgmt/proto.c, so it also checks that document.
"""
import hashlib
import hmac
import random
import socket
import struct
import sys
import threading
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from cobs import cobs_decode, cobs_encode  # noqa: E402

REQUEST, RESPONSE, EVENT, ERROR = 1, 2, 3, 4
RQ = dict(HELLO=0x01, GOODBYE=0x02, AUTH_CHALLENGE=0x03, AUTH_RESPONSE=0x04, GET_HOST_INFO=0x10, CREATE_VM=0x11,
          DELETE_VM=0x12, LIST_VMS=0x13, FIND_VM=0x14, CREATE_NET=0x15, DELETE_NET=0x16,
          LIST_NETS=0x17, SUBSCRIBE=0x18, GET_STATE=0x20, STARTUP=0x21, TURN_OFF=0x22,
          RESET=0x23, SAVE=0x24, PAUSE=0x25, RESUME=0x26, ADD_NIC=0x27, REMOVE_NIC=0x28,
          LIST_NICS=0x29, CONSOLE_READ=0x2a, CONSOLE_WRITE=0x2b, GET_MAC=0x30, ATTACH=0x31,
          DETACH=0x32, GET_ADAPTERS=0x40, GET_STATS=0x41, GET_DHCP=0x42, SET_DHCP=0x43,
          GET_LEASES=0x44, GET_HEARTBEAT=0x50)
T = dict(error=0x01, message=0x02, api_version=0x04, nonce=0x07, auth_mac=0x08, seq=0x09,
         state_events=0x0a, auth_required=0x0c, session=0x0d, req_seq=0x0e, req_mac=0x0f, cpus=0x10, memory_free=0x12, vm_count=0x15, control_denied=0x17,
         vm=0x20, vm_id=0x21, vm_entry=0x22, state=0x23, memory=0x24, image=0x25,
         reason=0x2d, nic_spec=0x2e, vm_uptime_ms=0x2f, offset=0x30, next_offset=0x31,
         data=0x33, nic=0x40, nic_entry=0x41, mac=0x42, nic_count=0x43, net=0x50,
         net_entry=0x51, mtu=0x52, rx_frames=0x53, dhcp_enabled=0x60, dhcp_range=0x61,
         lease_time_s=0x65)
E = dict(OK=0, INVALID_ARGUMENT=1, NOT_FOUND=2, ALREADY_EXISTS=3, INVALID_STATE=4,
         NOT_SUPPORTED=5, PERMISSION_DENIED=6, BAD_FRAME=9, UNKNOWN_REQUEST=10, NO_ADDITIONS=12, TIMED_OUT=13)
TURNED_OFF, TURNING_ON, RUNNING, PAUSED, TURNING_OFF, DELETE_MACHINE = 1, 3, 5, 6, 8, 10

passed = failed = 0


def check(ok, name):
    global passed, failed
    print(("PASS " if ok else "FAIL ") + name, flush=True)
    if ok:
        passed += 1
    else:
        failed += 1
    return ok


def frame(ftype, fid, code, payload, flags=0):
    raw = struct.pack("<BBBBIHH", 1, ftype, flags, 0, fid, code, len(payload)) + payload
    return b"\0" + cobs_encode(raw + struct.pack("<I", zlib.crc32(raw))) + b"\0"


def tlv(tag, value):
    return struct.pack("<BH", tag, len(value)) + value


def s(tag, text):
    return tlv(T[tag], text.encode())


def u(tag, value, width):
    return tlv(T[tag], value.to_bytes(width, "little"))


def tlvs(payload):
    out, i = [], 0
    while i + 3 <= len(payload):
        tag, n = struct.unpack_from("<BH", payload, i)
        out.append((tag, payload[i + 3:i + 3 + n]))
        i += 3 + n
    return out


def get(payload, tag, default=None):
    for t, v in tlvs(payload):
        if t == T[tag]:
            return v
    return default


def num(payload, tag, default=-1):
    v = get(payload, tag)
    return int.from_bytes(v, "little") if v is not None else default


class Line:
    def __init__(self, path):
        # The line comes from the console server (tools/line-relay.py), which
        # also records it in serial.out: a Unix socket, lent to one client.
        deadline = time.time() + 120
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(5)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        self.sock.settimeout(None)
        self.cond = threading.Condition()
        self.text = bytearray()
        self.frames = []
        self.chunk = None
        threading.Thread(target=self.reader, daemon=True).start()

    def reader(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            if not data:
                return
            with self.cond:
                for b in data:
                    self.byte(b)
                self.cond.notify_all()

    def byte(self, b):
        if self.chunk is None:
            if b == 0:
                self.chunk = bytearray()
            else:
                self.text.append(b)
            return
        if b != 0:
            self.chunk.append(b)
            if len(self.chunk) > 1045:
                self.text += self.chunk
                self.chunk = None
            return
        raw = cobs_decode(bytes(self.chunk)) if self.chunk else None
        self.chunk = bytearray()
        if not raw or len(raw) < 16:
            return
        body, crc = raw[:-4], struct.unpack("<I", raw[-4:])[0]
        if zlib.crc32(body) != crc:
            return
        _, ftype, _, _, fid, code, n = struct.unpack_from("<BBBBIHH", body)
        self.frames.append((ftype, fid, code, body[12:12 + n], len(self.chunk_wire(raw))))
        self.chunk = None

    @staticmethod
    def chunk_wire(raw):
        return cobs_encode(raw) + b"\0\0"

    def send(self, data):
        self.sock.sendall(data)

    def wait_text(self, needle, timeout=60):
        deadline = time.time() + timeout
        with self.cond:
            while needle.encode() not in self.text:
                if not self.cond.wait(timeout=max(0.0, deadline - time.time())) and \
                        time.time() > deadline:
                    return False
            return True

    def take(self, pred, timeout):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for i, f in enumerate(self.frames):
                    if pred(f):
                        return self.frames.pop(i)
                left = deadline - time.time()
                if left <= 0:
                    return None
                self.cond.wait(timeout=left)


class Client:
    def __init__(self, line):
        self.line = line
        self.id = random.getrandbits(32)
        self.events = []
        self.last_wire = 0
        self.session = None  # (id, key, seq) once authenticated
        self.last_payload = b""

    def sign(self, fid, code, payload):
        """docs/protocol.md, "Authentication": session, req_seq, then the MAC."""
        if self.session is None:
            return payload
        sid, key, seq = self.session
        self.session = (sid, key, seq + 1)
        body = payload + u("session", sid, 4) + u("req_seq", seq + 1, 8)
        mac = hmac.new(key, struct.pack("<IH", fid, code) + body, hashlib.sha256).digest()
        return body + tlv(T["req_mac"], mac[:16])

    def authenticate(self, key):
        e, p, _ = self.call(RQ["AUTH_CHALLENGE"])
        nonce, sid = get(p, "nonce", b""), num(p, "session")
        answer = hmac.new(key, nonce, hashlib.sha256).digest()
        e2, _, _ = self.call(RQ["AUTH_RESPONSE"], u("session", sid, 4) + tlv(T["auth_mac"], answer))
        if e == 0 and e2 == 0:
            skey = hmac.new(key, b"vmm session key\0" + nonce, hashlib.sha256).digest()
            self.session = (sid, skey, 0)
        return e2

    def call(self, code, payload=b"", timeout=60, fid=None):
        fid = self.id if fid is None else fid
        self.id = (self.id + 1) & 0xffffffff
        payload = self.last_payload = self.sign(fid, code, payload)
        wire = frame(REQUEST, fid, code, payload)
        self.line.send(wire)
        f = self.line.take(lambda f: f[0] in (RESPONSE, ERROR) and f[1] == fid, timeout)
        if f is None:
            return None, b"", 0
        self.last_wire = len(wire) + f[4]
        self.collect_events()
        return (E["OK"] if f[0] == RESPONSE else num(f[3], "error")), f[3], f[4]

    def collect_events(self):
        while True:
            f = self.line.take(lambda f: f[0] == EVENT, 0)
            if f is None:
                return
            self.events.append(f)

    def states_since(self, vm, mark):
        return [num(p, "state") for (_, _, code, p, _) in self.events[mark:]
                if code == 1 and get(p, "vm") == vm.encode()]


def main():
    line = Line(sys.argv[1])
    key = bytes.fromhex(sys.argv[2])
    c = Client(line)

    # --- the human shell, typed as a person would --------------------------------
    # A vmmctl killed earlier left its session: the line stays framed until a
    # person takes it back with the escape line.
    line.send(b"shell\r")
    check(line.wait_text("vmm> ", 60), "shell: prompt on the line")
    line.send(b"host info\r")
    check(line.wait_text("authentication required"), "shell: a command needs authentication")
    with line.cond:
        line.text.clear()
    line.send(b"auth challenge\r")
    found = None
    deadline = time.time() + 30
    while found is None and time.time() < deadline:
        time.sleep(0.5)
        with line.cond:
            found = __import__("re").search(rb"nonce: ([0-9a-f]{64})", bytes(line.text))
    nonce = bytes.fromhex(found.group(1).decode()) if found else b""
    line.send(b"auth answer " + hmac.new(key, nonce, hashlib.sha256).hexdigest().encode() + b"\r")
    check(found is not None and line.wait_text("ok"), "shell: auth challenge and answer")
    line.send(b"host info\r")
    check(line.wait_text("cpus: 1"), "shell: host info answers")
    line.send(b"vm pause nosuch\r")
    check(line.wait_text("error: not found: Pause: no VM named 'nosuch'"),
          "shell: an error names the call and the VM")
    line.send(b"vm lsit\r")
    check(line.wait_text("'vm' needs one of") or line.wait_text("unknown"),
          "shell: a typo is refused by the parser")

    # --- framed mode, frame by frame ----------------------------------------------
    e, p, _ = c.call(RQ["HELLO"], u("api_version", 4, 2))
    check(e == 0 and num(p, "api_version") == 4 and num(p, "auth_required") == 1,
          "framed: Hello switches modes (API version 4, authentication required)")
    e, p, _ = c.call(RQ["GET_HOST_INFO"])
    check(e == E["PERMISSION_DENIED"], "framed: an unsigned request is refused")
    check(c.authenticate(key) == 0, "framed: AuthChallenge and AuthResponse open a session")
    e, p, _ = c.call(RQ["SUBSCRIBE"], u("state_events", 1, 1))
    check(e == 0 and num(p, "seq") > 0, "framed: SubscribeEvents answers the last seq")
    e, p, _ = c.call(RQ["CREATE_VM"], s("vm", "raw1") + u("memory", 4 << 20, 8) +
                     s("image", "/guests/echo.bin"))
    check(e == 0 and num(p, "state") == TURNED_OFF, "framed: CreateVirtualMachine (raw1)")

    def op(name, code, vm, want):
        mark = len(c.events)
        t0 = time.time()
        e, p, _ = c.call(code, s("vm", vm))
        ms = (time.time() - t0) * 1000
        got = c.states_since(vm, mark)
        check(e == 0 and got == want and num(p, "state") == want[-1],
              "framed: %s sends the events %s before its answer (got %s)" % (name, want, got))
        return ms

    startup_ms = op("Startup", RQ["STARTUP"], "raw1", [TURNING_ON, RUNNING])
    op("TurnOff", RQ["TURN_OFF"], "raw1", [TURNING_OFF, DELETE_MACHINE, TURNED_OFF])

    # replay: a retried Startup is answered again, not executed again
    fid = c.id
    c.id += 1
    mark = len(c.events)
    e, p1, _ = c.call(RQ["STARTUP"], s("vm", "raw1"), fid=fid)
    line.send(frame(REQUEST, fid, RQ["STARTUP"], c.last_payload, flags=1))
    again = line.take(lambda f: f[1] == fid, 30)
    time.sleep(1)
    c.collect_events()
    check(e == 0 and again is not None and again[3] == p1 and
          c.states_since("raw1", mark) == [TURNING_ON, RUNNING],
          "faults: a retried request gets the same answer and runs once")

    # noise, a broken frame, a peer that stops mid-frame: the line resyncs
    line.send(bytes(random.getrandbits(8) | 1 for _ in range(200)))
    bad = bytearray(frame(REQUEST, c.id, RQ["GET_STATE"], s("vm", "echo")))
    bad[8] ^= 0x40
    line.send(bytes(bad))
    half = frame(REQUEST, c.id + 1, RQ["GET_STATE"], s("vm", "echo"))
    line.send(half[:len(half) // 2])
    time.sleep(2)
    e, p, _ = c.call(RQ["GET_STATE"], s("vm", "echo"))
    check(e == 0 and num(p, "state") == RUNNING,
          "faults: after noise, a corrupt and a cut frame, the next request is answered")
    e, _, _ = c.call(0x7f)
    check(e == E["UNKNOWN_REQUEST"], "faults: an unknown request code")
    e, _, _ = c.call(RQ["GET_STATE"], b"\x20\x05\x00ab")
    check(e == E["BAD_FRAME"], "faults: a malformed payload is BAD_FRAME")
    # replays: the same signed frame under its own id is a retransmission; the
    # same sequence number under a new id is a replay
    e, _, _ = c.call(RQ["GET_STATE"], s("vm", "echo"))
    sid, skey, seq = c.session
    c.session = (sid, skey, seq - 1)
    e2, p, _ = c.call(RQ["GET_STATE"], s("vm", "echo"))
    c.session = (sid, skey, seq + 1)
    check(e == 0 and e2 == E["PERMISSION_DENIED"] and b"replayed" in (get(p, "message") or b""),
          "auth: a used sequence number is refused")

    # bench: a state query, an event
    sizes, times = [], []
    for _ in range(5):
        t0 = time.time()
        e, p, _ = c.call(RQ["GET_STATE"], s("vm", "echo"))
        times.append((time.time() - t0) * 1000)
        sizes.append(c.last_wire)
    times.sort()
    op("TurnOff", RQ["TURN_OFF"], "raw1", [TURNING_OFF, DELETE_MACHINE, TURNED_OFF])
    ev = [f for f in c.events if f[2] == 1]
    # The request carries 37 bytes of session, sequence number and MAC.
    print("BENCH mgmt_state_query_bytes %d bytes" % sizes[0])
    print("BENCH mgmt_state_query_ms %.0f ms" % times[len(times) // 2])
    print("BENCH mgmt_event_bytes %d bytes" % (ev[-1][4] if ev else 0))
    print("BENCH mgmt_startup_ms %.0f ms" % startup_ms)

    e, _, _ = c.call(RQ["DELETE_VM"], s("vm", "raw1"))
    check(e == 0, "framed: DeleteVirtualMachine (raw1)")

    with line.cond:
        line.text.clear()
    e, _, _ = c.call(RQ["GOODBYE"])
    check(e == 0 and line.wait_text("vmm> ", 30), "framed: Goodbye gives the shell back")
    print("mgmt-client: %d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
