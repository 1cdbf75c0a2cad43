#!/usr/bin/env python3
"""classreport.py - the class report tests/grade-all writes after a batch.

    classreport.py OUT NAME...

Reads OUT/NAME/summary.json (tests/grade --summary) for every student NAME
and writes, into OUT:
  class-report.html   the score histogram, each test's pass rate (worst
                      first), the most common failure causes, per lab
  class-report.md     the same as text
  scores.svg          the histogram alone
so that the next lecture can start from what most of the class got wrong.

A failure cause is a failed test's first line of explanation with the
numbers taken out (ports, pids, byte counts differ from run to run), or a
build's first error; causes are counted by students, not by tests.

Python standard library only.
"""
import html
import json
import os
import re
import statistics
import sys
from collections import Counter, defaultdict


def fmt(x):
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def cause_of(why):
    why = re.sub(r"\s+", " ", why).strip()
    why = re.sub(r"(?<![A-Za-z])\d+(?!-[a-z])", "N", why)
    return why[:180] if why else "(no explanation)"


def load(out, names):
    subs = {}
    for name in names:
        try:
            with open(os.path.join(out, name, "summary.json"), encoding="utf-8") as f:
                subs[name] = json.load(f)
        except (OSError, ValueError):
            subs[name] = None
    return subs


def analyse(subs):
    pcts = {n: (100 * s["score"] / s["max_score"] if s["max_score"] else 0.0)
            for n, s in subs.items() if s}
    tests = {}                      # (lab, name) -> {tag, hidden, passed, tried}
    causes = defaultdict(set)       # cause -> students
    cause_tests = defaultdict(set)  # cause -> tests
    labs = defaultdict(lambda: {"scores": [], "max": 0, "built": 0, "submitted": 0, "full": 0})
    for n, s in subs.items():
        if not s:
            continue
        for lab, l in s["labs"].items():
            L = labs[lab]
            L["max"] = max(L["max"], l["max_score"])
            L["scores"].append(l["score"])
            if l["build"] == "missing":
                continue
            L["submitted"] += 1
            L["built"] += l["build"] == "ok"
            L["full"] += l["score"] == l["max_score"] and l["max_score"] > 0
            if l["build"] not in ("ok", "missing"):
                c = ("did not build: " + cause_of(l.get("build_error", ""))
                     if l["build"] == "failed" else f"not graded ({l['build']})")
                causes[c].add(n)
                cause_tests[c].add(f"{lab} (build)")
            for t in l.get("tests", []):
                k = (lab, t["name"])
                e = tests.setdefault(k, {"tag": t["tag"], "hidden": t["hidden"], "passed": 0, "tried": 0})
                e["tried"] += 1
                e["passed"] += t["passed"]
                if not t["passed"] and l["build"] == "ok":
                    c = cause_of(t["why"])
                    causes[c].add(n)
                    cause_tests[c].add(f"{lab}: {t['name']}")
    return pcts, tests, causes, cause_tests, labs


