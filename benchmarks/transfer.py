"""Does distillation pay? CoNLL-2003 in the demo's low-label setting, over student seeds.

One teacher (fine-tuned on the demo's labeled slice, early stopping on dev) and its cache are prepared once;
then workers (one per core) take the (seed, run) jobs in turn: student without KD, with KD on the labeled rows,
with KD on labeled + transfer rows (the rest of train, gold labels dropped). Each finished job is written to
``benchmarks/results/transfer/runs/`` at once, so a killed run resumes where it stopped; ``--aggregate``
writes ``benchmarks/results/transfer/transfer.json`` (the ``conll2003`` section) and ``transfer.md``.

    export HF_DISTILL_DATA_DIR=../shared/data OMP_NUM_THREADS=1
    python benchmarks/transfer.py --stage teacher                           # teacher + cache, once
    taskset -c 0 python benchmarks/transfer.py --stage worker --threads 1 &   # one worker per core
    taskset -c 1 python benchmarks/transfer.py --stage worker --threads 1 &
    python benchmarks/transfer.py --stage aggregate

Demo settings (``DemoArguments``) are passed through after ``--``, e.g. ``-- --student_epochs 20``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch
from common import HERE, default_teacher_path, load_demo, study_dir
from transformers import AutoTokenizer

from hf_distill.base import write_json_atomic
from hf_distill.students import count_parameters

RESULTS = study_dir("transfer")  # this study's folder under benchmarks/results/

RUNS_DIR = os.path.join(RESULTS, "runs")
SEEDS = (42, 43, 44)


_demo = load_demo()
RUNS = _demo.RUNS
DemoArguments = _demo.DemoArguments
cache_for_students = _demo.cache_for_students
evaluate = _demo.evaluate
get_teacher = _demo.get_teacher
latency = _demo.latency
prepare_data = _demo.prepare_data
train_student = _demo.train_student


def _say(text: str) -> None:
    print(f"[transfer {time.strftime('%H:%M:%S')}] {text}", flush=True)


def setup(demo: DemoArguments):
    teacher_path = demo.teacher or default_teacher_path()
    tokenizer = AutoTokenizer.from_pretrained(teacher_path)
    data, label_names, info = prepare_data(demo, tokenizer)
    teacher, timing = get_teacher(demo, teacher_path, data, tokenizer, label_names, _say)
    cached = cache_for_students(demo, teacher, data, tokenizer)
    return tokenizer, data, label_names, info, teacher, timing, cached


def _prefix(tag: str | None) -> str:
    """File prefix of one setting's runs: the default low-label setting, or a named variant (``--tag``)."""
    return "conll2003" + (f"_{tag}" if tag else "")


def _settings(demo: DemoArguments, template) -> dict:
    return {**{k: getattr(demo, k) for k in ("max_train_samples", "transfer_samples", "labeled_temperature",
                                             "patience", "student_epochs", "transfer_epochs", "student_layers",
                                             "student_learning_rate", "bf16", "freeze_student_embeddings")},
            **{k: getattr(template, k) for k in ("kd_loss", "temperature", "kd_weight")}}


def stage_teacher(demo: DemoArguments, tag: str | None = None) -> None:
    tokenizer, data, label_names, info, teacher, timing, _ = setup(demo)
    record = {**info, "teacher": {**evaluate(teacher, data["test"], tokenizer, label_names),
                                  **count_parameters(teacher), **latency(teacher, data["test"], tokenizer, 50),
                                  **timing}}
    os.makedirs(RUNS_DIR, exist_ok=True)
    write_json_atomic(os.path.join(RUNS_DIR, f"{_prefix(tag)}_teacher.json"), record)
    _say(f"teacher test F1 {100 * record['teacher']['f1']:.2f}; cache ready")


