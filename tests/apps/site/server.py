# Sample server for berth's deploy tests, on 127.0.0.1:$PORT. Serves index.html next to it
# (or "preview <VERSION>" when run from the source, as a preview) at / and "ok" at /health.
# `mode` next to it: normal | crash (exit 3 at once) | never-healthy (never listens)
# | health-500 (/ works, /health answers 500) | dies-soon (serves and passes its health checks,
# then exits with code 4 about 1 s after it started).
# GET /env/<NAME> answers {"name", "set", "sha256"} for the environment variable NAME: whether
# it is set and the SHA-256 (hex) of its value, never the value itself (the secrets tests).
import http.server, os, pathlib, sys, threading, time

here = pathlib.Path(__file__).resolve().parent
def opt(name, default):
    p = here / name
    return p.read_text().strip() if p.exists() else default

mode = opt("mode", "normal")
text = opt("index.html", "preview " + opt("VERSION", "0")) + "\n"
print("release", os.environ.get("BERTH_RELEASE", "-"), "mode", mode, "port", os.environ.get("PORT"), flush=True)
if mode == "crash":
    print("crashing on purpose", file=sys.stderr, flush=True)
    sys.exit(3)
if mode == "never-healthy":
    while True:
        time.sleep(60)
if mode == "dies-soon":
    def die():
        print("dying on purpose", file=sys.stderr, flush=True)
        os._exit(4)
    threading.Timer(1.0, die).start()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        code, body = 200, text
        path = self.path.split("?")[0]
        if path == "/health":
            code, body = (500, "unhealthy\n") if mode == "health-500" else (200, "ok")
        elif path.startswith("/env/"):
            import hashlib, json  # here, not at the top: the app's start-up time stays as it was
            value = os.environ.get(path[len("/env/"):])
            body = json.dumps({"name": path[len("/env/"):], "set": value is not None,
                               "sha256": hashlib.sha256(value.encode()).hexdigest() if value is not None else None})
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, fmt, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    # Python's default accept queue holds 5 connections: under ctest -j2 a burst of new client
    # connections (each one a new upstream connection through the proxy) overflowed it and some
    # were reset. Real servers listen with 128 or more (Node 511).
    request_queue_size = 128

Server((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler).serve_forever()
