# The benchmarks' python app: http.server on $HOST:$PORT, HTTP/1.1 with keep-alive;
# 'release <X>' on /, 'ok' on /health; X from VERSION next to this file.
import http.server, os, pathlib

here = pathlib.Path(__file__).resolve().parent
body = ('release ' + (here / 'VERSION').read_text().strip() + '\n').encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True  # headers and body are two writes

    def do_GET(self):
        data = b'ok' if self.path.split('?')[0] == '/health' else body
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


addr = (os.environ.get('HOST', '127.0.0.1'), int(os.environ['PORT']))
http.server.ThreadingHTTPServer(addr, Handler).serve_forever()