def _claim(path: str) -> bool:
    """Take a job: create its claim file, or take over one whose process is gone."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            pid = int(open(path).read().strip() or 0)
            os.kill(pid, 0)
            return False
        except (ValueError, ProcessLookupError):
            os.remove(path)
            return _claim(path)
        except PermissionError:
            return False
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return True


def stage_worker(demo: DemoArguments, template, seeds, runs, tag: str | None = None) -> None:
    tokenizer, data, label_names, _, teacher, _, cached = setup(demo)
    os.makedirs(RUNS_DIR, exist_ok=True)
    # the slow transfer runs first, so the two workers finish close together
    jobs = [(s, r) for r in sorted(runs, key=lambda r: not RUNS[r][1]) for s in seeds]
    for seed, run in jobs:
        out = os.path.join(RUNS_DIR, f"{_prefix(tag)}_seed{seed}_{run}.json")
        claim = out + ".claim"
        if os.path.exists(out) or not _claim(claim):
            continue
        try:
            r = train_student(demo, run, seed, teacher, data, cached, tokenizer, label_names, data["test"], _say,
                              name=f"student_{run}_seed{seed}" + (f"_{tag}" if tag else ""), template=template)
            r["threads"] = torch.get_num_threads()
            r["settings"] = _settings(demo, template)
            write_json_atomic(out, r)
        finally:
            os.remove(claim)


def aggregate_variant(command: str, tag: str) -> dict:
    """One variant setting (``--tag``): the runs it has, per seed, and their means, in ``transfer.json``'s
    ``variants`` (the full-data setting goes to ``foundation.json`` instead: ``benchmarks/foundation.py``)."""
    runs, settings = {}, None
    for seed in SEEDS:
        for run in RUNS:
            path = os.path.join(RUNS_DIR, f"{_prefix(tag)}_seed{seed}_{run}.json")
            if os.path.isfile(path):
                with open(path) as f:
                    r = json.load(f)
                runs.setdefault(run, {})[seed] = r["f1"]
                settings = r.get("settings", settings)
    variant = {"settings": settings, "command": command, "f1": runs,
               "mean": {r: statistics.mean(v.values()) for r, v in runs.items()},
               "seeds": {r: sorted(v) for r, v in runs.items()}}
    path = os.path.join(RESULTS, "transfer.json")
    out = json.load(open(path)) if os.path.isfile(path) else {}
    out.setdefault("variants", {})[tag] = variant
    write_json_atomic(path, out)
    render(out)
    return out


def stage_aggregate(command: str, tag: str | None = None, main: bool = False) -> dict:
    """The main ``conll2003`` section from the untagged runs, or from ``tag``'s runs with ``main`` (a setting
    that became the demo's defaults); without ``main`` a tagged setting is a variant beside the main one."""
    if tag and not main:
        return aggregate_variant(command, tag)
    prefix = _prefix(tag)
    with open(os.path.join(RUNS_DIR, f"{prefix}_teacher.json")) as f:
        teacher = json.load(f)
    seeds = []
    for seed in SEEDS:
        row = {"seed": seed}
        for run in RUNS:
            path = os.path.join(RUNS_DIR, f"{prefix}_seed{seed}_{run}.json")
            if os.path.isfile(path):
                with open(path) as f:
                    row[run] = json.load(f)
        seeds.append(row)
    complete = [s for s in seeds if all(r in s for r in RUNS)]
    mean = {r: statistics.mean(s[r]["f1"] for s in complete) for r in RUNS} if complete else {}
    sd = {r: statistics.stdev(s[r]["f1"] for s in complete) for r in RUNS} if len(complete) > 1 else {}
    conll = {
        "labeled": teacher["labeled_sentences"], "transfer": teacher["transfer_sentences"],
        "teacher_f1": teacher["teacher"]["f1"],
        "seeds": [{"seed": s["seed"], **{r: s[r]["f1"] for r in RUNS if r in s}} for s in seeds],
        "mean": mean, "sd": sd, "complete_seeds": len(complete), "run_files": f"transfer_runs/{prefix}_*.json",
        "details": {"teacher": teacher, "runs": seeds},
    }
    path = os.path.join(RESULTS, "transfer.json")
    out = json.load(open(path)) if os.path.isfile(path) else {}
    out["conll2003"] = conll
    if tag:
        out.get("variants", {}).pop(tag, None)
    out.setdefault("commands", {})["conll2003"] = command
    out["command"] = " && ".join(out["commands"].values())
    write_json_atomic(path, out)
    render(out)
    return out


