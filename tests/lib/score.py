#!/usr/bin/env python3
"""score.py - turn one grading run into scores and reports (used by tests/grade).

    score.py --work DIR [--format tap|junit|gradescope] [--out FILE]
             [--summary FILE] [--strict]
    score.py --workflow tests/NN-name.bats...    (GitHub Classroom's classroom.yml)

DIR holds one sub-directory per lab (written by tests/grade), each with:
  meta          key=value lines: lab, build (ok|failed|missing), suite.<kind>
                (a .bats file; kind is visible or hidden), status.<kind> (the
                bats exit status, or "timeout")
  build.log     the compiler's output
  <kind>.tap    what bats --tap --timing printed for that suite

Weights: tests/weights/NN-name.conf, else tests/weights/default.conf.  Lines:
  TAG = POINTS                  every test whose first scoring tag is TAG
  "exact test name" = POINTS    one test (overrides its tag)
  hint TAG = TEXT               the hint printed when a TAG test fails
  hint "exact test name" = TEXT
A test's scoring tag is the first of echo, design, robust, scale it carries.

Python standard library only.
"""
import argparse
import json
import os
import re
import socket
import sys
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TAGS = ["echo", "design", "robust", "scale"]
DEFAULT_HINTS = {
    "echo": "the service itself: run the scenario by hand (the reproduce line) and compare "
            "what comes back with what was sent",
    "design": "this lab's mechanism: re-read the task list in the lab's README.md",
    "robust": "a misbehaving client hurt the server: check every read/write/accept return "
              "value (EPIPE, ECONNRESET, EINTR, EMFILE) and that SIGPIPE is ignored",
    "scale": "many connections at once: fd limits, closing what you accept, no O(n) work "
             "per event",
    "other": "read the failure message above",
}


# ---------- the tests a suite declares --------------------------------------------

TEST_RE = re.compile(r"""^\s*@test\s+(?:"((?:[^"\\]|\\.)*)"|'([^']*)')\s*\{""")
TAGS_RE = re.compile(r"^\s*#\s*bats\s+test_tags\s*=\s*(.*)$")
FILE_TAGS_RE = re.compile(r"^\s*#\s*bats\s+file_tags\s*=\s*(.*)$")


