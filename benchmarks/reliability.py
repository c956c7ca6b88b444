"""Run the bad-input corpus (``tests/test_reliability.py``, the fault-injection matrix of ``tests/test_faults.py``
and the bad-input tests of the other test files) and write
``benchmarks/results/reliability/reliability.md``: every case,
grouped, with its outcome, and the kill-and-resume runs of ``benchmarks/kill_resume.py`` (its JSON, run first).

    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/kill_resume.py
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

from common import ROOT, study_dir

#: (test file, test-name pattern) of the bad-input cases outside test_reliability.py
OTHER_CASES = (
    ("tests/test_data.py", r"malformed|outside_the_label_set|missing_files|no_local_copy|strict|unknown"),
    ("tests/test_trainer.py", r"stale|label_sets_must_match|bad_arguments|non_finite|fingerprint|resume"),
    ("tests/test_transfer.py", r"empty|unknown|overlap|not_a_masked|gold|error"),
    ("tests/test_hub.py", r"refuses|token|incomplete|hub_id|hub_dataset"),
    ("tests/test_cascade.py", r"round_trip|bad_input"),
)

GROUPS = (
    ("damaged files (fault injection: empty, truncated, other content)", r"test_faults\.py"),
    ("readers and encodings", r"bad_data_files|bom|tab_separated|split_name|integer_labels|i_after_o|open_text|"
                              r"test_data\.py"),
    ("labels and schemes", r"scheme|labels_of_any_shape"),
    ("data from the Hub, disk and memory", r"hub_id|hub_dataset"),
    ("teacher caches", r"cache|temp_folders|stale|fingerprint"),
    ("rows, models and arguments", r"labels_beyond|position_embeddings|vocabulary|label_sets|bad_arguments|"
                                   r"non_finite|resume"),
    ("transfer sets", r"test_transfer\.py"),
    ("export and model card", r"export|card|readme"),
    ("push to the Hub", r"push|upload|token|incomplete"),
    ("command line", r"cli|bare"),
)

RESULTS = study_dir("reliability")  # this study's folder under benchmarks/results/


def run_pytest() -> list[dict]:
    cases = []
    targets = ["tests/test_reliability.py", "tests/test_faults.py"]
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
        group = c.get("group") or next((g for g, pat in GROUPS if re.search(pat, key, re.I)), "other")
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
    for group, _ in (*GROUPS, ("other", "")):  # the kill-and-resume runs have their own section
        if not grouped.get(group):
            continue
        lines += [f"## {group} ({len(grouped[group])})", "", "| case | test file | outcome |", "|---|---|---|"]
        for c in grouped[group]:
            lines.append(f"| `{c['name']}` | {c['file'].removeprefix('tests/')} | {c['outcome']} |")
        lines.append("")
    return "\n".join(lines)


def kill_resume_cases() -> tuple[list[dict], str]:
    """The kill-and-resume runs as cases, and their section of the report (empty when the JSON is missing)."""
    import json

    path = os.path.join(RESULTS, "kill_resume.json")
    if not os.path.isfile(path):
        return [], ""
    with open(path) as f:
        runs = json.load(f)
    cases, lines = [], ["## Kill and resume", "", f"Command: `{runs['command']}`. Each run is killed with SIGKILL at a "
                        "seeded random point, started again with the same command, and compared with an "
                        "uninterrupted run (cache: every row's input hash and the logits' sum; zoo: each student's "
                        "test F1, best dev F1 and epochs).", "",
                        "| run | killed after s | killed | same as uninterrupted |", "|---|---|---|---|"]
    for kind in ("cache", "zoo"):
        for i, r in enumerate(runs[kind]):
            name = f"{kind}_kill_{i}"
            ok = r["same_as_uninterrupted"]
            cases.append({"file": "benchmarks/kill_resume.py", "name": name, "outcome": "passed" if ok else "failed",
                          "group": "kill and resume"})
            lines.append(f"| {'sharded cache build' if kind == 'cache' else 'zoo run'} {i} | {r['kill_after_s']} | "
                         f"{'yes' if r['killed'] else 'no (finished first)'} | {'yes' if ok else 'NO'} |")
    return cases, "\n".join(lines) + "\n"


def main() -> None:
    cases = run_pytest()
    killed, section = kill_resume_cases()
    cases += killed
    os.makedirs(RESULTS, exist_ok=True)
    text = render(cases) + ("\n" + section if section else "")
    tmp = os.path.join(RESULTS, "reliability.md.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(RESULTS, "reliability.md"))
    print(text)


if __name__ == "__main__":
    main()
