# Build for the traffic app: copies server.py and VERSION into dist/ (the release).
import pathlib, shutil

src = pathlib.Path.cwd()
dist = src / "dist"
dist.mkdir(exist_ok=True)
for name in ("server.py", "VERSION"):
    shutil.copy(src / name, dist / name)
print("built release", (src / "VERSION").read_text().strip(), flush=True)
