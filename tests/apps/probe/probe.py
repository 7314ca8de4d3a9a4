# What a process berth started can reach of the host, reported by the process itself, for the
# sandbox tests (tests/integration/test_sandbox.cpp). PROBE_DATA is berth's data dir and
# PROBE_OTHER another project's name: a sandboxed process must not reach either.
import json, os

def read(path):
    """readable | missing | denied | error: ... (a folder counts as readable when listable)"""
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb") as f:
                f.read(1)
        return "readable"
    except FileNotFoundError:
        return "missing"
    except PermissionError:
        return "denied"
    except OSError as e:
        return "error: " + str(e.strerror)

def listing(folder):
    """the names in a folder, or why it cannot be listed"""
    try:
        return sorted(os.listdir(folder))
    except OSError as e:
        return "error: " + str(e.strerror)

def write(folder):
    """written | refused: <why>"""
    path = os.path.join(folder, ".probe-write-%d" % os.getpid())
    try:
        with open(path, "w") as f:
            f.write("x")
        os.remove(path)
        return "written"
    except OSError as e:
        return "refused: " + str(e.strerror)

def pids():
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())

def environ_of(pid):
    return read("/proc/%d/environ" % pid)

def other_environs(secret):
    """pids (other than our own processes) whose environment we could read and that hold `secret`"""
    found = []
    for pid in pids():
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                if secret and secret.encode() in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found

def connect_unix(path):
    """connected | missing | denied | error: ... (Caddy's admin API is a unix socket)"""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return "connected"
    except FileNotFoundError:
        return "missing"
    except PermissionError:
        return "denied"
    except OSError as e:
        return "error: " + str(e.strerror)
    finally:
        s.close()

def report():
    data = os.environ.get("PROBE_DATA", "/nonexistent")
    project = os.environ.get("BERTH_PROJECT", "")
    other = os.environ.get("PROBE_OTHER", "")
    mine = os.path.join(data, "projects", project)
    return {
        "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
        "cwd": os.getcwd(),
        "pids": pids(),
        "token": read(os.path.join(data, "token")),
        "data_dir": listing(data),
        "projects": listing(os.path.join(data, "projects")),
        "event_log": read(os.path.join(data, "events")),
        "other_secrets": read(os.path.join(data, "projects", other, ".secrets")),
        "own_secrets_file": read(os.path.join(mine, ".secrets")),
        "other_environ": other_environs(os.environ.get("PROBE_OTHER_SECRET_REVERSED", "")[::-1]),
        "write_cwd": write(os.getcwd()),
        "write_production": write(os.path.join(mine, "production")),
        "write_tmp": write(os.environ.get("TMPDIR", "/tmp")),
        "write_app_data": write(os.environ.get("BERTH_APP_DATA", "/nonexistent")),
        "caddy_admin": connect_unix(os.path.join(data, "proxy", "admin", "caddy.sock")),
        "haproxy_admin": connect_unix(os.path.join(data, "proxy", "haproxy", "admin.sock")),
        "haproxy_master": connect_unix(os.path.join(data, "proxy", "haproxy", "master.sock")),
        "tls_front_admin": connect_unix(os.path.join(data, "proxy", "front", "admin", "caddy.sock")),
        "home": os.environ.get("HOME", ""),
        "app_data": os.environ.get("BERTH_APP_DATA", ""),
    }
