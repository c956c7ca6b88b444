"""The results folder a newcomer can navigate: every file reachable from its index, no machine's absolute path."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
#: an absolute path: a slash right after the start, a space, a quote, ``=``, ``(`` or ``[`` ("https://" is not one)
ABSOLUTE = re.compile(r"(?:^|[\s\"'`=(\[])/[A-Za-z0-9_.-]+/")


def _files() -> list[Path]:
    return sorted(p for p in RESULTS.rglob("*") if p.is_file())


def test_no_result_file_holds_an_absolute_path():
    bad = []
    for path in _files():
        if path.suffix in (".png",):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for lineno, line in enumerate(text.splitlines(), start=1):
            if ABSOLUTE.search(line):
                bad.append(f"{path.relative_to(RESULTS)}:{lineno}: {line.strip()[:100]}")
    assert not bad, "absolute paths in results (write paths relative to the repository):\n" + "\n".join(bad[:20])


def test_every_result_file_is_reachable_from_the_index():
    index = (RESULTS / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([^)]+)\)", index))
    missing = [str(p.relative_to(RESULTS)) for p in _files()
               if p.name != "README.md" and str(p.relative_to(RESULTS)) not in linked]
    assert not missing, f"not linked from benchmarks/results/README.md (run benchmarks/results_index.py): {missing}"
    dangling = [t for t in linked if not (RESULTS / t).is_file()]
    assert not dangling, f"the index links files that do not exist: {dangling}"