def archive_main(label: str, note: str) -> dict:
    """Move the main ``conll2003`` section and its variants (same teacher) to ``previous[label]``: the record of
    earlier demo defaults, before another setting's runs become the main section (the aggregate that follows
    renders the report)."""
    path = os.path.join(RESULTS, "transfer.json")
    with open(path) as f:
        out = json.load(f)
    if "conll2003" not in out:
        raise SystemExit(f"{path} has no conll2003 section to archive")
    if label in out.get("previous", {}):
        raise SystemExit(f"{path} already has previous[{label!r}]: choose another label")
    out.setdefault("previous", {})[label] = {
        "note": note, "conll2003": out.pop("conll2003"), "variants": out.pop("variants", {}),
        "command": out.get("commands", {}).get("conll2003")}
    write_json_atomic(path, out)
    return out


EMOTION_DIR = "outputs/transfer/emotion"


def _variant(folder: str) -> dict:
    with open(os.path.join(folder, "results.json")) as f:
        r = json.load(f)
    c = r["config"]
    return {"folder": folder, "copies": c["augment_copies"], "temperature": c["temperature"],
            "shape": f"{c['vocab_size']} x {c['embedding_dim']}, hidden {c['hidden_size']}"
                     + (f", {c['pooling'].replace('_', '+')} pooling" if c.get("pooling", "mean") != "mean" else ""),
            "params": r["mlp_kd_transfer"]["params"], "kd_loss": c.get("kd_loss", "kl"),
            "dev_acc": r["mlp_kd_transfer"]["dev_accuracy"], "test_acc": r["mlp_kd_transfer"]["accuracy"],
            "kd_dev_acc": r["mlp_kd"]["dev_accuracy"], "kd_test_acc": r["mlp_kd"]["accuracy"],
            "command": r.get("command")}


EMOTION_SCORES = ("mlp_acc", "mlp_kd_acc", "mlp_kd_transfer_acc")


def _seed_runs(main: dict, folders: list[str]) -> list[dict]:
    """Per-seed accuracies of the main setting: its own run and the runs in ``folders``, which must have been
    run with the same settings apart from ``seed`` (and their output folder)."""
    def same(c):
        return {k: v for k, v in c.items() if k not in ("seed", "output_dir")}

    runs = [main]
    for folder in folders:
        with open(os.path.join(folder, "results.json")) as f:
            runs.append(json.load(f))
        if same(runs[-1]["config"]) != same(main["config"]):
            raise SystemExit(f"{folder} was run with other settings than the main emotion run (apart from seed)")
    seeds = [x["config"]["seed"] for x in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"two emotion runs have the same seed: {seeds}")
    return [{"seed": x["config"]["seed"], "mlp_acc": x["mlp"]["accuracy"], "mlp_kd_acc": x["mlp_kd"]["accuracy"],
             "mlp_kd_transfer_acc": x["mlp_kd_transfer"]["accuracy"], "command": x.get("command")} for x in runs]


