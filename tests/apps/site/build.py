# Sample build for berth's deploy tests. Reads VERSION, MODE and BUILD_SLEEP (seconds) from
# the source root; MODE build-fail fails the build, otherwise dist/ gets the site and server.
import os, pathlib, shutil, sys, time

src = pathlib.Path.cwd()
def opt(name, default=""):
    p = src / name
    return p.read_text().strip() if p.exists() else default

version, mode = opt("VERSION", "0"), opt("MODE", "normal")
print("building release", version, "mode", mode, flush=True)
time.sleep(float(opt("BUILD_SLEEP", "0") or 0))
if mode == "build-fail":
    print("build failed: MODE=build-fail", file=sys.stderr, flush=True)
    sys.exit(2)
dist = src / "dist"
dist.mkdir(exist_ok=True)
(dist / "index.html").write_text("release %s\n" % version)
(dist / "mode").write_text(mode + "\n")
shutil.copy(src / "server.py", dist / "server.py")
print("built dist/ for release", version, flush=True)
