"""Write ``benchmarks/results/README.md``: the index of every result file, one section per study.

    python benchmarks/results_index.py

A study is the files sharing a name before their suffix (``transfer.json``, ``transfer.md``, ``transfer_runs/``);
its headline is the first heading and the ``Command:`` line of its main Markdown, with the commit that last
changed it. Files under ``archive/`` are listed apart: superseded results whose producing script is gone.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
#: suffixes of per-seed, per-run and per-task files that belong to the study named before them
PART = re.compile(r"(_seed\d+|_seeds|_runs|_teacher2|_card|_(nerp|posp|emot|smsa|terma|nergrit))$")


def study_of(rel: str) -> str:
    """The study a results file belongs to (its top folder, or its name without per-seed/per-run suffixes)."""
    top = rel.split("/")[0]
    if "/" in rel and top not in ("archive",):
        return PART.sub("", top)
    stem = os.path.splitext(os.path.basename(rel))[0]
    return PART.sub("", stem)


def files() -> list[str]:
    out = []
    for root, _, names in os.walk(RESULTS):
        for n in names:
            rel = os.path.relpath(os.path.join(root, n), RESULTS).replace(os.sep, "/")
            if rel != "README.md":
                out.append(rel)
    return sorted(out)


def headline(path: str) -> tuple[str, str]:
    """The first heading and the ``Command:`` of a Markdown result."""
    title, command = "", ""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not title and line.startswith("#"):
                title = line.lstrip("#").strip()
            if not command and line.startswith("Command"):
                m = re.search(r"`([^`]+)`", line)
                command = m.group(1) if m else ""
            if title and command:
                break
    return title, command


def commit_of(path: str) -> str:
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%h", "--", path], cwd=HERE, capture_output=True,
                             text=True, check=False).stdout.strip()
    except OSError:
        out = ""
    return out or "uncommitted"


def render() -> str:
    groups: dict[str, list[str]] = defaultdict(list)
    archived = []
    for rel in files():
        (archived if rel.startswith("archive/") else groups[study_of(rel)]).append(rel)
    lines = ["# Results index", "",
             "Every file under `benchmarks/results/`, one section per study: its headline (the main Markdown's title "
             "and command), the commit that last changed it, and every file it has. Regenerate with "
             "`python benchmarks/results_index.py`; `tests/test_results.py` checks that nothing is left out and "
             "that no file holds an absolute path of a machine.", "",
             "| study | headline | command | commit |", "|---|---|---|---|"]
    for study in sorted(groups):
        mains = [r for r in groups[study] if r.endswith(".md") and study_of(r) == study and "/" not in r
                 and os.path.splitext(r)[0] == study] or [r for r in groups[study] if r.endswith(".md")]
        main = mains[0] if mains else groups[study][0]
        title, command = headline(os.path.join(RESULTS, main)) if main.endswith(".md") else ("", "")
        title, command = title.replace("|", "\\|"), command.replace("|", "\\|")
        lines.append(f"| [{study}]({main}) | {title} | {'`' + command + '`' if command else ''} | "
                     f"{commit_of(os.path.join(RESULTS, main))} |")
    lines += ["", "## Files by study", ""]
    for study in sorted(groups):
        lines.append(f"- **{study}**: " + ", ".join(f"[{r}]({r})" for r in groups[study]))
    lines += ["", "## Archive", "",
              "Superseded: the structured-KD results measured by `benchmarks/structured_kd.py`, which has since "
              "become `recipes/efficient_kd/` (its current results are `efficient_kd*`).", ""]
    lines += [f"- [{r}]({r})" for r in archived]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    text = render()
    sys.path.insert(0, os.path.dirname(HERE))
    from hf_distill.base import write_text_atomic

    write_text_atomic(os.path.join(RESULTS, "README.md"), text)
    print(f"wrote {os.path.relpath(os.path.join(RESULTS, 'README.md'))}: {len(files())} files")
    return text


if __name__ == "__main__":
    main(sys.argv[1:])