def histogram_svg(pcts, title):
    bins = [0] * 10
    for p in pcts.values():
        bins[min(int(p // 10), 9)] += 1
    w, h, left, bottom, top = 560, 300, 50, 40, 40
    bw = (w - left - 20) / 10
    peak = max(bins + [1])
    scale = (h - top - bottom) / peak
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
           'font-family="sans-serif" font-size="12">',
           f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">{html.escape(title)}</text>',
           f'<line x1="{left}" y1="{h - bottom}" x2="{w - 20}" y2="{h - bottom}" stroke="#333"/>',
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="#333"/>']
    for step in range(0, peak + 1, max(1, peak // 5)):
        y = h - bottom - step * scale
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{step}</text>')
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{w - 20}" y2="{y:.1f}" stroke="#ddd"/>')
    for i, c in enumerate(bins):
        x = left + i * bw
        bh = c * scale
        out.append(f'<rect x="{x + 3:.1f}" y="{h - bottom - bh:.1f}" width="{bw - 6:.1f}" height="{bh:.1f}" '
                   f'fill="#4a7ebb"><title>{i * 10}-{i * 10 + 10}%: {c}</title></rect>')
        if c:
            out.append(f'<text x="{x + bw / 2:.1f}" y="{h - bottom - bh - 4:.1f}" text-anchor="middle">{c}</text>')
        out.append(f'<text x="{x + bw / 2:.1f}" y="{h - bottom + 16}" text-anchor="middle">'
                   f'{i * 10}{"-100" if i == 9 else ""}</text>')
    out.append(f'<text x="{w / 2}" y="{h - 6}" text-anchor="middle">score, % of the points</text>')
    out.append(f'<text x="14" y="{h / 2}" text-anchor="middle" transform="rotate(-90 14 {h / 2})">'
               'students</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: classreport.py OUT NAME...")
    out, names = sys.argv[1], sys.argv[2:]
    subs = load(out, names)
    pcts, tests, causes, cause_tests, labs = analyse(subs)
    graded = len(pcts)
    if pcts:
        vals = sorted(pcts.values())
        stats = (f"{graded} graded of {len(names)} submissions; median {statistics.median(vals):.0f}%, "
                 f"mean {statistics.mean(vals):.0f}%, lowest {vals[0]:.0f}%, highest {vals[-1]:.0f}%")
    else:
        stats = f"0 graded of {len(names)} submissions"
    missing = [n for n, s in subs.items() if not s]
    svg = histogram_svg(pcts, f"{graded} submissions" + (f", median {statistics.median(pcts.values()):.0f}%"
                                                          if pcts else ""))
    with open(os.path.join(out, "scores.svg"), "w", encoding="utf-8") as f:
        f.write(svg)

    rows = sorted(tests.items(), key=lambda kv: (kv[1]["passed"] / kv[1]["tried"] if kv[1]["tried"] else 1,
                                                 kv[0]))
    top = sorted(causes.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:12]

    md = ["# Class report", "", stats, ""]
    if missing:
        md += [f"No report for: {', '.join(missing)} (see their report.txt).", ""]
    md += ["## Scores", "", "![score histogram](scores.svg)", ""]
    md += ["| lab | mean | full marks | built | submitted |", "|---|---|---|---|---|"]
    for lab in sorted(labs):
        L = labs[lab]
        mean = statistics.mean(L["scores"]) if L["scores"] else 0
        md.append(f"| {lab} | {fmt(mean)}/{fmt(L['max'])} | {L['full']} | {L['built']} | {L['submitted']} |")
    md += ["", "## The most common failure causes", "",
           "Each counted once per student; numbers (ports, pids, sizes) shown as N.", "",
           "| students | cause | in |", "|---|---|---|"]
    for c, who in top:
        where = sorted(cause_tests[c])
        md.append(f"| {len(who)} | {c.replace('|', '/')} | {'; '.join(where[:3]).replace('|', '/')}"
                  f"{f' (+{len(where) - 3})' if len(where) > 3 else ''} |")
    md += ["", "## Pass rate per test (worst first)", "", "| passed | lab | tag | test |", "|---|---|---|---|"]
    for (lab, name), e in rows:
        pct = 100 * e["passed"] / e["tried"] if e["tried"] else 0
        md.append(f"| {e['passed']}/{e['tried']} ({pct:.0f}%) | {lab} | {e['tag']}{' (hidden)' if e['hidden'] else ''} "
                  f"| {name.replace('|', '/')} |")
    with open(os.path.join(out, "class-report.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md) + "\n")

    e = html.escape
    h = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\"><title>Class report</title><style>",
         "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}",
         "table{border-collapse:collapse;width:100%;margin-bottom:2em}",
         "td,th{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}",
         ".bar{background:#eee;width:10em;height:1em;position:relative}",
         ".bar span{display:block;height:1em}", ".n{white-space:nowrap}",
         "</style></head><body>", "<h1>Class report</h1>", f"<p>{e(stats)}</p>"]
    if missing:
        h.append(f"<p>No report for: {e(', '.join(missing))} (see their report.txt).</p>")
    h += ["<h2>Scores</h2>", svg,
          "<table><tr><th>lab</th><th>mean</th><th>full marks</th><th>built</th><th>submitted</th></tr>"]
    for lab in sorted(labs):
        L = labs[lab]
        mean = statistics.mean(L["scores"]) if L["scores"] else 0
        h.append(f"<tr><td>{e(lab)}</td><td>{fmt(mean)}/{fmt(L['max'])}</td><td>{L['full']}</td>"
                 f"<td>{L['built']}</td><td>{L['submitted']}</td></tr>")
    h += ["</table>", "<h2>The most common failure causes</h2>",
          "<p>Each counted once per student; numbers (ports, pids, sizes) shown as N.</p>",
          "<table><tr><th>students</th><th>cause</th><th>in</th></tr>"]
    for c, who in top:
        where = sorted(cause_tests[c])
        h.append(f"<tr><td class=n>{len(who)}</td><td>{e(c)}</td><td>{'<br>'.join(e(w) for w in where[:5])}"
                 f"{f'<br>(+{len(where) - 5} more)' if len(where) > 5 else ''}</td></tr>")
    h += ["</table>", "<h2>Pass rate per test, worst first</h2>",
          "<table><tr><th>passed</th><th></th><th>lab</th><th>tag</th><th>test</th></tr>"]
    for (lab, name), t in rows:
        pct = 100 * t["passed"] / t["tried"] if t["tried"] else 0
        colour = "#c0392b" if pct < 50 else "#e6a23c" if pct < 80 else "#3c9a5f"
        h.append(f"<tr><td class=n>{t['passed']}/{t['tried']}</td><td><div class=bar>"
                 f"<span style=\"width:{pct:.0f}%;background:{colour}\"></span></div></td>"
                 f"<td class=n>{e(lab)}</td><td>{e(t['tag'])}{' (hidden)' if t['hidden'] else ''}</td>"
                 f"<td>{e(name)}</td></tr>")
    h += ["</table>", "</body></html>"]
    with open(os.path.join(out, "class-report.html"), "w", encoding="utf-8") as f:
        f.write("\n".join(h) + "\n")
    print(f"class report: {os.path.join(out, 'class-report.html')} (and class-report.md, scores.svg)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
