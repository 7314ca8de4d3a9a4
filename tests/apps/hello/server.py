# A tiny app berth's tests run: answers on $PORT with the content of message.txt.
# CRASH_AFTER_S=n makes it exit with code 3 after n seconds (a crash loop for the tests).
import http.server, os, pathlib, sys, threading

here = pathlib.Path(__file__).parent
message = (here / "message.txt").read_text().strip() if (here / "message.txt").exists() else "hello"

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (message + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\n" % (self.command, self.path))
        sys.stdout.flush()

if os.environ.get("CRASH_AFTER_S"):
    threading.Timer(float(os.environ["CRASH_AFTER_S"]), lambda: os._exit(3)).start()

server = http.server.ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler)
print("listening on", os.environ["PORT"], flush=True)
server.serve_forever()