def declared_tests(path):
    """[(name, [tags])] in file order, as bats sees them."""
    tests, pending, file_tags = [], [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = FILE_TAGS_RE.match(line)
            if m:
                file_tags = [t.strip() for t in m.group(1).split(",") if t.strip()]
                continue
            m = TAGS_RE.match(line)
            if m:
                pending += [t.strip() for t in m.group(1).split(",") if t.strip()]
                continue
            m = TEST_RE.match(line)
            if m:
                name = m.group(1) if m.group(1) is not None else m.group(2)
                name = re.sub(r"\\(.)", r"\1", name)
                tests.append((name, file_tags + pending))
                pending = []
    return tests


def scoring_tag(tags):
    for t in TAGS:
        if t in tags:
            return t
    return "other"


# ---------- weights -----------------------------------------------------------------

WEIGHT_RE = re.compile(r'^(hint\s+)?(?:"([^"]*)"|([A-Za-z_][\w-]*))\s*=\s*(.*)$')


def load_weights(lab):
    path = os.path.join(ROOT, "tests", "weights", lab + ".conf")
    if not os.path.exists(path):
        path = os.path.join(ROOT, "tests", "weights", "default.conf")
    w = {"tag": {t: 1.0 for t in TAGS + ["other"]}, "test": {}, "hint_tag": {}, "hint_test": {},
         "file": os.path.relpath(path, ROOT)}
    if not os.path.exists(path):
        return w
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            m = WEIGHT_RE.match(line)
            if not m:
                sys.exit(f"{path}:{n}: cannot read '{line}'")
            hint, name, tag, value = m.groups()
            if hint:
                (w["hint_test"] if name is not None else w["hint_tag"])[name or tag] = value
            else:
                try:
                    pts = float(value)
                except ValueError:
                    sys.exit(f"{path}:{n}: points must be a number, not '{value}'")
                if name is not None:
                    w["test"][name] = pts
                else:
                    w["tag"][tag] = pts
    return w


# ---------- bats TAP output -----------------------------------------------------------

RESULT_RE = re.compile(r"^(ok|not ok) (\d+) (.*?)(?: in (\d+)ms)?$")


def read_tap(path):
    """{name: (passed, ms, [diagnostic lines])}"""
    out, cur = {}, None
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            # bats --timing puts the time before the directive:
            # "ok 1 NAME in 64ms # skip REASON": take the directive off first.
            skip = re.search(r" # skip\b", line, re.I) if line.startswith("ok ") else None
            reason = ""
            if skip:
                reason = line[skip.end():].strip(" :-") or "no reason given"
                line = line[:skip.start()]
            m = RESULT_RE.match(line)
            if m:
                name = m.group(3)
                # A skipped test did not run: it is never counted as passed.
                cur = [m.group(1) == "ok" and not skip, int(m.group(4) or 0),
                       ["skipped, so it scores 0: " + reason] if skip else []]
                out[name] = cur
            elif cur is not None and line.startswith("#"):
                cur[2].append(line[2:] if line.startswith("# ") else line[1:])
            elif cur is not None and line.strip():
                cur[2].append(line)
    return out


# bats' own lines around a failure (bats 1.10+ also prints the test's tags).
NOISE = re.compile(r"^\s*(\(from function|from function|in test file|\(in test file|`.*' failed( with status \d+)?$|tags:( |$))")


ASSERT_NOISE = re.compile(r"^\s*(-- .* --|--|status\s*:.*|output.*:|stderr.*:)\s*$")


def why(diag):
    for line in diag:
        if line.strip() and not NOISE.match(line) and not ASSERT_NOISE.match(line):
            return re.sub(r"^\s*(output|stderr)\s*:\s*", "", line).strip()
    # Nothing but bats' own trace: say which step failed, and where.
    step = next((l.strip() for l in diag if re.match(r"^\s*`.*' failed", l)), "")
    where = next((m.group(1) for l in diag
                  for m in [re.search(r"in test file (\S+, line \d+)", l)] if m), "")
    return f"{step} ({where})" if step and where else step


# ---------- what a student may see ---------------------------------------------------------
# The build log and the tests' output are shown to the student.  Two things
# must not reach them: what the grader keeps secret (the hidden suites, the
# reference solutions), which a compiler quotes when a submission
# #includes it and a server could print where the tests do not hide it,
# and the grader's temporary paths, which mean nothing once grading is over.

GCC_DIAG = re.compile(r"^(?P<path>[^\s:][^:]*):(?P<line>\d+):(?:\d+:)? ?(?P<kind>fatal error|error|warning|note)\b")
GUTTER = re.compile(r"^\s*\d*\s*\|")
LAST_WORDS = re.compile(r"last words: '(.*)'")
SECRET_LINE = "(a line of a file the grader keeps to itself: not shown)"


def file_lines(paths):
    out = set()
    for p in paths:
        try:
            with open(p, encoding="utf-8", errors="replace") as f:
                out |= {line.strip() for line in f}
        except OSError:
            pass
    return out


class Redactor:
    def __init__(self, work, metas):
        self.work = os.path.abspath(work)
        glob = __import__("glob").glob
        secret = [m["suite.hidden"] for m in metas if m.get("suite.hidden")]
        secret += glob(os.path.join(ROOT, "solutions", "*", "*.[ch]"))
        secret += glob(os.path.join(ROOT, "tests", "hidden", "*"))
        public = glob(os.path.join(self.work, "tree", "labs", "*", "*.[ch]"))
        public += glob(os.path.join(ROOT, "labs", "*", "*")) + glob(os.path.join(ROOT, "common", "*"))
        public += glob(os.path.join(ROOT, "tests", "*.bats"))
        self.secret = {l for l in file_lines(secret) - file_lines(public) if len(l) >= 10}
        self.given = {m["lab"]: m.get("given.server", "") for m in metas}
        w = re.escape(self.work)
        self.paths = [
            (re.compile(w + r"/bin/([^/\s'\"]+)/(server|client)\b"), r"build/plain/labs/\1/\2"),
            (re.compile(w + r"/given/([^/\s'\"]+)/server\b"),
             lambda m: self.given.get(m.group(1)) or "SERVER"),
            (re.compile(w + r"/tree/"), ""),
            (re.compile(w + r"/hidden/[^/\s'\"]+/suite/"), "tests/hidden/"),
            (re.compile(w + r"/hidden/[^/\s'\"]+/"), ""),
            (re.compile(re.escape(ROOT) + "/"), ""),
            (re.compile(w), "<the grading directory>"),
        ]

    def is_secret(self, line):
        t = GUTTER.sub("", line.strip().lstrip("#").strip()).strip()
        if t in self.secret:
            return True
        m = LAST_WORDS.search(line)
        return bool(m and m.group(1).strip() in self.secret)

    def text(self, s):
        if not s:
            return s
        for rx, to in self.paths:
            s = rx.sub(to, s)
        return "\n".join(SECRET_LINE if self.is_secret(l) else l for l in s.split("\n"))

    @staticmethod
    def allowed(path):
        """A file the student may see quoted: their own, common/, the system's."""
        if ".." in path.split("/"):
            return False
        return (path.startswith(("labs/", "common/", "<", "/usr/include/", "/usr/lib/gcc/",
                                 "/usr/local/include/")) and not path.startswith("labs/../"))

    def build_log(self, log):
        out, hiding = [], False
        for line in log.split("\n"):
            m = GCC_DIAG.match(line)
            if m:
                path = m.group("path")
                if path.startswith(self.work + "/tree/"):
                    path = path[len(self.work + "/tree/"):]
                hiding = not self.allowed(path)
                if hiding:
                    out.append(f"{path}:{m.group('line')}: {m.group('kind')} in a file that is not "
                               "part of your submission (not shown)")
                    continue
            elif hiding and GUTTER.match(line):
                continue
            else:
                hiding = False
            out.append(line)
        return self.text("\n".join(out))


# ---------- one run -----------------------------------------------------------------------

def read_meta(path):
    meta = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    return meta


STOPPED = "grading stopped (the submission's time limit ran out)"


def collect(work):
    labs = []
    # No labs/ at all: the grading run died before it graded anything (it
    # could not create its work files); report nothing graded rather than
    # crash, so every output format is still written.
    ldir = os.path.join(work, "labs")
    dirs = sorted(os.listdir(ldir)) if os.path.isdir(ldir) else []
    metas = [read_meta(os.path.join(work, "labs", d, "meta")) for d in dirs]
    red = Redactor(work, metas)
    for d, meta in zip(dirs, metas):
        ldir = os.path.join(work, "labs", d)
        if meta.get("base.why"):
            meta["base.why"] = red.text(meta["base.why"])
        lab = meta["lab"]
        weights = load_weights(lab)
        build_log = ""
        if os.path.exists(os.path.join(ldir, "build.log")):
            with open(os.path.join(ldir, "build.log"), encoding="utf-8", errors="replace") as f:
                build_log = red.build_log(f.read())
        tests = []
        for kind in ("visible", "hidden"):
            suite = meta.get("suite." + kind)
            if not suite:
                continue
            results = read_tap(os.path.join(ldir, kind + ".tap"))
            status = meta.get("status." + kind, "")
            for name, tags in declared_tests(suite):
                if meta.get("only") not in (None, name):
                    continue
                tag = scoring_tag(tags)
                pts = weights["test"].get(name, weights["tag"].get(tag, 1.0))
                hint = weights["hint_test"].get(name) or weights["hint_tag"].get(tag) \
                    or DEFAULT_HINTS[tag]
                t = {"lab": lab, "name": name, "tags": tags, "tag": tag, "max": pts,
                     "hidden": kind == "hidden", "hint": hint, "ms": 0}
                if meta.get("build") == "stopped":
                    why_not = STOPPED + " before this lab was graded"
                    t.update(passed=False, why=why_not, output=why_not, verdict=False)
                elif meta.get("build") != "ok":
                    why_not = meta.get("base.why") or "the lab did not build"
                    t.update(passed=False, why=why_not, verdict=False,
                             output=why_not + "\nthe build failed:\n" + "\n".join(build_log.splitlines()[-30:]))
                elif name not in results:
                    reason = ("the lab's time limit ran out before this test ran"
                              if status == "timeout" else
                              STOPPED + " before this test ran" if status == "stopped" else
                              f"no result (bats exit status {status}); a crash of the test run?")
                    t.update(passed=False, why=reason, output=reason, verdict=False)
                else:
                    ok, ms, diag = results[name]
                    diag = red.text("\n".join(diag)).split("\n") if diag else []
                    t.update(passed=ok, ms=ms, why="" if ok else why(diag),
                             output="\n".join(diag))
                if not t["passed"] and meta.get("build") == "ok" and meta.get("base.why"):
                    # The earlier lab under this one is broken: that is the
                    # cause, whatever this test saw.
                    t.update(why=meta["base.why"], output=meta["base.why"] + "\n" + t["output"])
                t["score"] = t["max"] if t["passed"] else 0.0
                tests.append(t)
        # Prerequisites: when the service itself is wrong (an echo test of
        # this lab failed), a failing design, robust or scale test is most
        # likely the same bug seen from elsewhere: say so instead of its own
        # hint, which would send the student after a different mistake.
        failed_echo = [t["name"] for t in tests if t["tag"] == "echo" and not t["passed"]
                       and meta.get("build") == "ok"]
        if failed_echo and not meta.get("base.why"):
            for t in tests:
                if not t["passed"] and t["tag"] != "echo":
                    t["hint"] = ("fix the echo tests first (%d failing, e.g. '%s'): this test needs the "
                                 "service itself to work, and is most likely failing for the same reason"
                                 % (len(failed_echo), failed_echo[0]))
        labs.append({"lab": lab, "build": meta.get("build"), "weights": weights["file"],
                     "base_why": meta.get("base.why", ""), "refused": meta.get("refused", ""),
                     "status": {k: meta.get("status." + k) for k in ("visible", "hidden")
                                if meta.get("suite." + k)},
                     "build_log": build_log, "tests": tests})
    return labs


def fmt(x):
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def table(labs, visible_only=False):
    """The per-lab table and the failure lines.  visible_only: what a student
    may see before the due date (Gradescope's top-level output is always
    shown): the visible tests only, and no total that hidden tests are in."""
    if visible_only:
        labs = [dict(lab, tests=[t for t in lab["tests"] if not t["hidden"]]) for lab in labs]
    lines = [f"{'lab':<16}" + "".join(f"{t:>10}" for t in TAGS) + f"{'total':>12}"]
    gs = gm = 0.0
    for lab in labs:
        row = f"{lab['lab']:<16}"
        for tag in TAGS:
            ts = [t for t in lab["tests"] if t["tag"] == tag]
            row += f"{(fmt(sum(t['score'] for t in ts)) + '/' + fmt(sum(t['max'] for t in ts))) if ts else '-':>10}"
        s = sum(t["score"] for t in lab["tests"])
        m = sum(t["max"] for t in lab["tests"])
        gs, gm = gs + s, gm + m
        note = {"ok": "", "missing": "  (not submitted)", "stopped": "  (not graded: time ran out)"
                }.get(lab["build"], "  (build failed)")
        row += f"{fmt(s) + '/' + fmt(m):>12}{note}"
        lines.append(row)
    pct = f"  ({100 * gs / gm:.0f}%)" if gm else ""
    lines.append(f"{'total' if not visible_only else 'visible tests':<16}{'':>{10 * len(TAGS)}}"
                 f"{fmt(gs) + '/' + fmt(gm):>12}{pct}")
    first = True
    for lab in labs:
        if lab.get("refused"):
            lines += [""] if first else []
            first = False
            lines.append(f"NOTE {lab['lab']}: not taken from the submission: {lab['refused']} "
                         "(the grader builds only the lab's regular .c and .h files, with its own rules)")
        failing = [t for t in lab["tests"] if not t["passed"]]
        if lab.get("base_why") and failing:
            lines += [""] if first else []
            first = False
            lines.append(f"FAIL {lab['lab']}: {lab['base_why']}")
            lines.append(f"     ({len(failing)} of its {len(lab['tests'])} tests fail; fix that lab first, then grade this one again)")
            continue
        if lab["build"] != "ok" and lab["tests"]:
            lines += [""] if first else []
            first = False
            why = {"missing": f"not submitted (no labs/{lab['lab']})",
                   "stopped": STOPPED + " before this lab was graded"}.get(lab["build"], "did not build")
            tail = [l for l in lab["build_log"].splitlines() if l.strip()][-3:]
            lines.append(f"FAIL {lab['lab']}: {why}: all {len(lab['tests'])} tests score 0 "
                         f"(0/{fmt(sum(t['max'] for t in lab['tests']))})")
            lines += [f"     {l}" for l in tail if lab["build"] not in ("missing", "stopped")]
            continue
        for t in lab["tests"]:
            if t["passed"]:
                continue
            lines += [""] if first else []
            first = False
            hidden = " (hidden)" if t["hidden"] else ""
            lines.append(f"FAIL {t['lab']} [{t['tag']}]{hidden} {t['name']}  (0/{fmt(t['max'])})")
            if t["why"]:
                lines.append(f"     why:  {t['why'].lstrip('# ')}")
            lines.append(f"     hint: {t['hint']}")
    return lines, gs, gm


# ---------- output formats ------------------------------------------------------------------

def out_tap(labs):
    tests = [t for lab in labs for t in lab["tests"]]
    lines = [f"1..{len(tests)}"]
    for i, t in enumerate(tests, 1):
        hidden = " (hidden)" if t["hidden"] else ""
        lines.append(f"{'ok' if t['passed'] else 'not ok'} {i} {t['lab']}: {t['name']}{hidden}"
                     f" [{fmt(t['score'])}/{fmt(t['max'])} points]")
        if not t["passed"]:
            for line in t["output"].splitlines()[:40]:
                lines.append("#   " + line)
            lines.append("#   hint: " + t["hint"])
    tl, _, _ = table(labs)
    lines.append("#")
    lines += ["# " + line if line else "#" for line in tl]
    return "\n".join(lines) + "\n"


XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(s):
    return XML_BAD.sub("?", s)


def out_junit(labs, elapsed, started=None):
    """JUnit XML as the common JUnit schema has it (tests/junit/JUnit.xsd):
    <testsuites> without attributes; one <testsuite> per lab with package,
    id, timestamp and hostname, its properties (score, max_score, weights,
    build, and each test's points and visibility: a test case may hold no
    properties), <system-out> with the lab's table and <system-err> with
    its build's messages.  A test that failed its check is a <failure>; one
    that gave no verdict (the lab did not build, the run stopped or crashed
    first) is an <error>, counted in errors."""
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started or time.time()))
    host = socket.gethostname() or "localhost"
    root = ET.Element("testsuites")
    for i, lab in enumerate(labs):
        ts = lab["tests"]
        errored = [t for t in ts if not t["passed"] and not t.get("verdict", True)]
        suite = ET.SubElement(root, "testsuite", name=lab["lab"], package="netlabs", id=str(i),
                              timestamp=when, hostname=host, tests=str(len(ts)),
                              failures=str(sum(not t["passed"] for t in ts) - len(errored)),
                              errors=str(len(errored)), skipped="0",
                              time=f"{sum(t['ms'] for t in ts) / 1000:.3f}")
        props = ET.SubElement(suite, "properties")
        for name, value in (("score", fmt(sum(t["score"] for t in ts))),
                            ("max_score", fmt(sum(t["max"] for t in ts))),
                            ("weights", lab["weights"]), ("build", str(lab["build"]))):
            ET.SubElement(props, "property", name=name, value=value)
        for t in ts:
            ET.SubElement(props, "property", name=clean(f"points: {t['name']}"),
                          value=f"{fmt(t['score'])}/{fmt(t['max'])}")
            ET.SubElement(props, "property", name=clean(f"visibility: {t['name']}"),
                          value="after_due_date" if t["hidden"] else "visible")
        for t in ts:
            case = ET.SubElement(suite, "testcase", classname=f"{lab['lab']}.{t['tag']}",
                                 name=clean(t["name"]), time=f"{t['ms'] / 1000:.3f}")
            if not t["passed"]:
                kind = "failure" if t.get("verdict", True) else "error"
                el = ET.SubElement(case, kind, message=clean(t["why"] or "failed"), type=t["tag"])
                el.text = clean(t["output"] + "\nhint: " + t["hint"])
        tl, _, _ = table([lab])
        ET.SubElement(suite, "system-out").text = clean("\n".join(tl))
        ET.SubElement(suite, "system-err").text = clean(lab["build_log"][-20000:])
    ET.indent(root) if hasattr(ET, "indent") else None
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def out_gradescope(labs, elapsed):
    """Gradescope's results.json.  Hidden tests are after_due_date, and
    nothing a student sees before then depends on them: the top-level
    output (always shown) holds the visible tests' table only, and there is
    no top-level score (Gradescope sums the tests, and hides that total
    while any test is hidden)."""
    tests = []
    n = 0
    for lab in labs:
        for t in sorted(lab["tests"], key=lambda t: t["hidden"]):
            n += 1
            text = t["output"]
            if not t["passed"]:
                text = (f"{t['why']}\n\nhint: {t['hint']}\n\n{text}").strip()
            tests.append({
                "name": f"{lab['lab']}: {t['name']}",
                "number": str(n),
                "score": t["score"],
                "max_score": t["max"],
                "status": "passed" if t["passed"] else "failed",
                "output": text,
                "tags": [lab["lab"]] + t["tags"],
                "visibility": "after_due_date" if t["hidden"] else "visible",
            })
    hidden = any(t["hidden"] for lab in labs for t in lab["tests"])
    tl, gs, _ = table(labs, visible_only=hidden)
    if hidden:
        tl += ["", "More tests run on your submission: their results, and your total, "
               "are shown after the due date."]
    doc = {
        "execution_time": int(round(elapsed)),
        "output": "\n".join(tl),
        "stdout_visibility": "hidden",
        "tests": tests,
    }
    if not hidden:
        doc = {"score": gs, **doc}
    return json.dumps(doc, indent=2) + "\n"


