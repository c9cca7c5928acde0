"""A minimal authoritative DNS responder over UDP for the tests: A, AAAA,
SRV and CNAME records from a dict the test changes while it runs, NXDOMAIN
for names it does not hold, no answer at all for names marked silent, a
set error code for the (name, type) pairs in errors, and a CNAME alone
(without its target's records) for the names in flat.
Standard library only (RFC 1035 wire format, no compression in
questions; answers point back at the question name)."""

import ipaddress
import socket
import struct
import threading

A, AAAA, SRV, CNAME = 1, 28, 33, 5


def _name(data, off):
    labels = []
    while True:
        n = data[off]
        off += 1
        if n == 0:
            return ".".join(labels).lower(), off
        if n & 0xC0:
            raise ValueError("compressed question")
        labels.append(data[off:off + n].decode("ascii", "replace"))
        off += n


def _encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


class DnsStub:
    """records: {name: [(type, value, ttl), ...]}; value is an address
    text for A/AAAA, (priority, weight, port, target) for SRV, the target
    name for CNAME (answered with the target's records of the type asked
    for after it, as one response)."""

    def __init__(self, host="127.0.0.1", port=0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()
        self.records = {}
        self.silent = set()
        self.flat = set()
        self.errors = {}
        self.queries = []
        self.lock = threading.Lock()
        self._stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def set(self, name, *records):
        with self.lock:
            self.records[name.lower()] = list(records)

    def drop(self, name):
        with self.lock:
            self.records.pop(name.lower(), None)

    def count(self, name, qtype=None):
        with self.lock:
            return sum(1 for n, t in self.queries if n == name.lower() and (qtype is None or t == qtype))

    def stop(self):
        self._stop = True
        try:
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"", (self.host, self.port))
        except OSError:
            pass
        self.thread.join(2)
        self.sock.close()

    def _loop(self):
        while not self._stop:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            if self._stop:
                return
            try:
                reply = self._answer(data)
            except (ValueError, IndexError, struct.error):
                continue
            if reply:
                self.sock.sendto(reply, peer)

    def _answer(self, data):
        ident, flags, qd = struct.unpack("!HHH", data[:6])
        if qd != 1:
            return None
        name, off = _name(data, 12)
        qtype, qclass = struct.unpack("!HH", data[off:off + 4])
        question = data[12:off + 4]
        with self.lock:
            self.queries.append((name, qtype))
            if name in self.silent:
                return None
            recs = self.records.get(name)
            rcode = self.errors.get((name, qtype))
            flat = name in self.flat
        rd = flags & 0x0100
        if rcode is not None:
            return struct.pack("!HHHHHH", ident, 0x8400 | rd | rcode, 1, 0, 0, 0) + question
        if recs is None:
            return struct.pack("!HHHHHH", ident, 0x8400 | rd | 3, 1, 0, 0, 0) + question
        answers = b""
        count = 0
        owner = b"\xc0\x0c"
        cname = [r for r in recs if r[0] == CNAME and qtype != CNAME]
        if cname:
            _, target, ttl = cname[0]
            rdata = _encode_name(target)
            answers += owner + struct.pack("!HHIH", CNAME, 1, ttl, len(rdata)) + rdata
            count += 1
            owner = rdata
            with self.lock:
                recs = [] if flat else self.records.get(target.lower(), [])
        for rtype, value, ttl in recs:
            if rtype != qtype:
                continue
            if rtype == A:
                rdata = ipaddress.IPv4Address(value).packed
            elif rtype == AAAA:
                rdata = ipaddress.IPv6Address(value).packed
            else:
                prio, weight, port, target = value
                rdata = struct.pack("!HHH", prio, weight, port) + _encode_name(target)
            answers += owner + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata
            count += 1
        return struct.pack("!HHHHHH", ident, 0x8400 | rd, 1, count, 0, 0) + question + answers
