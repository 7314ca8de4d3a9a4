# Build for the canary app: copies server.py, VERSION and MODE into dist/ (the release).
import pathlib, shutil

src = pathlib.Path.cwd()
dist = src / "dist"
dist.mkdir(exist_ok=True)
for name in ("server.py", "VERSION", "MODE"):
    shutil.copy(src / name, dist / name)
print("built release", (src / "VERSION").read_text().strip(), (src / "MODE").read_text().strip(), flush=True)
