"""A cascade of a zoo student and its teacher, published as ``benchmarks/results/cascade/<name>.{json,md,png}``.

    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/cascade.py --name conll2003 \
        --student outputs/zoo/conll2003/students/charcnn-wordlstm-crf/model --teacher outputs/zoo_teacher/model

Runs ``hf-distill cascade`` (calibration on the dev split, measurement on test, one thread) and copies its results
beside the other studies, with the command that reproduces them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys

from hf_distill.base import write_json_atomic, write_text_atomic
from hf_distill.runs.cascade import CascadeArguments, render, run_cascade

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cascade")


def main(argv: list[str]) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--student", required=True)
    p.add_argument("--teacher", required=True)
    p.add_argument("--calibrate_against", default="teacher", choices=("teacher", "gold"))
    p.add_argument("--max_f1_drop", type=float, default=0.3)
    p.add_argument("--latency_budget_ms", type=float, default=None,
                   help="calibrate for a latency budget per input instead (the best dev score within it)")
    p.add_argument("--speed_rows", type=int, default=256)
    p.add_argument("--note", default="", help="a paragraph on where the two models come from")
    a = p.parse_args(argv)
    out = run_cascade(CascadeArguments(student=a.student, teacher=a.teacher, max_f1_drop=a.max_f1_drop,
                                       calibrate_against=a.calibrate_against, speed_rows=a.speed_rows,
                                       latency_budget_ms=a.latency_budget_ms))
    out["command"] = "HF_DISTILL_DATA_DIR=../shared/data python benchmarks/cascade.py " + shlex.join(argv)
    os.makedirs(RESULTS, exist_ok=True)
    write_json_atomic(os.path.join(RESULTS, f"{a.name}.json"), out)
    write_text_atomic(os.path.join(RESULTS, f"{a.name}.md"),
                      f"# Cascade: {out['student']['name']} + its teacher on {out['dataset']}\n\nCommand: "
                      f"`{out['command']}`\n\n" + (f"{a.note}\n\n" if a.note else "") + render(out))
    shutil.copyfile(os.path.join(a.student, "cascade.png"), os.path.join(RESULTS, f"{a.name}.png"))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
