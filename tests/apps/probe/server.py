# The probe app: GET / answers what this process could reach (probe.report()), with the
# build's report when there is one; GET /environ?pid=N tries /proc/N/environ. On SIGTERM it
# leaves a `terminated` file in its data folder before it exits, so tests see a graceful stop.
import http.server, json, os, pathlib, signal, sys, traceback, urllib.parse
import probe

here = pathlib.Path(__file__).parent
build = here / "build_report.json"

data = os.environ.get("BERTH_APP_DATA")  # unset without a sandbox (an older berth)

def on_term(*_):
    if data:
        pathlib.Path(data, "terminated").write_text("SIGTERM\n")
    sys.exit(0)

signal.signal(signal.SIGTERM, on_term)
if data:
    pathlib.Path(data, "started").write_text(str(os.getpid()) + "\n")

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        try:
            if url.path == "/environ":
                pid = int(urllib.parse.parse_qs(url.query)["pid"][0])
                out = {"pid": pid, "environ": probe.environ_of(pid)}
            else:
                out = {"app": probe.report(), "build": json.loads(build.read_text()) if build.exists() else None}
            code = 200
        except Exception:
            out, code = {"error": traceback.format_exc()}, 500
            print(out["error"], flush=True)
        body = json.dumps(out).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\n" % (self.command, self.path))
        sys.stdout.flush()

server = http.server.ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler)
print("probe listening on", os.environ["PORT"], flush=True)
server.serve_forever()
