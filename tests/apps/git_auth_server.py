# A git smart-HTTP server that needs HTTP basic auth, for berth's git credential tests:
# `git http-backend` (CGI) behind a check of the Authorization header, on 127.0.0.1:PORT.
# Usage: python3 git_auth_server.py PORT ROOT PASSWORD
# Any user name is accepted with PASSWORD (as GitHub and GitLab accept a token); anything
# else is 401 with WWW-Authenticate, so a clone without the credential fails. Each request is
# logged to stdout as "<method> <path> <status> user=<name>" (never the password).
import base64, http.server, os, subprocess, sys

port, root, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]

class Handler(http.server.BaseHTTPRequestHandler):
    def user(self):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None
        try:
            user, _, given = base64.b64decode(auth[6:]).decode().partition(":")
        except Exception:
            return None
        return user if given == password else None

    def serve(self):
        path, _, query = self.path.partition("?")
        user = self.user()
        if user is None:
            print(self.command, path, 401, "user=-", flush=True)
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {"GIT_PROJECT_ROOT": root, "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
               "QUERY_STRING": query, "REQUEST_METHOD": self.command,
               "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
               "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
               "REMOTE_USER": user, "REMOTE_ADDR": "127.0.0.1", "HOME": root,
               "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1"}
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        sep = b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n"
        head, _, payload = out.partition(sep)
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        print(self.command, path, status, "user=" + user, flush=True)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = serve

    def log_message(self, fmt, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
