# An app for berth's log tests, on 127.0.0.1:$PORT. It prints only what it is asked to, so the
# tests know every byte of its log: GET /emit?n=K prints the next K numbered lines
# "<TAG> <number, 6 digits>" (TAG from the file TAG next to it: 10 bytes a line for a 3-byte
# tag), GET /say-env?name=X prints "X is <value of the environment variable X>", /health: ok.
import http.server, os, pathlib, sys, threading, urllib.parse

here = pathlib.Path(__file__).resolve().parent
tag = (here / "TAG").read_text().strip() if (here / "TAG").exists() else "app"
count = 0
lock = threading.Lock()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        global count
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        body = "ok"
        if url.path == "/emit":
            with lock:
                n = int(q.get("n", ["1"])[0])
                out = "".join("%s %06d\n" % (tag, count + i) for i in range(n))
                count += n
                sys.stdout.write(out)
                sys.stdout.flush()
                body = str(count)
        elif url.path == "/say-env":
            name = q.get("name", [""])[0]
            with lock:
                print("%s is %s" % (name, os.environ.get(name, "")), flush=True)
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, fmt, *args):
        pass

http.server.ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler).serve_forever()
