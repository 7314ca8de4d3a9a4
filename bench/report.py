#!/usr/bin/env python3
"""Merges the benches' JSON rows (the shared format of bench/README.md) into one markdown table.

Usage: report.py --raw DIR --out FILE [--commit C] [--command CMD] [--skipped "bench: why"]...

The row format is in bench/results/README.md. One table line per (figure, app): berth's median, each other subject's median (pm2,
supervisord, bare, ...), the ratios berth/subject, the target and whether berth met it.
A target is clauses joined by ", " or " and ": "<= 64 MB" (berth's median against the number,
in the row's unit) or "<= 0.4x pm2" (berth's median / pm2's median against the number).
"""
import argparse
import glob
import json
import os
import re
import sys

SUBJECT_ORDER = ["berth", "pm2", "supervisord", "bare"]
CLAUSE = re.compile(r"^\s*(<=|>=|==|<|>|≤|≥)\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*(?:(?:x|×)\s+(\w+))?")
OPS = {"<=": lambda a, b: a <= b, "≤": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
       "≥": lambda a, b: a >= b, "<": lambda a, b: a < b, ">": lambda a, b: a > b,
       "==": lambda a, b: a == b}


def number(v):
    """A figure as the table shows it: 3 significant digits, thousands grouped."""
    if v is None:
        return "—"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def evaluate(target, medians):
    """("met"|"missed"|"n/a", why) of berth's median against every clause of `target`."""
    berth = medians.get("berth")
    if not target:
        return "", ""
    if berth is None:
        return "n/a", "no berth figure"
    missed, unknown = [], []
    for clause in re.split(r",\s+(?=[<>=≤≥])|\s+and\s+", target):
        m = CLAUSE.match(clause)
        if not m:
            unknown.append(f"cannot read '{clause}'")
            continue
        op, bound, peer = m.group(1), float(m.group(2).replace(",", "")), m.group(3)
        value = berth
        if peer:
            if not medians.get(peer):
                unknown.append(f"no {peer} figure")
                continue
            value = berth / medians[peer]
        if not OPS[op](value, bound):
            missed.append(clause.strip() + (f" (is {value:.2f}x)" if peer else ""))
    if missed:
        single = len(re.split(r",\s+(?=[<>=≤≥])|\s+and\s+", target)) == 1 and "x)" not in missed[0]
        return "missed", "" if single else "; ".join(missed)
    if unknown:
        return "n/a", "; ".join(unknown)
    return "met", ""


def load(raw):
    docs = []
    for path in sorted(glob.glob(os.path.join(raw, "*.json"))):
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            print(f"report.py: skipping {path}: {e}", file=sys.stderr)
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
            print(f"report.py: skipping {path}: no rows", file=sys.stderr)
            continue
        docs.append((os.path.basename(path), doc))
    return docs


def table(docs):
    groups, order = {}, []
    for _, doc in docs:
        for row in doc["rows"]:
            key = (row.get("figure", "?"), row.get("app", "-"))
            if key not in groups:
                groups[key] = {"bench": doc.get("bench", "?"), "unit": row.get("unit", ""), "target": "",
                               "medians": {}, "notes": []}
                order.append(key)
            g = groups[key]
            subject = row.get("subject", "?")
            g["medians"][subject] = row.get("median")
            if row.get("target") and (subject == "berth" or not g["target"]):
                g["target"] = row["target"]
            if row.get("notes"):
                g["notes"].append(f"{subject}: {row['notes']}")
    subjects = {s for g in groups.values() for s in g["medians"]}
    cols = [s for s in SUBJECT_ORDER if s in subjects] + sorted(subjects - set(SUBJECT_ORDER))
    peers = [s for s in cols if s != "berth"]
    head = ["figure", "app", "unit"] + cols + [f"berth/{p}" for p in peers] + ["target", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for key in order:
        g = groups[key]
        med = g["medians"]
        ratios = []
        for p in peers:
            b, v = med.get("berth"), med.get(p)
            ratios.append(f"{b / v:.2f}x" if b is not None and v else "—")
        verdict, why = evaluate(g["target"], med)
        cells = [key[0], key[1], g["unit"]] + [number(med.get(s)) for s in cols] + ratios + \
                [g["target"] or "—", verdict + (f": {why}" if why else "")]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        for n in g["notes"]:
            notes.append(f"- {key[0]} ({key[1]}) — {n} [{g['bench']}]")
    return lines, notes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", required=True, help="folder of the benches' JSON files")
    ap.add_argument("--out", required=True, help="markdown file to write")
    ap.add_argument("--commit", default="", help="git commit the benches ran on")
    ap.add_argument("--command", default="make bench", help="how the figures were made")
    ap.add_argument("--skipped", action="append", default=[], help="'bench: why' for a bench that did not run")
    a = ap.parse_args()
    docs = load(a.raw)
    machine = next((d["machine"] for _, d in docs if isinstance(d.get("machine"), dict)), {})
    dates = sorted(d.get("date", "") for _, d in docs if d.get("date"))
    out = ["# berth benchmarks: latest results", "",
           f"- date: {dates[0] + ' .. ' + dates[-1] if dates else 'no bench wrote rows'}",
           f"- git commit: {a.commit or 'unknown'}",
           f"- machine: {machine.get('cpus', '?')} cpus, {machine.get('model', '?')}, kernel "
           f"{machine.get('kernel', '?')}, {machine.get('mem_mb', '?')} MB",
           f"- command: `{a.command}`",
           f"- raw JSON: [{os.path.relpath(a.raw, os.path.dirname(os.path.abspath(a.out)))}/]"
           f"({os.path.relpath(a.raw, os.path.dirname(os.path.abspath(a.out)))}/), one file per bench: "
           + (", ".join(n for n, _ in docs) or "none"),
           "", "Medians of the runs in each file; ratios are berth's median over the peer's; "
           "the last column checks berth against the target (bench/results/README.md).", ""]
    lines, notes = table(docs)
    out += lines
    if a.skipped:
        out += ["", "## Not run", ""] + [f"- {s}" for s in a.skipped]
    if notes:
        out += ["", "## Notes", ""] + notes
    with open(a.out + ".tmp", "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(a.out + ".tmp", a.out)
    print(f"report.py: {len(lines) - 2} figures from {len(docs)} files -> {a.out}")


if __name__ == "__main__":
    main()
