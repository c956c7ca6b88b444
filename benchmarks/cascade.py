"""A cascade of a zoo student and its teacher, published as ``benchmarks/results/cascade/<name>.{json,md,png}``.

    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/cascade.py --name conll2003 \
        --student outputs/zoo/conll2003/students/charcnn-wordlstm-crf/model --teacher outputs/zoo_teacher/model

Runs ``hf-distill cascade`` (calibration on the dev split, measurement on test, one thread; every option of that
command is accepted) and copies its results beside the other studies, with the command that reproduces them.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from hf_distill.base import write_json_atomic, write_text_atomic
from hf_distill.runs.cascade import CascadeArguments, render, run_cascade

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cascade")


@dataclass
class Publish:
    """Where the results go: benchmarks/results/cascade/NAME.{json,md,png}."""

    name: str = field(metadata={"help": "File name under benchmarks/results/cascade/ (e.g. conll2003)."})
    note: str = field(default="", metadata={"help": "A paragraph on where the two models come from."})


def main(argv: list[str]) -> dict:
    """Parse ``(Publish, CascadeArguments)`` (every ``hf-distill cascade`` option), run the cascade, publish."""
    parser = HfArgumentParser((Publish, CascadeArguments), description=__doc__.splitlines()[0])
    pub, args = parser.parse_args_into_dataclasses(args=argv)
    if not (args.student and args.teacher):
        parser.error("--student and --teacher are required")
    out = run_cascade(args)
    out["command"] = "HF_DISTILL_DATA_DIR=../shared/data python benchmarks/cascade.py " + shlex.join(argv)
    os.makedirs(RESULTS, exist_ok=True)
    write_json_atomic(os.path.join(RESULTS, f"{pub.name}.json"), out)
    write_text_atomic(os.path.join(RESULTS, f"{pub.name}.md"),
                      f"# Cascade: {out['student']['name']} + its teacher on {out['dataset']}\n\nCommand: "
                      f"`{out['command']}`\n\n" + (f"{pub.note}\n\n" if pub.note else "") + render(out))
    shutil.copyfile(os.path.join(args.student, "cascade.png"), os.path.join(RESULTS, f"{pub.name}.png"))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
