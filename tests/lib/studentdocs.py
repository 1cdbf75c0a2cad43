#!/usr/bin/env python3
"""studentdocs.py - README.md and GUIDE.md as they are true in the student tarball.

    studentdocs.py DIR          rewrites DIR/README.md and DIR/GUIDE.md in place

tests/dist runs it on the staged tarball.  The tarball has no solutions/, no
hidden tests and none of the instructor's tools, so what the docs say about
them is left out or said the student's way:

  - sections only an instructor can use are dropped (README's "For
    instructors", GUIDE's "Grading for instructors"); GUIDE's comparison of
    the reference solutions is replaced by a note saying it needs them;
  - README's "Two commands" says what make grade and make test do here, with
    the install line of the original;
  - commands described as running "the reference solution(s)" are described
    as running the student's labs (without solutions/, the tests default to
    labs/ and make test grades them);
  - a Layout table row naming a path the tarball does not hold is dropped.

tests/checks/dist checks the result: no command or path the tarball cannot
honour.  Python standard library only.
"""
import os
import re
import sys
import textwrap

DROP = {
    "README.md": ["For instructors"],
    "GUIDE.md": ["Grading for instructors"],
}
NOTE = {
    ("GUIDE.md", "Comparing the rungs: `make compare`"):
        "`make compare` runs every reference solution side by side (throughput, latency, and a "
        "table of how each survives misbehaving clients). The reference solutions stay with your "
        "instructor, so it does not run from this tarball: ask for the tables, or measure your own "
        "servers with the load generator, `build/plain/tests/bench/loadgen -p PORT -c 100 -s 64 "
        "-t 5` (its usage line lists the options), against a server you started yourself.",
}
# (code-block line pattern, replacement comment): lines whose comment no
# longer holds without solutions/.
REWRITE = [
    (re.compile(r"^(make test\s+)#.*$"),
     r"\1# without solutions/: every lab's tests against your labs/ (as make grade)"),
    (re.compile(r"^(bats tests/\S+\.bats\s+)# the reference solution.*$"),
     r"\1# your build (without solutions/, the tests default to labs/)"),
]


def sections(text):
    """[(heading or None, [lines])] split at '## ' headings."""
    out, cur = [], (None, [])
    in_code = False
    for line in text.split("\n"):
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("## "):
            out.append(cur)
            cur = (line[3:].strip(), [line])
        else:
            cur[1].append(line)
    out.append(cur)
    return out


def two_commands(lines):
    install = next((l for l in lines if l.startswith("sudo apt-get install")), None)
    setup = next((l for l in lines if l.startswith("sudo tests/setup-tools")), None)
    head = next((l for l in lines[1:] if l.strip() and not l.startswith("```")), "")
    code = [l for l in (install, setup) if l] + ["make grade LAB=01"]
    text = ("`make grade LAB=01` builds your `labs/` and runs lab 01's tests against your code, then "
            "prints your score and, for each failure, what was expected, what came back and a command "
            "that reproduces it. `make grade` grades every lab; `make test` does the same here (the "
            "reference solutions it checks in the instructor's copy stay with your instructor).")
    return ["## Two commands", "", head if head.startswith("On ") else "On Debian or Ubuntu:", "",
            "```sh", *code, "```", "", textwrap.fill(text, 96), ""]


def rewrite(name, text, root):
    out = []
    for heading, lines in sections(text):
        if heading in DROP.get(name, []):
            continue
        if (name, heading) in NOTE:
            out += [lines[0], "", textwrap.fill(NOTE[(name, heading)], 96), ""]
            continue
        if name == "README.md" and heading == "Two commands":
            lines = two_commands(lines)
        in_code = False
        for line in lines:
            if line.startswith("```"):
                in_code = not in_code
            elif in_code:
                for rx, to in REWRITE:
                    line = rx.sub(to, line)
            else:
                m = re.match(r"^\|\s*`([^`]+)`\s*\|", line)
                if m and "/" in m.group(1) and not os.path.exists(os.path.join(root, m.group(1).rstrip("/"))) \
                        and not m.group(1).startswith(("build/", "results/")):
                    continue
            out.append(line)
    return "\n".join(out)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: studentdocs.py DIR")
    root = sys.argv[1]
    for name in ("README.md", "GUIDE.md"):
        path = os.path.join(root, name)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(rewrite(name, text, root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