def stage_emotion(recipe_argv: list[str], run: bool = True, folder: str = EMOTION_DIR,
                  variants: list[str] | None = None, seed_folders: list[str] | None = None) -> dict:
    """Run the emotion recipe (a separate script: benchmarks never import recipes) and merge its results.
    ``variants``: result folders of other recipe settings, listed beside it (the main one is chosen by the
    validation accuracy of MLP + KD + transfer). ``seed_folders``: the main setting run with other seeds; the
    accuracies (and the targets) are then means over the seeds."""
    import subprocess

    recipe = os.path.join(os.path.dirname(HERE), "recipes", "emotion_mlp", "distill_emotion.py")
    argv = ["--output_dir", folder, *recipe_argv]
    if run:
        subprocess.run([sys.executable, recipe, *argv], check=True)
    found = [_variant(f) for f in [folder, *(variants or [])]]
    best = max(found, key=lambda v: v["dev_acc"])
    if best["folder"] != folder:
        raise SystemExit(f"{best['folder']} has the best validation accuracy ({best['dev_acc']:.4f}): merge it "
                         f"with --emotion_dir {best['folder']}")
    with open(os.path.join(folder, "results.json")) as f:
        r = json.load(f)
    emotion = {"tfidf_lr_acc": r["tfidf_lr"]["accuracy"], "mlp_acc": r["mlp"]["accuracy"],
               "teacher_acc": r["teacher"]["accuracy"], "mlp_kd_acc": r["mlp_kd"]["accuracy"],
               "mlp_kd_transfer_acc": r["mlp_kd_transfer"]["accuracy"], "details": r, "variants": found}
    if seed_folders:
        per_seed = _seed_runs(r, seed_folders)
        emotion.update({k: statistics.mean(p[k] for p in per_seed) for k in EMOTION_SCORES})
        emotion["seeds"] = per_seed
    path = os.path.join(RESULTS, "transfer.json")
    out = json.load(open(path)) if os.path.isfile(path) else {}
    out["emotion"] = emotion
    out.setdefault("commands", {})["emotion"] = (
        r.get("command") if not run else ("python benchmarks/transfer.py --stage emotion -- "
                                          + " ".join(recipe_argv)).strip())
    out["command"] = " && ".join(out["commands"].values())
    write_json_atomic(path, out)
    render(out)
    return out


def _emotion_md(e: dict) -> list[str]:
    r = e["details"]
    rows = ["| model | test accuracy | macro-F1 | params | latency ms/text | epochs (best) |",
            "|---|---|---|---|---|---|"]
    for key, label in (("tfidf_lr", "TF-IDF (1-2 grams) + logistic regression"), ("mlp", "MLP, no KD"),
                       ("teacher", "teacher: all-MiniLM-L6-v2 fine-tuned"), ("mlp_kd", "MLP + KD (labeled rows)"),
                       ("mlp_kd_transfer", "MLP + KD + augmented transfer set")):
        x = r[key]
        lat = f"{x['latency_ms']:.3f}" if "latency_ms" in x else "-"
        ep = f"{x['epochs_run']} ({x['best_epoch']:.0f})" if x.get("best_epoch") else "-"
        rows.append(f"| {label} | {100 * x['accuracy']:.2f} | {100 * x['macro_f1']:.2f} | {x['params']:,} | {lat} "
                    f"| {ep} |")
    rows.append(f"| Intel's blog: TF-IDF + LR / MLP | {100 * r['blog']['tfidf_lr_acc']:.1f} / "
                f"{100 * r['blog']['mlp_acc']:.0f} | | | | |")
    t = r["transfer"]
    rows += ["", f"Transfer set: {t['copies']} augmented copies of each training text ({t['operators']} operators), "
             f"{t['rows_in']} generated, {t['rows_out']} kept (removed: {t['filtered']})."]
    if len(e.get("variants", [])) > 1:
        rows += ["", "Recipe settings tried (the table above is the one with the best validation accuracy of "
                 "MLP + KD + transfer; same fine-tuned teacher):", "",
                 "| augmented copies | KD loss | T | MLP: vocabulary x dim, hidden (params) | KD + transfer: "
                 "validation / test | KD (labeled): validation / test |", "|---|---|---|---|---|---|"]
        rows += [f"| {v['copies']} | {v.get('kd_loss', 'kl')} | {v['temperature']:g} | "
                 f"{v.get('shape', '5000 x 16, hidden 16')} "
                 f"({v.get('params', 80374):,}) | {100 * v['dev_acc']:.2f} / {100 * v['test_acc']:.2f} | "
                 f"{100 * v['kd_dev_acc']:.2f} / {100 * v['kd_test_acc']:.2f} |" for v in e["variants"]]
    seeds = e.get("seeds") or []
    if len(seeds) > 1:
        rows += ["", f"The same setting over {len(seeds)} seeds (each seed draws its own augmented copies and student "
                 "initialization; the table above is the first seed's run):", "",
                 "| seed | MLP, no KD | MLP + KD | MLP + KD + transfer |", "|---|---|---|---|"]
        rows += [f"| {p['seed']} | {100 * p['mlp_acc']:.2f} | {100 * p['mlp_kd_acc']:.2f} | "
                 f"{100 * p['mlp_kd_transfer_acc']:.2f} |" for p in seeds]
        cells = [f"{100 * statistics.mean(p[k] for p in seeds):.2f} ± {100 * statistics.stdev(p[k] for p in seeds):.2f}"
                 for k in EMOTION_SCORES]
        rows.append(f"| mean ± s.d. | {' | '.join(cells)} |")
    on = f" (means over {len(seeds)} seeds)" if len(seeds) > 1 else ""
    rows += ["", f"| target{on} | measured | met |", "|---|---|---|"]
    kt = e["mlp_kd_transfer_acc"]
    for label, diff, need in (("MLP + KD + transfer ≥ TF-IDF + LR", kt - e["tfidf_lr_acc"], 0.0),
                              ("MLP + KD + transfer ≥ MLP + 2 points", kt - e["mlp_acc"], 0.02),
                              ("MLP + KD + transfer within 3 points of the teacher", kt - e["teacher_acc"], -0.03)):
        rows.append(f"| {label} | {100 * diff:+.2f} | {'yes' if diff >= need else 'no'} |")
    return rows


