"""COBS (consistent overhead byte stuffing), the framing of the management
line (docs/protocol.md, "Frames"), for the Python tools and tests: the
console server tools/line-relay.py and tests/e2e/mgmt_client.py."""


def cobs_encode(data):
    out, block = bytearray(), bytearray()
    for b in data:
        if b == 0:
            out += bytes([len(block) + 1]) + block
            block = bytearray()
        else:
            block.append(b)
            if len(block) == 254:
                out += b"\xff" + block
                block = bytearray()
    return bytes(out + bytes([len(block) + 1]) + block)


def cobs_decode(data):
    out, i = bytearray(), 0
    while i < len(data):
        code = data[i]
        if code == 0 or i + code > len(data):
            return None
        out += data[i + 1:i + code]
        i += code
        if code != 0xff and i < len(data):
            out.append(0)
    return bytes(out)
