# Sample app for berth's workspace tests, on 127.0.0.1:$PORT: serves the files of its own folder,
# each read again at every request, so an edit of the tree shows at once without a restart.
# GET / is index.html; GET /health answers "ok"; a missing file (or a path with "..") is a 404.
import http.server, os, pathlib

here = pathlib.Path(__file__).resolve().parent

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        path = self.path.split("?")[0].lstrip("/") or "index.html"
        code, data = 200, b"ok"
        if path != "health":
            try:
                if ".." in path.split("/"):
                    raise FileNotFoundError(path)
                data = (here / path).read_bytes()
            except OSError:
                code, data = 404, b"no such file\n"
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, fmt, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # python's default of 5 resets connections under bursts

Server((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler).serve_forever()
