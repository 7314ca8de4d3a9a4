# Test app for the canary tests (tests/integration/test_canary.cpp, bench/bench_canary.cpp), on
# $HOST (127.0.0.1):$PORT, HTTP/1.1 keep-alive. VERSION and MODE are the files next to this one.
#   GET /        200 "release <VERSION> <MODE>\n", except:
#                  MODE fail20   every 5th GET / (counted, not random) answers 500
#                  MODE slow300  every GET / sleeps 300 ms before its answer
#   GET /health  200 "ok" at once, whatever the MODE (the candidate passes its health check)
#   anything else 404
# On SIGTERM it stops accepting, answers the requests in flight with "Connection: close", and
# exits once nothing has been in flight for 150 ms (or after 2 s).
import contextlib, http.server, os, pathlib, signal, sys, threading, time

here = pathlib.Path(__file__).resolve().parent


def setting(name, default):
    path = here / name
    return path.read_text().strip() if path.exists() else default


version = setting("VERSION", "0")
mode = setting("MODE", "good")
if mode not in ("good", "fail20", "slow300"):
    sys.exit("MODE must be good, fail20 or slow300, not %r" % mode)

stopping = threading.Event()
lock = threading.Lock()
busy = 0   # requests in progress (not idle kept-alive connections)
served = 0  # GET / so far (fail20 fails every 5th)


@contextlib.contextmanager
def in_flight():
    global busy
    with lock:
        busy += 1
    try:
        yield
    finally:
        with lock:
            busy -= 1


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def answer(self, code, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        if stopping.is_set():
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        global served
        with in_flight():
            path = self.path.split("?")[0]
            if path == "/health":
                return self.answer(200, "ok")
            if path != "/":
                return self.answer(404, "no\n")
            with lock:
                served += 1
                n = served
            if mode == "fail20" and n % 5 == 0:
                return self.answer(500, "release %s %s: request %d fails on purpose\n" % (version, mode, n))
            if mode == "slow300":
                time.sleep(0.3)
            self.answer(200, "release %s %s\n" % (version, mode))

    def log_message(self, fmt, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # Python's default of 5 overflows under bursts of new connections


server = Server((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler)
print("release", version, mode, "port", os.environ["PORT"], flush=True)


def on_term(signum, frame):
    stopping.set()
    threading.Thread(target=server.shutdown, daemon=True).start()


signal.signal(signal.SIGTERM, on_term)
server.serve_forever(poll_interval=0.05)
server.server_close()  # stop accepting; handlers in progress carry on
deadline, quiet_since = time.monotonic() + 2, time.monotonic()
while time.monotonic() < deadline and time.monotonic() - quiet_since < 0.15:
    with lock:
        if busy:
            quiet_since = time.monotonic()
    time.sleep(0.01)
print("release", version, mode, "stopped", flush=True)
sys.exit(0)