def _temperatures(st: dict) -> tuple:
    """(T of the labeled-only KD run, T of the KD + transfer run) of a run's recorded settings (runs before
    ``labeled_temperature`` existed used ``temperature`` for both)."""
    t = st.get("temperature", 1.0)  # runs recorded before their settings were stored used the default T=1
    labeled = st.get("labeled_temperature")
    return (t if labeled is None else labeled), t


def _run_settings(c: dict, run: str) -> dict:
    return next((s[run].get("settings") or {} for s in c["details"]["runs"] if run in s), {})


def _f(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _settings_text(c: dict) -> str:
    st = _run_settings(c, "kd_transfer") or _run_settings(c, "kd")
    precision = "bf16 autocast" if st.get("bf16") else "float32"
    emb = "frozen" if st.get("freeze_student_embeddings") else "trained"
    return f"Training in {precision}; the student's word embeddings (copied from the teacher) {emb}."


def _conll_md(c: dict, variants: dict, command: str, heading: str) -> list[str]:
    """The Markdown of one CoNLL-2003 low-label section: per-seed table, targets, runs, variants."""
    md = []
    if c:
        t = c["details"]["teacher"]
        md += [
            heading, "",
            f"Command: `{command}`", "",
            f"Teacher: all-MiniLM-L6-v2 fine-tuned on the first {c['labeled']} train sentences (early stopping on "
            f"dev, {t['teacher'].get('epochs_run')} epochs, best {t['teacher'].get('best_epoch')}): test F1 "
            f"{_f(c['teacher_f1'])}. Student: the teacher's first 2 layers. Transfer set: the other "
            f"{c['transfer']} train sentences with their gold labels dropped (filters: "
            f"{t.get('transfer', {}).get('filtered')}). KD: KL, kd_weight=auto, T="
            f"{_temperatures(_run_settings(c, 'kd'))[0]:g} on the labeled rows only and T="
            f"{_temperatures(_run_settings(c, 'kd_transfer'))[1]:g} on labeled + transfer rows (the demo's "
            "`labeled_temperature` and `temperature`). Every student trains "
            "to convergence: early stopping on dev F1 (patience 2), best checkpoint restored; test F1 is "
            "seqeval strict IOB2 on the full test split. One torch thread per run, two runs at a time. "
            + _settings_text(c), "",
            "| seed | no KD | KD (labeled only) | KD + transfer |", "|---|---|---|---|",
        ]
        for s in c["seeds"]:
            md.append(f"| {s['seed']} | {_f(s.get('no_kd'))} | {_f(s.get('kd'))} | {_f(s.get('kd_transfer'))} |")
        if c["mean"]:
            m, sd = c["mean"], c.get("sd", {})
            md.append(f"| mean ± s.d. ({c['complete_seeds']} seeds) | "
                      + " | ".join(f"{_f(m[r])} ± {100 * sd.get(r, 0):.2f}" for r in RUNS) + " |")
            md += ["", "| target | measured | met |", "|---|---|---|"]
            rows = [("KD + transfer ≥ no KD + 4.0", m["kd_transfer"] - m["no_kd"], 0.04),
                    ("KD + transfer ≥ KD (labeled only) + 1.5", m["kd_transfer"] - m["kd"], 0.015),
                    ("KD + transfer within 1.0 of the teacher", m["kd_transfer"] - c["teacher_f1"], -0.01),
                    ("KD (labeled only) ≥ no KD", m["kd"] - m["no_kd"], 0.0)]
            for label, diff, need in rows:
                md.append(f"| {label} | {100 * diff:+.2f} | {'yes' if diff >= need else 'no'} |")
            gap, noise = m["kd"] - m["no_kd"], max(sd.get("kd", 0), sd.get("no_kd", 0))
            paired = [s["kd"] - s["no_kd"] for s in c["seeds"] if "kd" in s and "no_kd" in s]
            wins = (f" KD is above no KD on {sum(d > 0 for d in paired)} of {len(paired)} seeds (paired "
                    f"differences {', '.join(f'{100 * d:+.2f}' for d in paired)}).") if paired else ""
            if abs(gap) < noise:
                md += ["", f"KD on the labeled rows only is within the seed noise of no KD ({100 * gap:+.2f} F1, "
                       f"s.d. up to {100 * noise:.2f}): the gain comes from the transfer rows.{wins}"]
            else:
                md += ["", f"KD on the labeled rows only: {100 * gap:+.2f} F1 over no KD.{wins}"]
        md += ["", "| run (seed) | rows | epochs run (best) | train wall s | train CPU s | latency ms |",
               "|---|---|---|---|---|---|"]
        for s in c["details"]["runs"]:
            for r in RUNS:
                if r in s:
                    x = s[r]
                    md.append(f"| {r} ({s['seed']}) | {x['train_rows']} | {x['epochs_run']} ({x['best_epoch']}) "
                              f"| {x['train_s']:.0f} | {x['train_cpu_s']:.0f} | {x.get('latency_ms', 0):.2f} |")
    if c and variants:
        md += ["", "### KD on the labeled rows only: other settings (same teacher, same seeds)", "",
               "| variant | settings | no KD (default) | KD | KD per seed | KD + transfer | KD − no KD |",
               "|---|---|---|---|---|---|---|"]
        base = c["mean"]
        for tag, v in sorted(variants.items()):
            st = v.get("settings") or {}
            m = v["mean"]
            diff = m["kd"] - base["no_kd"] if "kd" in m and base else None
            t_kd, t_tr = _temperatures(st)
            # runs recorded before their settings were stored used the defaults of the time
            md.append(f"| {tag} | T={t_kd:g} (labeled) / {t_tr:g} (transfer), kd_weight={st.get('kd_weight', 'auto')}, "
                      f"patience={st.get('patience', 2)} ({len(v['seeds'].get('kd', []))} seeds) "
                      f"| {_f(base.get('no_kd'))} "
                      f"| {_f(m.get('kd'))} | "
                      + " / ".join(f"{s}: {_f(x)}" for s, x in sorted(v["f1"].get("kd", {}).items()))
                      + f" | {_f(m.get('kd_transfer'))}"
                      + (f" ({len(v['seeds']['kd_transfer'])} seed(s); default T=1 on the same seeds: "
                         + ", ".join(_f(c["seeds"][i].get("kd_transfer")) for i, sd in enumerate(SEEDS)
                                     if str(sd) in map(str, v["seeds"]["kd_transfer"])) + ")"
                         if "kd_transfer" in v["seeds"] else "") + " | "
                      f"{'-' if diff is None else f'{100 * diff:+.2f}'} |")
    return md


def render(out: dict) -> None:
    """transfer.md from transfer.json."""
    md = ["# Does distillation pay? Transfer sets", ""]
    md += _conll_md(out.get("conll2003"), out.get("variants"), out.get("commands", {}).get("conll2003"),
                    "## CoNLL-2003, low-label setting (the demo's defaults)")
    e = out.get("emotion")
    if e:
        md += ["", "## emotion (sequence classification, after Intel's blog)", "",
               f"Command: `{out['commands']['emotion']}`", "", *_emotion_md(e)]
    for label, prev in out.get("previous", {}).items():
        md += ["", *_conll_md(prev["conll2003"], prev.get("variants"), prev.get("command"),
                              f"## CoNLL-2003, low-label setting: earlier defaults ({label})")]
        if prev.get("note"):
            md += ["", prev["note"]]
    with open(os.path.join(RESULTS, "transfer.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


def main(argv: list[str]) -> None:
    if "--" in argv:
        i = argv.index("--")
        argv, demo_argv = argv[:i], argv[i + 1:]
    else:
        demo_argv = []
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=("teacher", "worker", "aggregate", "emotion"), required=True)
    p.add_argument("--merge_only", action="store_true", help="emotion: merge an existing results.json")
    p.add_argument("--emotion_dir", default=EMOTION_DIR, help="emotion: the recipe's output folder")
    p.add_argument("--emotion_variants", nargs="*", default=[], help="emotion: other settings' output folders, "
                                                                    "listed beside it")
    p.add_argument("--emotion_seeds", nargs="*", default=[], help="emotion: output folders of the main setting run "
                                                                  "with other --seed values (means over seeds)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--tag", default=None, help="name of a variant setting (its own run files; demo flags after --)")
    p.add_argument("--main", action="store_true", help="aggregate: the tagged runs are the main section (a setting "
                                                       "that became the demo's defaults)")
    p.add_argument("--archive", default=None, metavar="LABEL", help="aggregate: first move the main section and "
                                                                    "its variants to previous[LABEL]")
    p.add_argument("--archive_note", default="", help="aggregate: what distinguished the archived setting")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.stage == "emotion":
        stage_emotion(demo_argv, run=not a.merge_only, folder=a.emotion_dir, variants=a.emotion_variants,
                      seed_folders=a.emotion_seeds)
        return
    demo, template = _demo.parse_demo_args(["--output_dir", "outputs/transfer", "--quiet", "false", *demo_argv])
    command = "HF_DISTILL_DATA_DIR=../shared/data python benchmarks/transfer.py --stage teacher|worker|aggregate"
    if a.tag:
        command += f" --tag {a.tag}"
    if demo_argv:
        command += " -- " + " ".join(demo_argv)
    if a.stage == "teacher":
        stage_teacher(demo, a.tag)
    elif a.stage == "worker":
        stage_worker(demo, template, a.seeds, a.runs, a.tag)
    else:
        if a.archive:
            archive_main(a.archive, a.archive_note)
        stage_aggregate(command, a.tag, main=a.main)


if __name__ == "__main__":
    main(sys.argv[1:])
