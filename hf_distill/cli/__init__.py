"""``hf-distill`` command line: one sub-command per step from teacher to Hub.

Each command's options are a dataclass (``hf_distill.cli.args``, or ``DemoArguments``) parsed by
``HfArgumentParser``; heavy modules are imported only once a command runs. Expected errors (bad data, a
missing file, a refused token...) print one line; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import logging
import os
import sys

#: command -> one-line description (``hf-distill --help`` prints these without importing torch)
COMMANDS = {
    "demo": "Fine-tune a teacher on a CoNLL-2003 slice, distill students with and without KD and a transfer set, "
            "compare them.",
    "export": "Export a saved student or teacher to ONNX (optionally int8), validated against PyTorch.",
    "bench": "Measure a saved student and its teacher (F1, FLOPs, sizes, latency) into efficiency.json.",
    "card": "Write the model card (README.md) from efficiency.json and distillation.json.",
    "push": "Upload a student folder (weights, tokenizer, code, ONNX, card) to the Hub in one commit.",
    "zoo": "Distill a zoo of students from one teacher, bench them, plot the Pareto front, recommend one.",
    "cascade": "Calibrate a student + teacher cascade (the teacher answers what the student is unsure of), measure it.",
}


class CommandError(Exception):
    """An expected failure of a command, printed as one line."""


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: hf-distill COMMAND [--help] [options] [--debug]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {text}" for name, text in COMMANDS.items()]
    lines += ["", "`hf-distill COMMAND --help` lists a command's options."]
    return "\n".join(lines)


def parse(cls, argv: list[str], prog: str):
    """Parse ``argv`` into ``cls``; leading bare words fill ``cls.positional`` in order."""
    from transformers import HfArgumentParser

    positional = getattr(cls, "positional", ())
    argv = list(argv)
    words = []
    while argv and not argv[0].startswith("-") and len(words) < len(positional):
        words.append(argv.pop(0))
    argv = [x for name, word in zip(positional, words) for x in (f"--{name}", word)] + argv
    parser = HfArgumentParser(cls, prog=prog, description=(cls.__doc__ or "").strip())
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    for name in positional:
        if not getattr(args, name):
            parser.error(f"{name.upper()} is required")
    return args


def _model_dir(path: str, tokenizer: bool = False) -> str:
    if not os.path.exists(path):
        raise CommandError(f"{path}: not found")
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise CommandError(f"{path}: not a model folder (no config.json); pass a folder written by save_pretrained")
    if tokenizer and not os.path.isfile(os.path.join(path, "tokenizer_config.json")):
        raise CommandError(f"{path}: no tokenizer beside the model; save it there (trainer.save_student(...) does, "
                           "or tokenizer.save_pretrained(folder))")
    return path


def load_demo():
    """The demo module (``hf_distill.demo``), imported when a command needs it."""
    import importlib

    return importlib.import_module("hf_distill.demo")


def _demo(argv: list[str]) -> int:
    demo = load_demo()
    DemoArguments, format_table, next_steps, run_demo, comparison = (
        demo.DemoArguments, demo.format_table, demo.next_steps, demo.run_demo, demo.comparison)

    # the demo's own options, then DistillationTrainingArguments' (KD settings) for the template of its runs
    args, template = parse_with_training(DemoArguments, argv, "hf-distill demo", demo.PER_RUN,
                                         **demo.TEMPLATE_DEFAULTS)
    t = args.teacher
    if t and not os.path.exists(t) and (t.startswith(("/", ".", "~")) or t.count("/") > 1 or os.sep + os.sep in t):
        raise CommandError(f"--teacher {t}: no such folder (and not a Hub id)")
    results = run_demo(args, template)
    print()
    print(format_table(results))
    print(f"\nlabeled sentences: {results['labeled_sentences']}; transfer sentences (labels dropped): "
          f"{results['transfer_sentences']}; dev: {results['dev_sentences']}; test: {results['test_sentences']}; "
          f"teacher caching: {results['cache_s']:.1f} s; torch threads: {results['threads']}")
    print(f"total: {results['wall_s'] / 60:.1f} min wall, {results['cpu_s'] / 60:.1f} min CPU\n")
    gains = comparison(results)
    if gains:
        print(gains + "\n")
    print(next_steps(results))
    return 0


def _eval_split(model_dir: str, data):
    from ..data import load_dataset
    from ..shipping.bench import read_info

    name = data.dataset or read_info(model_dir).get("dataset")
    if not name:
        raise CommandError(f"{model_dir}: no distillation.json names the dataset to evaluate on; pass --dataset")
    splits = load_dataset(name, data_dir=data.data_dir)
    if data.split not in splits:
        raise CommandError(f"dataset {name!r} has no split {data.split!r} (has {sorted(splits)})")
    part = splits[data.split]
    limit = data.max_eval_samples
    return name, part.select(range(min(limit, len(part)))) if limit else part


def _export(argv: list[str]) -> int:
    from .args import ExportArguments

    a = parse(ExportArguments, argv, "hf-distill export")
    _model_dir(a.model_dir, tokenizer=True)
    from transformers import AutoTokenizer

    from ..shipping.bench import encode_for, export_for_bench
    from ..shipping.export import load_model

    model = load_model(a.model_dir)
    a.max_eval_samples = a.max_eval_samples or 200
    _, split = _eval_split(a.model_dir, a)
    tokenizer = AutoTokenizer.from_pretrained(a.model_dir)
    rows = list(encode_for(model, tokenizer, split))
    report = export_for_bench(model, tokenizer, rows, a.output_dir or os.path.join(a.model_dir, "onnx"), a.quantize)
    print(json.dumps(report, indent=2))
    return 0


def _bench(argv: list[str]) -> int:
    from .args import BenchArguments

    a = parse(BenchArguments, argv, "hf-distill bench")
    _model_dir(a.model_dir, tokenizer=True)
    from ..shipping.bench import bench_student, bench_table

    name, split = _eval_split(a.model_dir, a)
    result = bench_student(a.model_dir, split, teacher_dir=a.teacher, threads=a.threads, runs=a.runs,
                           quantize=not a.no_quantize, teacher_epochs=a.teacher_epochs, split_name=a.split,
                           dataset_name=name)
    print(f"{name}, {a.split} split, {result['examples']} examples, {a.threads} thread(s), latency per input:")
    print(bench_table(result))
    print(f"written to {os.path.join(a.model_dir, 'efficiency.json')}")
    return 0


def _card(argv: list[str]) -> int:
    from .args import CardArguments

    a = parse(CardArguments, argv, "hf-distill card")
    _model_dir(a.model_dir)
    from ..shipping.cards import write_card

    print(write_card(a.model_dir, a.repo_id, base_model=a.base_model, overwrite=a.overwrite))
    return 0


def _push(argv: list[str]) -> int:
    from .args import PushArguments

    a = parse(PushArguments, argv, "hf-distill push")
    _model_dir(a.model_dir)
    from ..shipping.hub import push_student_to_hub

    info = push_student_to_hub(a.model_dir, a.repo_id, endpoint=a.endpoint, private=a.private or None,
                               card=not a.no_card, base_model=a.base_model, commit_message=a.commit_message,
                               overwrite_card=a.overwrite)
    print(f"pushed {a.model_dir} to {a.repo_id}: {info.commit_url}")
    return 0


def parse_with_training(cls, argv: list[str], prog: str, per_run: dict[str, str], **defaults):
    """``cls`` and a ``DistillationTrainingArguments`` template from one command line (or a JSON/YAML file of
    settings first, as the recipes take): options of ``cls`` first, every other option is the template's (so each
    KD setting is declared once, in ``hf_distill.training.args``). ``per_run`` maps template fields the command
    sets itself to the option that sets them (refused if given)."""
    from transformers import HfArgumentParser

    from ..runs.recipe_io import parse_recipe_args
    from ..training.args import DistillationTrainingArguments

    if "-h" in argv or "--help" in argv:
        HfArgumentParser(cls, prog=prog, description=(cls.__doc__ or "").strip()).print_help()
        print("\nKD settings and other training options (DistillationTrainingArguments), the template of every run:")
        HfArgumentParser(DistillationTrainingArguments, prog=prog).print_help()
        raise SystemExit(0)
    try:
        return parse_recipe_args(cls, list(argv), training=defaults, per_run=per_run)
    except ValueError as e:
        raise CommandError(f"{prog}: {e}") from None


def _zoo(argv: list[str]) -> int:
    from ..zoo import ZooArguments, run_zoo
    from ..zoo.student import TEMPLATE_DEFAULTS

    args, template = parse_with_training(
        ZooArguments, argv, "hf-distill zoo",
        per_run={"num_train_epochs": "--epochs", "learning_rate": "a student spec's @LR",
                 "per_device_train_batch_size": "--batch_size"},
        **TEMPLATE_DEFAULTS)
    if args.teacher and args.teacher.startswith(("/", ".", "~")) and not os.path.exists(args.teacher):
        raise CommandError(f"--teacher {args.teacher}: no such folder")
    run_zoo(args, template, argv=argv)
    print(f"\nresults: {os.path.join(args.output_dir, 'zoo.json')}, zoo.md, zoo.png; students under "
          f"{os.path.join(args.output_dir, 'students')} (each ready for `hf-distill card` / `push`)")
    return 0


def _cascade(argv: list[str]) -> int:
    from ..runs.cascade import CascadeArguments, run_cascade

    a = parse(CascadeArguments, argv, "hf-distill cascade")
    _model_dir(a.student, tokenizer=True)
    _model_dir(a.teacher, tokenizer=True)
    run_cascade(a)
    print(f"written: {os.path.join(a.student, 'cascade.json')}, cascade.md, cascade.png")
    return 0


_RUN = {"demo": _demo, "export": _export, "bench": _bench, "card": _card, "push": _push, "zoo": _zoo,
        "cascade": _cascade}


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that describe bad input, not a bug: printed as one line."""
    errors: list[type[BaseException]] = [CommandError, ValueError, FileNotFoundError, NotADirectoryError,
                                         PermissionError]
    hub = sys.modules.get("huggingface_hub.errors")
    if hub is not None:
        errors.append(hub.HfHubHTTPError)
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in _RUN:
        print(f"hf-distill: unknown command {command!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    debug = "--debug" in rest
    rest = [x for x in rest if x != "--debug"]
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "datasets", "accelerate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return _RUN[command](rest)
    except Exception as e:
        if debug or not isinstance(e, _expected_errors()):
            raise
        print(f"hf-distill {command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
