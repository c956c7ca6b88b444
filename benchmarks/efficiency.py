"""Efficiency report (Swedish NER paper Table 4, IndoNLU Tables 7-8): quality, size, FLOPs, CPU latency and
throughput of a BERT-base reference, our teacher and distilled students, measured side by side in one run.

    HF_DISTILL_DATA_DIR=../shared/data python benchmarks/efficiency.py \
        --student outputs/recipes/conll2003-charcnn/model \
        [--extra "MiniLM 2 layers (KD)=outputs/foundation/student_kd_kl/model"]

The main student is benchmarked with ``hf_distill.shipping.bench.bench_student`` (its ``efficiency.json`` and
model card are written into its folder); ``--extra`` students are measured the same way. BERT-base has
random weights (latency, size and FLOPs only: no F1). Everything runs on 1 CPU thread. Writes
benchmarks/results/efficiency/efficiency.json, efficiency.md and efficiency.png (F1 against ONNX latency).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

import torch
from common import study_dir
from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

from hf_distill import load_dataset
from hf_distill.shipping.bench import bench_student, encode_for, export_for_bench, measure_model, read_info
from hf_distill.shipping.cards import write_card
from hf_distill.shipping.efficiency import training_flops
from hf_distill.shipping.export import load_model

RESULTS = study_dir("efficiency")  # this study's folder under benchmarks/results/


def measure_dir(model_dir: str, split, runs: int, quality: bool = True, model=None, tokenizer=None) -> dict:
    model = model if model is not None else load_model(model_dir)
    tokenizer = tokenizer or AutoTokenizer.from_pretrained(model_dir)
    rows = list(encode_for(model, tokenizer, split))
    with tempfile.TemporaryDirectory() as onnx_dir:
        export_for_bench(model, tokenizer, rows, onnx_dir, quantize=True)
        return measure_model(model, tokenizer, rows if quality else rows[:200], onnx_dir, model_dir, runs=runs,
                             quality=quality)


def summarize(name: str, r: dict, examples_seen: int | None) -> dict:
    f1 = {k: r[k].get("f1") for k in ("pytorch", "onnx", "onnx_int8") if k in r}
    return {"name": name, "params": r["params"], "embedding_share": r["embedding_share"], "flops": r["flops"],
            "training_flops": training_flops(r["flops"], examples_seen) if examples_seen else None,
            "f1": f1, "latency_ms": {k: r[k]["latency_ms"] for k in ("pytorch", "onnx", "onnx_int8") if k in r},
            "sentences_per_s": {k: r[k]["sentences_per_s"] for k in ("pytorch", "onnx", "onnx_int8") if k in r},
            "size_mb": {k: r.get(k) for k in ("safetensors_mb", "onnx_mb", "onnx_int8_mb")}}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--student", required=True, help="student folder written by a recipe (with distillation.json)")
    p.add_argument("--extra", nargs="*", default=[], help="more saved students ([NAME=]PATH) to place on the plot")
    p.add_argument("--data_dir", default=None)
    p.add_argument("--teacher_epochs", type=float, default=2.0, help="the teacher's fine-tuning epochs")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--max_eval_samples", type=int, default=None)
    p.add_argument("--results_name", default="efficiency")
    p.add_argument("--name", default=None, help="the main student's name in the table (default: family (KD))")
    p.add_argument("--render_only", action="store_true", help="redo the Markdown, plot and card from the JSON")
    p.add_argument("--base_model", default="sentence-transformers/all-MiniLM-L6-v2",
                   help="the Hub model the (local) teacher was fine-tuned from, for the card's base_model")
    args = p.parse_args(argv)
    if args.render_only:
        with open(os.path.join(RESULTS, args.results_name + ".json")) as f:
            write(json.load(f), args.results_name)
        write_main_card(args)
        return
    raw = load_dataset("conll2003", data_dir=args.data_dir)
    test = raw["test"]
    if args.max_eval_samples:
        test = test.select(range(args.max_eval_samples))
    n_train = len(raw["train"])

    main_eff = bench_student(args.student, test, runs=args.runs, teacher_epochs=args.teacher_epochs,
                             dataset_name="conll2003")
    info = read_info(args.student)
    teacher_dir = info["teacher"]
    rows = [summarize("teacher (all-MiniLM-L6-v2 fine-tuned)", main_eff["teacher"],
                      int(args.teacher_epochs * n_train))]
    main_name = args.name or f"{info.get('student_family', 'student')} (KD)"
    rows.append(summarize(main_name, main_eff["student"], int(info["num_train_epochs"] * n_train)))
    for spec in args.extra:
        name, _, extra = spec.rpartition("=")
        epochs = read_info(extra).get("num_train_epochs")
        rows.append(summarize(name or extra, measure_dir(extra, test, args.runs),
                              int(epochs * n_train) if epochs else None))

    torch.manual_seed(0)
    bert = BertForTokenClassification(BertConfig(num_labels=9)).eval()  # bert-base-uncased shape, random weights
    base = summarize("BERT-base (random weights)", measure_dir("", test, args.runs, quality=False, model=bert,
                                                               tokenizer=AutoTokenizer.from_pretrained(teacher_dir)),
                     None)
    rows.insert(0, base)

    teacher_f1 = rows[1]["f1"]["pytorch"]
    candidates = [(r, kind) for r in rows[2:] for kind in ("onnx", "onnx_int8")
                  if r["f1"].get(kind) is not None and r["f1"][kind] >= teacher_f1 - 0.03]
    result = {"rows": rows, "teacher_f1": teacher_f1, "threads": 1, "runs": args.runs, "test_sentences": len(test),
              "break_even": main_eff.get("break_even"), "onnx_max_abs_diff": main_eff.get("onnx_max_abs_diff"),
              "command": "HF_DISTILL_DATA_DIR=../shared/data python benchmarks/efficiency.py " + " ".join(argv)}
    if candidates:  # the fastest ONNX model (fp32 or int8) whose own measured F1 is within 3 of the teacher's
        best, kind = min(candidates, key=lambda c: c[0]["latency_ms"][c[1]])
        result["best_student"] = {
            "name": best["name"], "onnx_variant": kind, "f1": best["f1"][kind],
            "f1_gap_to_teacher": teacher_f1 - best["f1"][kind], "latency_ms": best["latency_ms"][kind],
            "speedup_vs_bert_base_pytorch": base["latency_ms"]["pytorch"] / best["latency_ms"][kind],
            "speedup_vs_bert_base_onnx": base["latency_ms"]["onnx"] / best["latency_ms"][kind],
            "speedup_vs_teacher_pytorch": rows[1]["latency_ms"]["pytorch"] / best["latency_ms"][kind]}
    write(result, args.results_name)
    write_main_card(args)
    print(json.dumps(result.get("best_student"), indent=2))


def write_main_card(args) -> None:
    """The main student's model card (from its efficiency.json), with a copy under results/."""
    card = write_card(args.student, "hf-distill/" + os.path.basename(os.path.dirname(os.path.abspath(args.student))),
                      base_model=args.base_model)
    shutil.copyfile(card, os.path.join(RESULTS, f"{args.results_name}_card.md"))


