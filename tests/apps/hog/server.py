# A greedy app for berth's limits tests, on 127.0.0.1:$PORT. GET /health answers "ok";
# GET /alloc?mb=N allocates N MiB (really touched) and holds it, then answers "allocated N";
# GET /fork?n=N forks up to N children that sleep 30 s and exit, stopping at the first fork
# that fails, and answers {"forked": k, "error": "<why the next fork failed>" | null};
# GET /burn?ms=N spins the CPU for N ms. Run as `python3 server.py alloc N` it allocates N MiB
# and exits 0 (a build that needs too much memory).
import http.server, json, os, sys, time

if len(sys.argv) == 3 and sys.argv[1] == "alloc":
    held = [b"\x01" * (1 << 20) for _ in range(int(sys.argv[2]))]
    print("allocated", len(held), "MiB", flush=True)
    sys.exit(0)

held = []

def query(path, name, default):
    for part in path.partition("?")[2].split("&"):
        key, _, value = part.partition("=")
        if key == name:
            return int(value)
    return default

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        path = self.path.split("?")[0]
        body = "hog\n"
        if path == "/health":
            body = "ok"
        elif path == "/alloc":
            mb = query(self.path, "mb", 1)
            for _ in range(mb):
                held.append(b"\x01" * (1 << 20))
            body = "allocated %d\n" % mb
        elif path == "/fork":
            forked, error = 0, None
            for _ in range(query(self.path, "n", 1)):
                try:
                    pid = os.fork()
                except OSError as e:
                    error = str(e)
                    break
                if pid == 0:
                    time.sleep(30)
                    os._exit(0)
                forked += 1
            body = json.dumps({"forked": forked, "error": error})
        elif path == "/burn":
            until = time.monotonic() + query(self.path, "ms", 100) / 1000
            while time.monotonic() < until:
                pass
            body = "burnt\n"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, fmt, *args):
        pass

print("hog on port", os.environ.get("PORT"), flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
