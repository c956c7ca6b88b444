"""Run the bad-input corpus (``tests/test_reliability.py`` plus the bad-input tests of the other test
files) and write ``benchmarks/results/reliability.md``: every case, grouped, with its outcome.

    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/reliability.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict

from common import RESULTS, ROOT

#: (test file, test-name pattern) of the bad-input cases outside test_reliability.py
OTHER_CASES = (
    ("tests/test_data.py", r"malformed|outside_the_label_set|missing_files|no_local_copy|strict|unknown"),
    ("tests/test_trainer.py", r"stale|label_sets_must_match|bad_arguments|non_finite|fingerprint|resume"),
    ("tests/test_transfer.py", r"empty|unknown|overlap|not_a_masked|gold|error"),
    ("tests/test_hub.py", r"refuses|token|incomplete"),
)

GROUPS = (
    ("readers and encodings", r"bad_data_files|bom|tab_separated|split_name|integer_labels|i_after_o|open_text|"
                              r"test_data\.py"),
    ("teacher caches", r"cache|temp_folders|stale|fingerprint"),
    ("rows, models and arguments", r"labels_beyond|position_embeddings|vocabulary|label_sets|bad_arguments|"
                                   r"non_finite|resume"),
    ("transfer sets", r"test_transfer\.py"),
    ("export and model card", r"export|card|readme"),
    ("push to the Hub", r"push|upload|token|incomplete"),
    ("command line", r"cli|bare"),
)


def run_pytest() -> list[dict]:
    cases = []
    targets = ["tests/test_reliability.py"]
    selections = [(f, p) for f, p in OTHER_CASES]
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(targets, None)] + [([f], p) for f, p in selections]
        for i, (files, pattern) in enumerate(runs):
            xml = os.path.join(tmp, f"r{i}.xml")
            cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}", *files]
            if pattern:
                cmd += ["-k", " or ".join(pattern.split("|"))]
            subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if not os.path.isfile(xml):
                continue
            for tc in ET.parse(xml).getroot().iter("testcase"):
                outcome = "passed"
                for tag in ("failure", "error", "skipped"):
                    if tc.find(tag) is not None:
                        outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                cases.append({"file": tc.get("classname", "").replace(".", "/") + ".py", "name": tc.get("name"),
                              "outcome": outcome})
    return cases


def render(cases: list[dict]) -> str:
    grouped = defaultdict(list)
    for c in cases:
        key = f"{c['file']}::{c['name']}"
        group = next((g for g, pat in GROUPS if re.search(pat, key, re.I)), "other")
        grouped[group].append(c)
    total = len(cases)
    passed = sum(c["outcome"] == "passed" for c in cases)
    lines = ["# Reliability: the bad-input corpus", "",
             "Command: `HF_DISTILL_DATA_DIR=../shared/data python benchmarks/reliability.py`", "",
             "Each case hands the library one bad input or fault (generated files, tiny models, a local "
             "Hub-protocol server) and asserts the error type and the words of its message (file, line, label, "
             "shape, what to do), or that nothing was lost (exports, READMEs, repositories, caches). "
             "A case passes when the library behaves that way.", "",
             f"**{passed} of {total} cases behave as specified.**", ""]
    for group, _ in (*GROUPS, ("other", "")):
        if not grouped.get(group):
            continue
        lines += [f"## {group} ({len(grouped[group])})", "", "| case | test file | outcome |", "|---|---|---|"]
        for c in grouped[group]:
            lines.append(f"| `{c['name']}` | {c['file'].removeprefix('tests/')} | {c['outcome']} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    cases = run_pytest()
    os.makedirs(RESULTS, exist_ok=True)
    text = render(cases)
    tmp = os.path.join(RESULTS, "reliability.md.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(RESULTS, "reliability.md"))
    print(text)


if __name__ == "__main__":
    main()
