# A tiny app berth's tests run: answers on $PORT with the content of message.txt.
# CRASH_AFTER_S=n makes it exit with code 3 after n seconds (a crash loop for the tests).
# LISTEN_AFTER_MS=n: it starts listening only n ms after it started (a slow boot), and prints
# "listening since <µs since the epoch>" when it does.
import http.server, os, pathlib, sys, threading, time

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

if os.environ.get("LISTEN_AFTER_MS"):
    time.sleep(int(os.environ["LISTEN_AFTER_MS"]) / 1000)

server = http.server.ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler)
print("listening on", os.environ["PORT"], "since", int(time.time() * 1e6), flush=True)
server.serve_forever()