def summary(labs, elapsed):
    return {
        "score": sum(t["score"] for lab in labs for t in lab["tests"]),
        "max_score": sum(t["max"] for lab in labs for t in lab["tests"]),
        "seconds": round(elapsed, 1),
        "labs": {lab["lab"]: {
            "score": sum(t["score"] for t in lab["tests"]),
            "max_score": sum(t["max"] for t in lab["tests"]),
            "build": lab["build"],
            "build_error": next((l.strip()[:200] for l in lab["build_log"].splitlines()
                                 if lab["build"] == "failed" and re.search(r"error|undefined reference", l)), ""),
            "status": lab["status"],
            "failed": [t["name"] for t in lab["tests"] if not t["passed"]],
            # What tests/grade-all's class report is made of.
            "tests": [{"name": t["name"], "tag": t["tag"], "hidden": t["hidden"],
                       "passed": t["passed"], "score": t["score"], "max_score": t["max"],
                       "why": "" if t["passed"] else (t["why"] or "").strip()[:300]}
                      for t in lab["tests"]],
        } for lab in labs},
    }


def workflow(suites):
    """A GitHub Classroom workflow (.github/workflows/classroom.yml): one
    autograding-command-grader step per lab, worth the lab's visible points
    (its weights), passed when every test of the lab passes, then the
    grading reporter.  Strings are written double-quoted with JSON's escapes,
    which YAML reads the same."""
    q = json.dumps
    steps, ids = [], []
    for suite in suites:
        lab = os.path.basename(suite)[:-len(".bats")]
        w = load_weights(lab)
        tests = declared_tests(suite)
        pts = sum(w["test"].get(name, w["tag"].get(scoring_tag(tags), 1.0)) for name, tags in tests)
        # Minutes: each test's own limit, the build, bats' start.
        minutes = max(5, -(-(len(tests) * 60 + 240) // 60))
        sid = "lab-" + re.sub(r"[^a-z0-9-]", "-", lab.lower())
        ids.append(sid)
        steps += [f"      - name: {q('lab ' + lab)}",
                  f"        id: {sid}",
                  "        uses: classroom-resources/autograding-command-grader@v1",
                  "        with:",
                  f"          test-name: {q('lab ' + lab)}",
                  '          setup-command: ""',
                  f"          command: {q('tests/grade --lab ' + lab + ' --strict')}",
                  f"          timeout: {minutes}",
                  f"          max-score: {fmt(pts)}"]
    env = [f"          {sid.upper()}_RESULTS: {q('${{steps.' + sid + '.outputs.result}}')}" for sid in ids]
    return "\n".join([
        "# GitHub Classroom autograding, made by tests/dist for the labs of this release.",
        "# One step per lab, worth the lab's points (tests/weights), passed when every",
        "# test of the lab passes: its log shows the score table and, for each failure,",
        "# what was expected, what came back and how to reproduce it.",
        "name: Autograding Tests",
        '"on":',
        "  - push",
        "  - repository_dispatch",
        "permissions:",
        "  checks: write",
        "  actions: read",
        "  contents: read",
        "jobs:",
        "  run-autograding-tests:",
        "    runs-on: ubuntu-latest",
        "    if: github.actor != 'github-classroom[bot]'",
        "    steps:",
        "      - name: Checkout code",
        "        uses: actions/checkout@v4",
        "      - name: Install the test tools",
        "        run: |",
        "          sudo apt-get update -qq",
        "          sudo apt-get install -y -qq make gcc pkg-config libevent-dev liburing-dev bats bats-support bats-assert python3 strace procps iproute2 psmisc valgrind",
        "          sudo tests/setup-tools",
        *steps,
        "      - name: Autograding Reporter",
        "        uses: classroom-resources/autograding-grading-reporter@v1",
        "        env:",
        *env,
        "        with:",
        f"          runners: {','.join(ids)}",
    ]) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workflow", nargs="+", metavar="SUITE",
                    help="print a GitHub Classroom workflow (classroom.yml) for these .bats files")
    ap.add_argument("--work")
    ap.add_argument("--format", default="tap", choices=["tap", "junit", "gradescope"])
    ap.add_argument("--out", help="write the report here (default: stdout)")
    ap.add_argument("--summary", help="also write a JSON summary here")
    ap.add_argument("--started", type=float, help="epoch seconds the run started")
    ap.add_argument("--strict", action="store_true", help="exit 1 unless every test passed")
    a = ap.parse_args()
    if a.workflow:
        sys.stdout.write(workflow(a.workflow))
        return 0
    if not a.work:
        ap.error("--work is required")
    labs = collect(a.work)
    elapsed = time.time() - a.started if a.started else 0.0
    doc = {"tap": lambda: out_tap(labs),
           "junit": lambda: out_junit(labs, elapsed, a.started),
           "gradescope": lambda: out_gradescope(labs, elapsed)}[a.format]()
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(doc)
    else:
        sys.stdout.write(doc)
    if a.format != "tap" or a.out:
        # The human table goes with every format.
        tl, _, _ = table(labs)
        print("\n".join(tl), file=sys.stderr if not a.out else sys.stdout)
    if a.summary:
        with open(a.summary, "w", encoding="utf-8") as f:
            json.dump(summary(labs, elapsed), f, indent=2)
    tests = [t for lab in labs for t in lab["tests"]]
    if a.strict and (not tests or not all(t["passed"] for t in tests)):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
