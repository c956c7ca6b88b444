"""``hf-distill`` command line.

    hf-distill demo [--flags]                       fine-tune, cache, distill and compare (CoNLL-2003)
    hf-distill export MODEL_DIR [--quantize]        ONNX export validated against PyTorch
    hf-distill bench MODEL_DIR [--teacher DIR]      measure quality, FLOPs, sizes, latency -> efficiency.json
    hf-distill card MODEL_DIR [--repo_id ID]        write README.md from the measured records
    hf-distill push MODEL_DIR REPO_ID               upload in one commit (token: HF_TOKEN or the stored login)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from transformers import HfArgumentParser


def _demo(argv: list[str]) -> int:
    from .demo import DemoArguments, format_table, next_steps, run_demo

    (args,) = HfArgumentParser(DemoArguments).parse_args_into_dataclasses(args=argv)
    results = run_demo(args)
    print()
    print(format_table(results))
    print(f"\nlabeled sentences: {results['labeled_sentences']}; transfer sentences (labels dropped): "
          f"{results['transfer_sentences']}; dev: {results['dev_sentences']}; test: {results['test_sentences']}; "
          f"teacher caching: {results['cache_s']:.1f} s; torch threads: {results['threads']}")
    print(f"total: {results['wall_s'] / 60:.1f} min wall, {results['cpu_s'] / 60:.1f} min CPU\n")
    print(next_steps(results))
    return 0


def _eval_split(model_dir: str, dataset: str | None, split: str, data_dir: str | None, limit: int | None):
    from .bench import read_info
    from .data import load_dataset

    name = dataset or read_info(model_dir).get("dataset")
    if not name:
        raise SystemExit(f"{model_dir}: no distillation.json naming the dataset; pass --dataset")
    data = load_dataset(name, data_dir=data_dir)
    if split not in data:
        raise SystemExit(f"dataset {name!r} has no split {split!r} (has {sorted(data)})")
    part = data[split]
    return name, part.select(range(min(limit, len(part)))) if limit else part


def _data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", help="registry name or folder (default: the one in distillation.json)")
    p.add_argument("--split", default="test")
    p.add_argument("--data_dir", help="data root (default: $HF_DISTILL_DATA_DIR)")
    p.add_argument("--max_eval_samples", type=int)


def _export(argv: list[str]) -> int:
    from transformers import AutoTokenizer

    from .bench import encode_for, export_for_bench
    from .export import load_model

    p = argparse.ArgumentParser(prog="hf-distill export", description="ONNX export of a saved student or teacher, "
                                "validated against PyTorch on real sentences of several lengths.")
    p.add_argument("model_dir")
    p.add_argument("--output_dir", help="default: MODEL_DIR/onnx")
    p.add_argument("--quantize", action="store_true", help="add a dynamic int8 model_quantized.onnx")
    _data_flags(p)
    a = p.parse_args(argv)
    _, split = _eval_split(a.model_dir, a.dataset, a.split, a.data_dir, a.max_eval_samples or 200)
    model, tokenizer = load_model(a.model_dir), AutoTokenizer.from_pretrained(a.model_dir)
    rows = list(encode_for(model, tokenizer, split))
    report = export_for_bench(model, tokenizer, rows, a.output_dir or f"{a.model_dir}/onnx", a.quantize)
    print(json.dumps(report, indent=2))
    return 0


def _bench(argv: list[str]) -> int:
    from .bench import bench_student

    p = argparse.ArgumentParser(prog="hf-distill bench", description="Export and measure a saved student and its "
                                "teacher; writes MODEL_DIR/efficiency.json.")
    p.add_argument("model_dir")
    p.add_argument("--teacher", help="teacher folder (default: the one in distillation.json)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--no_quantize", action="store_true")
    p.add_argument("--teacher_epochs", type=float, help="the teacher's fine-tuning epochs, for the break-even point")
    _data_flags(p)
    a = p.parse_args(argv)
    name, split = _eval_split(a.model_dir, a.dataset, a.split, a.data_dir, a.max_eval_samples)
    result = bench_student(a.model_dir, split, teacher_dir=a.teacher, threads=a.threads, runs=a.runs,
                           quantize=not a.no_quantize, teacher_epochs=a.teacher_epochs, split_name=a.split,
                           dataset_name=name)
    s = result["student"]
    print(f"student: {s['pytorch']['latency_ms']:.2f} ms (PyTorch), "
          f"{s.get('onnx', {}).get('latency_ms', float('nan')):.2f} ms (ONNX); written to "
          f"{a.model_dir}/efficiency.json")
    return 0


def _card(argv: list[str]) -> int:
    from .cards import write_card

    p = argparse.ArgumentParser(prog="hf-distill card", description="Write MODEL_DIR/README.md from "
                                "efficiency.json and distillation.json.")
    p.add_argument("model_dir")
    p.add_argument("--repo_id", help="the Hub id the card names (default: the folder name)")
    p.add_argument("--base_model", help="the teacher's Hub id (default: the recorded teacher unless it is local)")
    a = p.parse_args(argv)
    print(write_card(a.model_dir, a.repo_id, base_model=a.base_model))
    return 0


def _push(argv: list[str]) -> int:
    from .hub import push_student_to_hub

    p = argparse.ArgumentParser(prog="hf-distill push", description="Upload a student folder (weights, config, "
                                "tokenizer, modeling code, ONNX, card) in one commit. The token comes from HF_TOKEN "
                                "or `hf auth login`; the endpoint from HF_ENDPOINT unless --endpoint.")
    p.add_argument("model_dir")
    p.add_argument("repo_id")
    p.add_argument("--endpoint")
    p.add_argument("--private", action="store_true")
    p.add_argument("--no_card", action="store_true", help="upload README.md as it is")
    p.add_argument("--base_model")
    p.add_argument("--commit_message", default="Upload distilled student (hf-distill)")
    a = p.parse_args(argv)
    info = push_student_to_hub(a.model_dir, a.repo_id, endpoint=a.endpoint, private=a.private or None,
                               card=not a.no_card, base_model=a.base_model, commit_message=a.commit_message)
    print(f"pushed {a.model_dir} to {a.repo_id}: {info.commit_url}")
    return 0


COMMANDS = {"demo": _demo, "export": _export, "bench": _bench, "card": _card, "push": _push}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: hf-distill {" + ",".join(COMMANDS) + "} [--help] [options]", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "datasets", "accelerate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