def write(result: dict, name: str) -> None:
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name)
    with open(path + ".json.tmp", "w") as f:
        json.dump(result, f, indent=2)
    os.replace(path + ".json.tmp", path + ".json")

    def pct(x):
        return "" if x is None else f"{100 * x:.2f}"

    def ms(r, k):
        return f"{r['latency_ms'][k]:.2f}" if k in r["latency_ms"] else ""

    md = ["# Efficiency on CoNLL-2003 (test split)", "", f"Command: `{result['command']}`  ",
          f"CPU, {result['threads']} thread; latency: one sentence per call, mean over {result['runs']} test "
          "sentences after warm-up; throughput: batches of 32. FLOPs: one example of 128 tokens (words for "
          "word-level students, 15 characters each); training FLOPs = 3 x FLOPs x examples seen.", "",
          "| model | F1 PyTorch | F1 ONNX | F1 int8 | params | emb. share | GFLOPs | train PFLOPs | ms PyTorch "
          "| ms ONNX | ms int8 | sent/s ONNX | MB safetensors | MB ONNX | MB int8 |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        size = r["size_mb"]
        md.append(" | ".join([
            f"| {r['name']}", pct(r["f1"].get("pytorch")), pct(r["f1"].get("onnx")), pct(r["f1"].get("onnx_int8")),
            f"{r['params'] / 1e6:.2f}M", f"{r['embedding_share']:.2f}", f"{r['flops'] / 1e9:.3g}",
            f"{r['training_flops'] / 1e15:.3g}" if r["training_flops"] else "", ms(r, "pytorch"), ms(r, "onnx"),
            ms(r, "onnx_int8"), f"{r['sentences_per_s'].get('onnx', 0):.0f}",
            *(f"{size[k]:.1f}" if size.get(k) else "" for k in ("safetensors_mb", "onnx_mb", "onnx_int8_mb"))]) + " |")
    best = result.get("best_student")
    md.append("")
    if best:
        md.append(f"Best student within 3 F1 of the teacher ({100 * result['teacher_f1']:.2f}): **{best['name']}** "
                  f"({best['onnx_variant']}, F1 {100 * best['f1']:.2f}), {100 * best['f1_gap_to_teacher']:.2f} F1 "
                  f"below it; its latency ({best['latency_ms']:.2f} ms) is "
                  f"{best['speedup_vs_bert_base_pytorch']:.0f}x below BERT-base in PyTorch, "
                  f"{best['speedup_vs_bert_base_onnx']:.0f}x below BERT-base in ONNX and "
                  f"{best['speedup_vs_teacher_pytorch']:.0f}x below the teacher in PyTorch.")
    else:
        md.append(f"No student is within 3 F1 of the teacher ({100 * result['teacher_f1']:.2f}).")
    if result.get("break_even"):
        b = result["break_even"]
        md.append(f"\nBreak-even of distillation: {b['inferences']:,} inferences repay the teacher's fine-tuning "
                  f"({b['teacher_epochs']} epochs) and caching ({b['extra_flops']:.3g} FLOPs).")
    with open(path + ".md", "w") as f:
        f.write("\n".join(md) + "\n")
    plot(result, path + ".png")


def plot(result: dict, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plot", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    markers = {"pytorch": "o", "onnx": "s", "onnx_int8": "^"}
    for i, r in enumerate(result["rows"][1:]):
        color = f"C{i}"
        for kind, marker in markers.items():
            if kind in r["latency_ms"] and r["f1"].get(kind) is not None:
                ax.scatter(r["latency_ms"][kind], 100 * r["f1"][kind], marker=marker, color=color,
                           label=f"{r['name']}, {kind}")
    base = result["rows"][0]
    for kind in ("pytorch", "onnx"):
        ax.axvline(base["latency_ms"][kind], linestyle="--", linewidth=0.8, color="grey")
        ax.text(base["latency_ms"][kind], 100 * result["teacher_f1"], f" BERT-base {kind}", fontsize=7,
                rotation=90, va="top")
    ax.legend(fontsize=6, loc="lower left")
    ax.set_xscale("log")
    ax.set_xlabel("CPU latency per sentence, 1 thread (ms, log scale)")
    ax.set_ylabel("test F1 (CoNLL-2003)")
    ax.set_title("F1 against latency")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1:])
