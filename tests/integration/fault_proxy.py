#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 reverse proxy for the tests: it sits on a loopback port between an S3
client (libcurl, keep-alive) and the S3 server and breaks a fraction of the requests on purpose.

Each client connection gets a thread and an upstream connection of its own (reopened when the
server closed it); requests on it are read one after the other (body by Content-Length or chunked;
`Expect: 100-continue` is forwarded, the server's 100 relayed) and forwarded byte-exact, Host and
path untouched, since they are SigV4-signed. Responses are relayed as they came (no body for HEAD,
1xx, 204, 304; else Content-Length, chunked or up to the close), streamed in 1 MiB pieces.

With probability --rate (seeded RNG) a request gets ONE fault, chosen uniformly from --faults:
  reset_before   the request head is read, then the client connection is reset (RST), nothing
                 forwarded
  reset_body     half of the body (at most what arrived) is read, then RST; without a body as
                 reset_before
  reset_after    forwarded and answered by the server, then RST without a byte of the answer: the
                 operation took effect, the client cannot know
  status_5xx     500 or 503 without forwarding: half with an S3 XML error body (InternalError,
                 ServiceUnavailable), half with an empty one; HEAD gets no body. The connection
                 stays open (unless the client still waits for 100-continue)
  truncate       forwarded; status and headers as the server sent them, half of the body (chunked:
                 no terminating chunk), then the connection is closed. Only for bodies of 2+ bytes
                 with a length or chunked framing, else no fault
  garble         forwarded; an XML body (Content-Type holds "xml") is replaced by one of the same
                 length that is not well-formed ('<<<<' in the middle), framing intact. Object
                 data is never garbled: a client cannot detect that. Else no fault
  stall          forwarded after --stall-seconds (default 3)
The default set is all but stall. --fail-key SUBSTR (repeatable) answers every request whose
percent-decoded path holds SUBSTR with 500 InternalError, whatever the rate: a key the server
refuses forever.

Control, on the same port and never forwarded:
  GET /__fault__/config?rate=0.3&faults=reset_before,truncate   change any of rate, faults (comma
      list, "all", "none" or empty), seed, stall_seconds, fail_key (adds; repeatable),
      clear_fail_keys=1 (first); answers the current configuration as JSON
  GET /__fault__/stats      JSON: requests, connections, injected faults by kind (with fail_key)
--log FILE gets one line per injected fault: time, kind, method, path (first 100 characters).

Usage:
  fault_proxy.py --upstream 127.0.0.1:PORT [--listen-port 0] [--port-file FILE] [--rate 0.2]
                 [--faults LIST] [--seed N] [--fail-key SUBSTR ...] [--stall-seconds S] [--log FILE]
      listens on 127.0.0.1 (port 0: any free one), prints the port and writes it to --port-file
      (atomically) once listening; exits on SIGTERM or SIGINT
  fault_proxy.py ctl (--port P | --port-file FILE) config [rate=0.5] [faults=a,b] [fail_key=x] ...
  fault_proxy.py ctl (--port P | --port-file FILE) stats
"""
import argparse
import http.client
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

FAULTS = ("reset_before", "reset_body", "reset_after", "status_5xx", "truncate", "garble", "stall")
DEFAULT_FAULTS = tuple(f for f in FAULTS if f != "stall")
CONTROL_PREFIX = "/__fault__/"
PIECE = 1 << 20          # bytes per recv/send when streaming a body
SMALL_BODY = 1 << 20     # request bodies up to this size are read whole first (and can be replayed)
MAX_HEAD = 256 << 10     # largest request or response head accepted
ERROR_XML = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
             '<Message>injected</Message></Error>')
REASONS = {500: ("Internal Server Error", "InternalError"),
           503: ("Service Unavailable", "ServiceUnavailable")}


class ProtocolError(Exception):
    pass


class Closed(Exception):
    """The peer closed the connection in the middle of a message."""


class Reader:
    """Buffered reads from a socket: heads and lines through a buffer, bodies streamed past it."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self):
        data = self.sock.recv(256 << 10)
        if not data:
            return False
        self.buf += data
        return True

    def read_head(self):
        """The bytes up to and including the empty line; None at a clean close before any byte."""
        start = 0
        while True:
            end = self.buf.find(b"\r\n\r\n", start)
            if end >= 0:
                head = bytes(self.buf[:end + 4])
                del self.buf[:end + 4]
                return head
            if len(self.buf) > MAX_HEAD:
                raise ProtocolError("head too large")
            start = max(0, len(self.buf) - 3)
            if not self._fill():
                if self.buf:
                    raise Closed("closed in the middle of a head")
                return None

    def read_line(self):
        start = 0
        while True:
            end = self.buf.find(b"\r\n", start)
            if end >= 0:
                line = bytes(self.buf[:end + 2])
                del self.buf[:end + 2]
                return line
            if len(self.buf) > MAX_HEAD:
                raise ProtocolError("line too long")
            start = max(0, len(self.buf) - 1)
            if not self._fill():
                raise Closed("closed in the middle of a line")

    def pieces(self, n):
        """Yields exactly n bytes, in pieces of at most PIECE."""
        if self.buf:
            take = min(n, len(self.buf))
            piece = bytes(self.buf[:take])
            del self.buf[:take]
            n -= take
            yield piece
        while n > 0:
            piece = self.sock.recv(min(n, PIECE))
            if not piece:
                raise Closed(f"closed with {n} bytes of the body missing")
            n -= len(piece)
            yield piece

    def read_exact(self, n):
        return b"".join(self.pieces(n))

    def pieces_to_close(self):
        if self.buf:
            piece = bytes(self.buf)
            self.buf.clear()
            yield piece
        while piece := self.sock.recv(PIECE):
            yield piece

    def available(self, limit, wait):
        """Up to limit bytes of what is buffered or arrives within wait seconds."""
        if not self.buf and select.select([self.sock], [], [], wait)[0]:
            self._fill()
        take = min(limit, len(self.buf))
        data = bytes(self.buf[:take])
        del self.buf[:take]
        return data


def parse_headers(lines):
    headers = {}
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ProtocolError(f"bad header line {line[:60]!r}")
        key = name.strip().lower().decode("latin-1")
        value = value.strip().decode("latin-1")
        headers[key] = headers[key] + ", " + value if key in headers else value
    return headers


class Message:
    """A request or response head: first line split in three, headers by lower-case name."""

    def __init__(self, head):
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ", 2)
        if len(parts) < 2:
            raise ProtocolError(f"bad first line {lines[0][:60]!r}")
        self.head = head
        self.first = parts + [""] * (3 - len(parts))
        self.headers = parse_headers(lines[1:])

    def header(self, name):
        return self.headers.get(name, "")

    def chunked(self):
        return "chunked" in self.header("transfer-encoding").lower()

    def content_length(self):
        value = self.header("content-length")
        if not value:
            return None
        try:
            return int(value.split(",")[0])
        except ValueError:
            raise ProtocolError(f"bad Content-Length {value!r}") from None

    def wants_close(self):
        tokens = {t.strip().lower() for t in self.header("connection").split(",")}
        if self.first[0].startswith("HTTP/"):   # a response: HTTP/1.x STATUS REASON
            version = self.first[0]
        else:                                   # a request: METHOD TARGET HTTP/1.x
            version = self.first[2]
        if version == "HTTP/1.0":
            return "keep-alive" not in tokens
        return "close" in tokens


def chunked_pieces(reader, data_end=None):
    """Yields the raw bytes of a chunked body (sizes, data, last chunk, trailers). data_end, a list,
    gets the number of bytes before the last chunk."""
    total = 0
    while True:
        line = reader.read_line()
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size line {line[:40]!r}") from None
        if size == 0:
            if data_end is not None:
                data_end.append(total)
            yield line
            while True:
                trailer = reader.read_line()
                yield trailer
                if trailer == b"\r\n":
                    return
        total += len(line) + size + 2
        yield line
        yield from reader.pieces(size + 2)


def dechunk(raw):
    out, pos = bytearray(), 0
    while True:
        eol = raw.index(b"\r\n", pos)
        size = int(raw[pos:eol].split(b";")[0].strip(), 16)
        if size == 0:
            return bytes(out)
        out += raw[eol + 2:eol + 2 + size]
        pos = eol + 2 + size + 2


def garbled(body):
    """Same length, not well-formed XML: '<<<<' in the middle of what follows the declaration."""
    out = bytearray(body)
    decl = out.find(b"?>") + 2 if out.startswith(b"<?") else 0
    if decl >= len(out):
        decl = 0
    span = min(4, len(out) - decl)
    start = decl + (len(out) - decl - span) // 2
    out[start:start + span] = b"<" * span
    return bytes(out)


def reset(sock):
    """Close with RST: SO_LINGER on with a zero timeout."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def close_gently(sock):
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    sock.close()


class Proxy:
    def __init__(self, args):
        host, _, port = args.upstream.rpartition(":")
        self.upstream = (host or "127.0.0.1", int(port))
        self.lock = threading.Lock()
        self.rate = args.rate
        self.faults = list(args.faults)
        self.fail_keys = list(args.fail_key or [])
        self.stall_seconds = args.stall_seconds
        self.seed = args.seed
        self.rng = random.Random(args.seed)
        self.requests = 0
        self.connections = 0
        self.counts = {k: 0 for k in FAULTS + ("fail_key",)}
        self.log = open(args.log, "a") if args.log else None

    # --- configuration and statistics --------------------------------------------------------

    def config_json(self):
        with self.lock:
            return {"upstream": "%s:%d" % self.upstream, "rate": self.rate, "faults": self.faults,
                    "fail_keys": self.fail_keys, "stall_seconds": self.stall_seconds,
                    "seed": self.seed}

    def stats_json(self):
        with self.lock:
            return {"requests": self.requests, "connections": self.connections,
                    "injected": sum(self.counts.values()), "faults": dict(self.counts)}

    def configure(self, query):
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        with self.lock:
            if "rate" in params:
                rate = float(params["rate"][-1])
                if not 0 <= rate <= 1:
                    raise ValueError("rate must be within [0, 1]")
                self.rate = rate
            if "faults" in params:
                self.faults = parse_faults(params["faults"][-1])
            if "seed" in params:
                self.seed = int(params["seed"][-1])
                self.rng = random.Random(self.seed)
            if "stall_seconds" in params:
                self.stall_seconds = float(params["stall_seconds"][-1])
            if params.get("clear_fail_keys", ["0"])[-1] not in ("", "0"):
                self.fail_keys = []
            for key in params.get("fail_key", []):
                if key and key not in self.fail_keys:
                    self.fail_keys.append(key)

    def choose(self, path):
        """The fault for a request: 'fail_key', one of FAULTS, or None."""
        with self.lock:
            self.requests += 1
            if any(key in path for key in self.fail_keys):
                return "fail_key"
            if self.faults and self.rate > 0 and self.rng.random() < self.rate:
                return self.rng.choice(self.faults)
            return None

    def coin(self):
        with self.lock:
            return self.rng.random() < 0.5

    def injected(self, kind, request):
        with self.lock:
            self.counts[kind] += 1
            if self.log:
                now = time.time()
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
                self.log.write(f"{stamp} {kind} {request.first[0]} {request.first[1][:100]}\n")
                self.log.flush()

    # --- one client connection ---------------------------------------------------------------

    def serve(self, client):
        with self.lock:
            self.connections += 1
        conn = Connection(self, client)
        try:
            conn.run()
        except (OSError, Closed, ProtocolError):
            pass
        finally:
            conn.close()


class Connection:
    def __init__(self, proxy, client):
        self.proxy = proxy
        self.client = client
        self.cin = Reader(client)
        self.up = None
        self.uin = None
        self.up_used = False   # the upstream connection carried a request before

    def close(self):
        self.close_upstream()
        try:
            self.client.close()
        except OSError:
            pass

    def close_upstream(self):
        if self.up is not None:
            try:
                self.up.close()
            except OSError:
                pass
        self.up = self.uin = None

    def upstream(self):
        """The upstream connection; a new one if there is none or the server closed it."""
        if self.up is not None and (self.uin.buf or select.select([self.up], [], [], 0)[0]):
            self.close_upstream()   # readable while idle: closed by the server (or garbage)
        if self.up is None:
            self.up = socket.create_connection(self.proxy.upstream, timeout=None)
            self.up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.uin = Reader(self.up)
            self.up_used = False
        return self.up

    def run(self):
        self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            head = self.cin.read_head()
            if head is None:
                return
            try:
                request = Message(head)
            except ProtocolError:
                self.client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                    b"Connection: close\r\n\r\n")
                return
            if not self.handle(request):
                return

    def request_body(self, request):
        """('none' | 'length' | 'chunked', length)."""
        if request.chunked():
            return "chunked", None
        length = request.content_length()
        return ("length", length) if length else ("none", 0)

    def handle(self, request):
        """One request; False when the client connection is done."""
        method, target = request.first[0], request.first[1]
        path = urllib.parse.urlsplit(target).path if "://" in target else target.split("?", 1)[0]
        path = urllib.parse.unquote(path)
        if path.startswith(CONTROL_PREFIX):
            return self.control(request, path)
        kind = self.proxy.choose(path)
        framing, length = self.request_body(request)
        expect = "100-continue" in request.header("expect").lower()

        if kind == "reset_before" or (kind == "reset_body" and framing == "none"):
            self.proxy.injected(kind, request)
            reset(self.client)
            return False
        if kind == "reset_body":
            if expect:
                self.client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            limit = length // 2 if framing == "length" else 64 << 10
            deadline = time.monotonic() + 2
            got = 0
            while got < limit and time.monotonic() < deadline:
                piece = self.cin.available(limit - got, max(0.0, deadline - time.monotonic()))
                if not piece:
                    break
                got += len(piece)
            self.proxy.injected(kind, request)
            reset(self.client)
            return False
        if kind in ("status_5xx", "fail_key"):
            return self.answer_5xx(request, kind, framing, length, expect)
        if kind == "stall":
            self.proxy.injected(kind, request)
            time.sleep(self.proxy.stall_seconds)
        return self.forward(request, kind, framing, length, expect)

    def answer_5xx(self, request, kind, framing, length, expect):
        close = request.wants_close()
        if framing != "none":
            if expect and not self.cin.buf:
                close = True    # the client waits for a 100 that will not come: it won't send
            else:               # the body was sent: read it, so the connection stays usable
                self.drain_request_body(framing, length)
        if kind == "fail_key":
            status, with_body = 500, True
        else:
            status, with_body = (500 if self.proxy.coin() else 503), self.proxy.coin()
        reason, code = REASONS[status]
        with_body = with_body and request.first[0] != "HEAD"
        body = ERROR_XML.format(code=code).encode() if with_body else b""
        head = (f"HTTP/1.1 {status} {reason}\r\n"
                f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime())}\r\n"
                f"x-amz-request-id: fault-proxy\r\n"
                + ("Content-Type: application/xml\r\n" if body else "")
                + f"Content-Length: {len(body)}\r\n"
                + ("Connection: close\r\n" if close else "") + "\r\n").encode()
        self.proxy.injected(kind, request)
        self.client.sendall(head + body)
        if close:
            close_gently(self.client)
            return False
        return True

    def drain_request_body(self, framing, length):
        if framing == "length":
            for _ in self.cin.pieces(length):
                pass
        elif framing == "chunked":
            for _ in chunked_pieces(self.cin):
                pass

    def send_request(self, request, framing, length, expect):
        """Forwards the request. Returns a response head the server sent before the body was
        complete (a final answer to Expect: 100-continue), or None."""
        if framing == "none" or (framing == "length" and length <= SMALL_BODY and not expect):
            body = self.cin.read_exact(length) if framing == "length" else b""
            for attempt in (1, 2):
                up = self.upstream()
                reused = self.up_used
                try:
                    up.sendall(request.head + body)
                except (ConnectionResetError, BrokenPipeError):
                    self.close_upstream()
                    if reused and attempt == 1:
                        continue
                    raise
                self.up_used = True
                if not reused or attempt == 2:
                    return None
                # A reused connection the server closed in the meantime answers nothing: the
                # request is whole in memory, so it is sent once more on a new connection.
                try:
                    if self.uin._fill():
                        return None
                except ConnectionResetError:
                    pass
                self.close_upstream()
            return None
        up = self.upstream()
        up.sendall(request.head)
        self.up_used = True
        if expect and not self.cin.buf:
            ready = select.select([self.client, up], [], [])[0]
            if up in ready:
                head = self.uin.read_head()
                if head is None:
                    raise Closed("upstream closed")
                answer = Message(head)
                if not answer.first[1].startswith("1"):
                    return answer
                self.client.sendall(head)   # 100 Continue
        if framing == "length":
            for piece in self.cin.pieces(length):
                up.sendall(piece)
        else:
            for piece in chunked_pieces(self.cin):
                up.sendall(piece)
        return None

    def forward(self, request, kind, framing, length, expect):
        close = request.wants_close()
        try:
            response = self.send_request(request, framing, length, expect)
        except (OSError, Closed):
            reset(self.client)   # upstream unreachable or gone while sending: a transport error
            return False
        if response is not None:
            close = True   # answered before the body: its framing on the client side is unknown
        try:
            while response is None or (response.first[1].startswith("1") and response.first[1] != "101"):
                if response is not None:
                    self.client.sendall(response.head)   # interim (100 Continue)
                head = self.uin.read_head()
                if head is None:
                    raise Closed("upstream closed before answering")
                response = Message(head)
        except (OSError, Closed):
            reset(self.client)
            return False
        status = response.first[1]
        method = request.first[0]
        if method == "HEAD" or status in ("204", "304") or status.startswith("1"):
            rframing, rlength = "none", 0
        elif response.chunked():
            rframing, rlength = "chunked", None
        elif response.content_length() is not None:
            rframing, rlength = "length", response.content_length()
        else:
            rframing, rlength = "close", None
        if response.wants_close() or rframing == "close":
            close = True

        if kind in ("reset_after", "truncate", "garble"):
            return self.relay_faulted(request, kind, response, rframing, rlength, close)
        self.client.sendall(response.head)
        if rframing == "length":
            for piece in self.uin.pieces(rlength):
                self.client.sendall(piece)
        elif rframing == "chunked":
            for piece in chunked_pieces(self.uin):
                self.client.sendall(piece)
        elif rframing == "close":
            for piece in self.uin.pieces_to_close():
                self.client.sendall(piece)
        if close:
            self.close_upstream()
            close_gently(self.client)
            return False
        return True

    def relay_faulted(self, request, kind, response, rframing, rlength, close):
        data_end = []
        if rframing == "length":
            raw = self.uin.read_exact(rlength)
        elif rframing == "chunked":
            raw = b"".join(chunked_pieces(self.uin, data_end))
        elif rframing == "close":
            raw = b"".join(self.uin.pieces_to_close())
        else:
            raw = b""
        body = dechunk(raw) if rframing == "chunked" else raw
        if kind == "reset_after":
            self.proxy.injected(kind, request)
            reset(self.client)
            return False
        if kind == "truncate" and len(body) >= 2 and rframing in ("length", "chunked"):
            cut = len(raw) // 2
            if rframing == "chunked":
                cut = min(cut, data_end[0] - 1)
            self.proxy.injected(kind, request)
            self.client.sendall(response.head + raw[:cut])
            close_gently(self.client)
            return False
        if kind == "garble" and body and "xml" in response.header("content-type").lower():
            bad = garbled(body)
            if rframing == "chunked":   # one chunk, then the original last chunk and trailers
                raw = b"%x\r\n" % len(bad) + bad + b"\r\n" + raw[data_end[0]:]
            else:
                raw = bad
            self.proxy.injected(kind, request)
        self.client.sendall(response.head + raw)
        if close:
            self.close_upstream()
            close_gently(self.client)
            return False
        return True

    def control(self, request, path):
        """GET /__fault__/config?... and /__fault__/stats, answered here."""
        framing, length = self.request_body(request)
        self.drain_request_body(framing, length)
        query = urllib.parse.urlsplit(request.first[1]).query
        status = "200 OK"
        try:
            if path == CONTROL_PREFIX + "config":
                self.proxy.configure(query)
                answer = self.proxy.config_json()
            elif path == CONTROL_PREFIX + "stats":
                answer = self.proxy.stats_json()
            else:
                status, answer = "404 Not Found", {"error": f"no such control endpoint {path}"}
        except ValueError as e:
            status, answer = "400 Bad Request", {"error": str(e)}
        body = (json.dumps(answer, indent=1) + "\n").encode()
        self.client.sendall(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                            f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        return not request.wants_close()


def parse_faults(text):
    text = text.strip()
    if text in ("", "none"):
        return []
    if text == "all":
        return list(FAULTS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault {', '.join(unknown)} (known: {', '.join(FAULTS)})")
    return names


def write_port_file(path, port):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.rename(tmp, path)


def serve(argv):
    parser = argparse.ArgumentParser(prog="fault_proxy.py", description="fault-injecting HTTP proxy")
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the S3 server")
    parser.add_argument("--listen-port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--faults", default=",".join(DEFAULT_FAULTS))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--fail-key", action="append")
    parser.add_argument("--stall-seconds", type=float, default=3.0)
    parser.add_argument("--log")
    args = parser.parse_args(argv)
    try:
        args.faults = parse_faults(args.faults)
    except ValueError as e:
        parser.error(str(e))
    if args.seed is None:
        args.seed = random.randrange(1 << 31)
    proxy = Proxy(args)

    def stop(signum, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.listen_port))
    listener.listen(128)
    port = listener.getsockname()[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    print(port, flush=True)
    try:
        while True:
            client, _ = listener.accept()
            threading.Thread(target=proxy.serve, args=(client,), daemon=True).start()
    except SystemExit:
        pass
    finally:
        listener.close()
    return 0


def ctl(argv):
    parser = argparse.ArgumentParser(prog="fault_proxy.py ctl")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int)
    where.add_argument("--port-file")
    parser.add_argument("what", choices=("config", "stats"))
    parser.add_argument("params", nargs="*", help="NAME=VALUE for config")
    args = parser.parse_args(argv)
    port = args.port
    if port is None:
        with open(args.port_file) as f:
            port = int(f.read())
    pairs = []
    for p in args.params:
        name, sep, value = p.partition("=")
        if not sep:
            parser.error(f"expected NAME=VALUE, got {p!r}")
        pairs.append((name, value))
    target = CONTROL_PREFIX + args.what + ("?" + urllib.parse.urlencode(pairs) if pairs else "")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", target)
    response = conn.getresponse()
    sys.stdout.write(response.read().decode())
    return 0 if response.status == 200 else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "ctl":
        sys.exit(ctl(sys.argv[2:]))
    sys.exit(serve(sys.argv[1:]))
