"""Write ``benchmarks/results/README.md``: the index of every result file, one section per study.

    python benchmarks/results_index.py

A study is a folder ``benchmarks/results/<study>/``: its summaries (``.md`` with ``.json``, sometimes a ``.png``)
at the top, per-seed and per-run records under ``runs/`` (or another sub-folder). Each summary's headline is its
first heading and ``Command:`` line, with the commit that last changed it. ``archive/`` holds superseded results,
listed apart.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
#: what the archived files were superseded by (the index says it)
ARCHIVE_NOTE = ("Superseded, kept for the record: `structured_kd*`, measured by `benchmarks/structured_kd.py`, which "
                "has since become `recipes/efficient_kd/` (current results: `efficient_kd/`); `zoo_conll2003.*`, the "
                "zoo on CoNLL-2003 before transfer sets, input vectors and CRF students were its defaults (issue 34's "
                "starting point; current results: `zoo/conll2003.md`).")


def study_of(rel: str) -> str:
    """The study a results file belongs to: its top folder."""
    return rel.split("/")[0] if "/" in rel else ""


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
        # the last commit that changed the content (a move into the study folder does not count)
        out = subprocess.run(["git", "log", "-1", "--format=%h", "--follow", "--diff-filter=AM", "--", path],
                             cwd=HERE, capture_output=True,
                             text=True, check=False).stdout.strip()
    except OSError:
        out = ""
    return out or "uncommitted"


def render() -> str:
    groups: dict[str, list[str]] = defaultdict(list)
    for rel in files():
        groups[study_of(rel)].append(rel)
    archived = groups.pop("archive", [])
    lines = ["# Results index", "",
             "Every file under `benchmarks/results/`, one folder per study: its summaries (each with its headline: "
             "the title and command of its Markdown, and the commit that last changed it), then every file it has "
             "(per-seed and per-run records under `runs/`). Regenerate with `python benchmarks/results_index.py`; "
             "`tests/test_results.py` checks that nothing is left out and that no file holds an absolute path of a "
             "machine.", "",
             "| study | summary | headline | command | commit |", "|---|---|---|---|---|"]
    for study in sorted(groups):
        summaries = [r for r in groups[study] if r.endswith(".md") and "/runs/" not in r] or \
            [r for r in groups[study] if r.endswith(".md")][:1] or groups[study][:1]
        for main in summaries:
            title, command = headline(os.path.join(RESULTS, main)) if main.endswith(".md") else ("", "")
            title, command = title.replace("|", "\\|"), command.replace("|", "\\|")
            lines.append(f"| {study or '(top)'} | [{main}]({main}) | {title} | "
                         f"{'`' + command + '`' if command else ''} | {commit_of(os.path.join(RESULTS, main))} |")
    lines += ["", "## Files by study", ""]
    for study in sorted(groups):
        lines.append(f"- **{study or '(top)'}**: " + ", ".join(f"[{r}]({r})" for r in groups[study]))
    lines += ["", "## Archive", "", ARCHIVE_NOTE, ""]
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
