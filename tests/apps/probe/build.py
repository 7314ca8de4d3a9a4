# The probe's build: what the build itself could reach goes into dist/build_report.json, and
# dist/ gets the server.
import json, pathlib, shutil, probe

dist = pathlib.Path.cwd() / "dist"
dist.mkdir(exist_ok=True)
(dist / "build_report.json").write_text(json.dumps(probe.report()))
for f in ("server.py", "probe.py"):
    shutil.copy(f, dist / f)
print("probe build done", flush=True)
