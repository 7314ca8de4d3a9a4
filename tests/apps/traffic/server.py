# Test app for the zero-downtime tests, on $HOST (127.0.0.1):$PORT, HTTP/1.1 keep-alive.
#   GET /        "release <VERSION>\n" (VERSION is the file next to this one)
#   GET /health  200 "ok"; 500 when VERSION is "broken" (a release that never passes its check)
#   POST /echo   the request body
#   Every plain answer carries "X-Release: <VERSION>".
#   GET /stream  a chunk every 100 ms for 3 s (chunked), then the end
#   GET /ws      WebSocket: a text frame "release <VERSION>" first, then echoes every message
# On SIGTERM it stops accepting, ends each stream at once (cleanly: the last chunk), closes
# each WebSocket with a close frame (1001, going away), answers requests in flight with
# "Connection: close", and exits when nothing has been in flight for 150 ms (berth SIGKILLs
# after its stop grace).
import base64, contextlib, hashlib, http.server, os, pathlib, select, signal, struct, sys, threading, time

here = pathlib.Path(__file__).resolve().parent
version = (here / "VERSION").read_text().strip() if (here / "VERSION").exists() else "0"
stopping = threading.Event()
busy_lock = threading.Lock()
busy = 0  # requests, streams and websockets in progress (not idle kept-alive connections)


@contextlib.contextmanager
def in_flight():
    global busy
    with busy_lock:
        busy += 1
    try:
        yield
    finally:
        with busy_lock:
            busy -= 1


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def answer(self, code, body):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Release", version)  # which release answered (an echo says nothing)
        if stopping.is_set():
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        with in_flight():
            self.get()

    def do_POST(self):
        with in_flight():
            self.post()

    def get(self):
        path = self.path.split("?")[0]
        if path == "/health":
            self.answer(500, "broken\n") if version == "broken" else self.answer(200, "ok")
        elif path == "/stream":
            self.stream()
        elif path == "/ws":
            self.websocket()
        else:
            self.answer(200, "release %s\n" % version)

    def post(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.answer(200, body) if self.path.split("?")[0] == "/echo" else self.answer(404, "no\n")

    def stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        if stopping.is_set():
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        for i in range(30):
            if stopping.is_set():
                break
            chunk = ("release %s chunk %d\n" % (version, i)).encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
            stopping.wait(0.1)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        # Not closed here even when stopping: the connection's next request is answered with
        # "Connection: close", so a kept-alive client never sends into a closing socket.

    def websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        if "websocket" not in self.headers.get("Upgrade", "").lower() or not key:
            return self.answer(400, "not a websocket request\n")
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC11B65").encode()).digest())
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept.decode())
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        sock = self.connection
        send_frame(sock, 1, ("release %s" % version).encode())
        buf = b""
        closing_since = None
        while True:
            if stopping.is_set() and closing_since is None:
                send_frame(sock, 8, struct.pack("!H", 1001) + b"going away")
                closing_since = time.monotonic()
            if closing_since is not None and time.monotonic() - closing_since > 0.3:
                return  # the client did not answer the close: give up
            ready, _, _ = select.select([sock], [], [], 0.05)
            if not ready:
                continue
            data = sock.recv(65536)
            if not data:
                return
            buf += data
            while True:
                frame = take_frame(buf)
                if frame is None:
                    break
                opcode, payload, buf = frame
                if opcode == 8:
                    if closing_since is None:
                        send_frame(sock, 8, payload[:2])
                    return
                if opcode == 9:
                    send_frame(sock, 10, payload)
                elif opcode in (1, 2) and closing_since is None:
                    send_frame(sock, opcode, payload)

    def log_message(self, fmt, *args):
        pass


def send_frame(sock, opcode, payload):
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    sock.sendall(head + payload)


def take_frame(buf):
    """(opcode, payload, rest) for the first whole frame in buf (client frames are masked), else None."""
    if len(buf) < 2:
        return None
    opcode, n, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, at = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, at = struct.unpack("!Q", buf[2:10])[0], 10
    masked = buf[1] & 0x80
    mask = buf[at:at + 4] if masked else b"\0\0\0\0"
    at += 4 if masked else 0
    if len(buf) < at + n:
        return None
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[at:at + n]))
    return opcode, payload, buf[at + n:]


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # Python's default of 5 overflows under bursts of new connections


server = Server((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler)
print("release", version, "port", os.environ["PORT"], flush=True)


def on_term(signum, frame):
    stopping.set()
    threading.Thread(target=server.shutdown, daemon=True).start()


signal.signal(signal.SIGTERM, on_term)
server.serve_forever(poll_interval=0.05)
server.server_close()  # stop accepting; handlers in progress carry on
# Exit once nothing has been in flight for 150 ms (a request that follows a stream's end on
# its connection still gets its "Connection: close" answer), or after 2 s.
deadline, quiet_since = time.monotonic() + 2, time.monotonic()
while time.monotonic() < deadline and time.monotonic() - quiet_since < 0.15:
    with busy_lock:
        if busy:
            quiet_since = time.monotonic()
    time.sleep(0.01)
print("release", version, "stopped", flush=True)
sys.exit(0)
