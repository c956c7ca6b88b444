"""The paper recipes' command lines (a config file plus overrides) and results files."""

from __future__ import annotations


def parse_recipe_args(cls, argv: list[str], training: dict | None = None, per_run: dict[str, str] | None = None):
    """A recipe's settings dataclass from its command line: one ``.json``/``.yaml`` file (also after
    ``--config``), options, or a file followed by options that override its values
    (``config.json --seeds 43``). A setting the dataclass lacks is refused, naming the file.

    With ``training`` (the recipe's own defaults for ``DistillationTrainingArguments`` fields, e.g.
    ``{"kd_weight": "auto"}``) it returns ``(settings, template)``: every KD setting and other training option,
    in the file or on the command line, goes to the template, declared once in ``DistillationTrainingArguments``;
    the recipe derives each run's arguments from it (``hf_distill.training.args.derive``). ``per_run`` maps
    template fields the caller sets per run to the option that sets them: giving one is refused (ValueError)."""
    import dataclasses
    import json

    from transformers import HfArgumentParser

    parser = HfArgumentParser(cls)
    if argv[:1] == ["--config"]:
        argv = argv[1:]
    if argv and argv[0].endswith((".json", ".yaml", ".yml")):
        path, argv = argv[0], argv[1:]
        with open(path, encoding="utf-8") as f:
            if path.endswith(".json"):
                values = json.load(f)
            else:
                import yaml

                values = yaml.safe_load(f)
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of settings, got {type(values).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        known = names | (_training_fields() if training is not None else set())
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path}: unknown settings {unknown}; {cls.__name__} has {sorted(names)}"
                             + (" (and DistillationTrainingArguments its own)" if training is not None else ""))
        training = None if training is None else {**training, **{k: v for k, v in values.items() if k not in names}}
        values = {k: v for k, v in values.items() if k in names}
        parser.set_defaults(**values)
        for action in parser._actions:  # a value from the file satisfies a required option
            if action.dest in values:
                action.required = False
    if training is None:
        (args,) = parser.parse_args_into_dataclasses(args=argv)
        return args
    from ..training.args import DistillationTrainingArguments

    (args, rest) = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    given = sorted({w.removeprefix("--").split("=")[0] for w in rest if w.startswith("--")} & set(per_run or ()))
    if given:
        raise ValueError(f"{', '.join('--' + g for g in given)} is set per run; use "
                         f"{', '.join(per_run[g] for g in given)}")
    template_parser = HfArgumentParser(DistillationTrainingArguments)
    template_parser.set_defaults(**{"output_dir": getattr(args, "output_dir", None), **training})
    (template,) = template_parser.parse_args_into_dataclasses(args=rest)
    return args, template


def _training_fields() -> set[str]:
    import dataclasses

    from ..training.args import DistillationTrainingArguments

    return {f.name for f in dataclasses.fields(DistillationTrainingArguments) if f.init}


def without_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option`` and the value that follows it (to record a command without, e.g.,
    ``--partial true``)."""
    out, skip = [], False
    for x in argv:
        if skip:
            skip = False
        elif x == option:
            skip = True
        else:
            out.append(x)
    return out


def write_results(path: str, out: dict, markdown: str) -> None:
    """``out`` as JSON at ``path`` and ``markdown`` beside it (``.md``), both written atomically."""
    import os

    from ..base import write_json_atomic, write_text_atomic

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_json_atomic(path, out)
    write_text_atomic(os.path.splitext(path)[0] + ".md", markdown)


def publish_results(out: dict, markdown: str, name: str, *, results_file: str | None, output_dir: str,
                    smoke: bool, results_dir: str) -> str:
    """Write a recipe's results as ``name``.json + .md: to ``results_file`` when given, else inside
    ``output_dir`` for smoke runs (tests never touch the committed results), else in ``results_dir``;
    print the Markdown and return the JSON path."""
    import os

    path = results_file or os.path.join(output_dir if smoke else results_dir, f"{name}.json")
    write_results(path, out, markdown)
    print(markdown, flush=True)
    return path


def recipe_teacher_base(teacher_base: str, extra_test: str | None = None) -> str:
    """The recipes' input checks: ``teacher_base`` given (``~`` expanded) and ``extra_test`` an existing file;
    exits with a one-line message otherwise."""
    import os

    teacher_base = os.path.expanduser(teacher_base or "")
    if not teacher_base:
        raise SystemExit("--teacher_base: the pretrained encoder to fine-tune (a model folder or Hub id)")
    if extra_test and not os.path.isfile(extra_test):
        raise SystemExit(f"--extra_test {extra_test}: no such file")
    return teacher_base
