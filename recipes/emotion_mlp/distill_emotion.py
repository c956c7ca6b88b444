"""Distilling a fine-tuned encoder into a ~80k-parameter MLP on the emotion data (after Intel's blog).

    accelerate launch recipes/emotion_mlp/distill_emotion.py --output_dir outputs/recipes/emotion_mlp
    python recipes/emotion_mlp/distill_emotion.py --config recipes/emotion_mlp/config.json   # the same, from a file

Rows of the table, each evaluated on the test split (accuracy, macro-F1, parameters, latency):
1. TF-IDF + logistic regression (scikit-learn), the blog's baseline;
2. the MLP (word embeddings 5000 x 16, mean and max pooling, hidden 64, head: 82,502 parameters) without KD;
3. the teacher: all-MiniLM-L6-v2 fine-tuned (early stopping on validation accuracy);
4. MLP + KD on the labeled rows (teacher logits cached once, moved to the MLP's word tokenization);
5. MLP + KD + an augmented transfer set: Tang et al.'s operators (masking, word swaps, n-gram sampling;
   optionally masked-LM substitution with ``--mlm``) applied to the training texts, labelled by the teacher.
Every model trains to convergence with early stopping on the validation split. Results go to
``output_dir/results.json``; ``benchmarks/transfer.py --stage emotion`` runs this and merges them.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    EarlyStoppingCallback,
    PrinterCallback,
    set_seed,
)

from hf_distill import (
    DistillationCollator,
    DistillationTrainer,
    DistillationTrainingArguments,
    cache_teacher_outputs,
    classification_metrics,
    load_dataset,
    tokenize_text,
    transfer_teacher_cache,
)
from hf_distill.base import portable_path, write_json_atomic
from hf_distill.data.augment import MaskedLMAugmenter, TangAugmenter
from hf_distill.data.transfer import build_transfer_set, filter_by_teacher, mix_transfer
from hf_distill.data.words import build_word_tokenizer
from hf_distill.shipping.efficiency import measure_latency
from hf_distill.students import build_student, count_parameters
from hf_distill.training.args import derive, kd_settings, keep_best_epoch

BLOG = {"tfidf_lr_acc": 0.861, "mlp_acc": 0.86}


@dataclass
class EmotionArguments:
    data_dir: str | None = field(default=None, metadata={"help": "Data root (default: $HF_DISTILL_DATA_DIR)."})
    teacher: str | None = field(default=None, metadata={"help": "Encoder folder (default: all-MiniLM-L6-v2)."})
    finetuned_teacher: str | None = field(default=None, metadata={
        "help": "An emotion classifier fine-tuned before (e.g. output_dir/teacher/checkpoint-N): used as the "
                "teacher as it is, without fine-tuning again; its labels must be the data set's."})
    output_dir: str = "outputs/recipes/emotion_mlp"
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    max_length: int = 64
    teacher_epochs: float = 4.0
    teacher_learning_rate: float = 1e-4
    student_epochs: float = 40.0
    transfer_epochs: float = 20.0
    student_learning_rate: float = 5e-3
    patience: int = 3
    batch_size: int = 32
    student_batch_size: int = 64
    vocab_size: int = 5000
    embedding_dim: int = 16
    hidden_size: int = 64
    pooling: str = field(default="mean_max", metadata={
        "help": "MLP pooling: mean_max (the mean and the per-dimension maximum over the words), or mean."})
    augment_copies: int = field(default=10, metadata={"help": "Augmented copies of each training text."})
    p_mask: float = 0.1
    p_swap: float = 0.1
    p_ngram: float = 0.25
    mlm: str | None = field(default=None, metadata={"help": "Masked-LM folder: substitution instead of swaps."})
    balance: str | None = field(default=None, metadata={"help": "Cap transfer rows per teacher class ('median')."})
    seed: int = 42
    smoke: bool = field(default=False, metadata={"help": "Tiny random teacher, a few rows (the test suite)."})


#: the recipe's defaults for the template's fields (the command line or config.json can change each): the KD
#: settings are DistillationTrainingArguments' own (KL at T=1), the KD weight balanced on the first step
TEMPLATE_DEFAULTS = {"kd_weight": "auto", "warmup_ratio": 0.1, "weight_decay": 0.01}


def _targs(a: EmotionArguments, template, name: str, epochs: float, lr: float, batch: int, **over):
    """One run's arguments: the ``template`` (its KD settings and anything else the user set) with the recipe's
    per-run fields; ``over`` replaces any of them (``kd_loss="none"`` for the runs without KD)."""
    return derive(template, output_dir=os.path.join(a.output_dir, name), num_train_epochs=epochs,
                  learning_rate=lr, per_device_train_batch_size=batch, per_device_eval_batch_size=128,
                  **keep_best_epoch("accuracy", save_only_model=True), logging_steps=100,
                  report_to="none", seed=a.seed, disable_tqdm=True, dataloader_pin_memory=False, **over)


def _fit(a, template, name, model, tokenizer, train, dev, epochs, lr, batch, **kd) -> dict:
    set_seed(a.seed)
    trainer = DistillationTrainer(model=model, args=_targs(a, template, name, epochs, lr, batch, **kd),
                                  train_dataset=train, eval_dataset=dev, processing_class=tokenizer,
                                  compute_metrics=classification_metrics, callbacks=[EarlyStoppingCallback(a.patience)])
    trainer.remove_callback(PrinterCallback)
    start, cpu = time.perf_counter(), time.process_time()
    trainer.train()
    evals = [e for e in trainer.state.log_history if "eval_accuracy" in e]
    for e in evals:
        print(f"[{name}] epoch {round(e['epoch'])}: validation accuracy {100 * e['eval_accuracy']:.2f}", flush=True)
    return {"train_s": time.perf_counter() - start, "train_cpu_s": time.process_time() - cpu,
            "epochs_run": len(evals), "dev_accuracy": trainer.state.best_metric,
            "best_epoch": max(evals, key=lambda e: e["eval_accuracy"])["epoch"] if evals else None,
            "trainer": trainer}


def _test(trainer, test, model, tokenizer) -> dict:
    m = trainer.evaluate(test, metric_key_prefix="test")
    rows = [{k: test[i][k] for k in ("input_ids", "attention_mask")} for i in range(min(50, len(test)))]
    lat = measure_latency(model, rows, DistillationCollator(tokenizer), warmup=5, runs=len(rows), threads=1)
    return {"accuracy": m["test_accuracy"], "macro_f1": m["test_macro_f1"], **count_parameters(model),
            "latency_ms": lat["latency_ms"]}


def tfidf_baseline(train, test) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
    x = vec.fit_transform(train["text"])
    clf = LogisticRegression(max_iter=2000, C=10.0).fit(x, train["label"])
    pred = clf.predict(vec.transform(test["text"]))
    return {"accuracy": float(accuracy_score(test["label"], pred)),
            "macro_f1": float(f1_score(test["label"], pred, average="macro")),
            "params": int(np.prod(clf.coef_.shape) + clf.intercept_.size)}


def _teacher(a: EmotionArguments, names, tok_dir):
    if a.smoke:
        from transformers import BertConfig, BertForSequenceClassification

        config = BertConfig(vocab_size=len(AutoTokenizer.from_pretrained(tok_dir)), hidden_size=32,
                            num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=len(names),
                            id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
        return BertForSequenceClassification(config)
    return AutoModelForSequenceClassification.from_pretrained(
        tok_dir, num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})


def _finetuned(a: EmotionArguments, names: list[str]):
    """The teacher fine-tuned before; refuses a model whose label names (in order) are not the data set's."""
    model = AutoModelForSequenceClassification.from_pretrained(a.finetuned_teacher)
    have = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if have != list(names):
        raise ValueError(f"--finetuned_teacher {a.finetuned_teacher}: its labels {have} are not the data set's "
                         f"{list(names)} (in this order)")
    return model


def run(a: EmotionArguments, template=None) -> dict:
    """Every model of the recipe; ``template``: the ``DistillationTrainingArguments`` each run starts from
    (default: its defaults with :data:`TEMPLATE_DEFAULTS`)."""
    if template is None:
        template = DistillationTrainingArguments(output_dir=a.output_dir, **TEMPLATE_DEFAULTS)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    set_seed(a.seed)
    raw = load_dataset("emotion", data_dir=a.data_dir)
    if a.max_train_samples:
        raw["train"] = raw["train"].select(range(min(a.max_train_samples, len(raw["train"]))))
    if a.max_eval_samples:
        for split in ("validation", "test"):
            raw[split] = raw[split].select(range(min(a.max_eval_samples, len(raw[split]))))
    names = raw["train"].features["label"].names
    out: dict = {"config": {**asdict(a), **kd_settings(template)}, "train": len(raw["train"]),
                 "test": len(raw["test"]), "blog": BLOG}
    out["tfidf_lr"] = tfidf_baseline(raw["train"], raw["test"])
    print(f"[emotion] TF-IDF + LR: test accuracy {100 * out['tfidf_lr']['accuracy']:.2f}", flush=True)

    # the MLP's own word tokenizer and data
    word_tok = build_word_tokenizer(raw["train"]["text"], vocab_size=a.vocab_size, lowercase=True)
    words = tokenize_text(raw, word_tok, max_length=a.max_length)
    mlp_kw = {"embedding_dim": a.embedding_dim, "hidden_size": a.hidden_size, "pooling": a.pooling}

    def mlp():
        set_seed(a.seed)
        return build_student("mlp", word_tok, task="sequence", labels=names, **mlp_kw)

    student = mlp()
    r = _fit(a, template, "mlp", student, word_tok, words["train"], words["validation"], a.student_epochs,
             a.student_learning_rate, a.student_batch_size, kd_loss="none")
    out["mlp"] = {**_test(r.pop("trainer"), words["test"], student, word_tok), **r}

    # the teacher, fine-tuned with early stopping, and its logits cached on the training rows
    from hf_distill.base import default_teacher_path

    tok_dir = a.finetuned_teacher or a.teacher or default_teacher_path()
    t_tok = AutoTokenizer.from_pretrained(tok_dir)
    sub = tokenize_text(raw, t_tok, max_length=a.max_length)
    if a.finetuned_teacher:
        teacher, r = _finetuned(a, names), {"finetuned_before": portable_path(a.finetuned_teacher)}
        trainer = DistillationTrainer(model=teacher, args=_targs(a, template, "teacher", 1, 1e-5, a.batch_size,
                                                                 kd_loss="none"),
                                      eval_dataset=sub["validation"], processing_class=t_tok,
                                      compute_metrics=classification_metrics)
        out["teacher"] = {**_test(trainer, sub["test"], teacher, t_tok), **r}
    else:
        teacher = _teacher(a, names, tok_dir)
        r = _fit(a, template, "teacher", teacher, t_tok, sub["train"], sub["validation"], a.teacher_epochs,
                 a.teacher_learning_rate, a.batch_size, kd_loss="none")
        out["teacher"] = {**_test(r.pop("trainer"), sub["test"], teacher, t_tok), **r}
    teacher.eval()
    cache_dir = os.path.join(a.output_dir, "teacher_cache")
    t_train = cache_teacher_outputs(teacher, sub["train"], cache_dir=cache_dir, tokenizer=t_tok)
    kd_train = transfer_teacher_cache(t_train, words["train"], level="sequence")
    kd = {}  # the template's KD settings

    student = mlp()
    r = _fit(a, template, "mlp_kd", student, word_tok, kd_train, words["validation"], a.student_epochs,
             a.student_learning_rate, a.student_batch_size, **kd)
    out["mlp_kd"] = {**_test(r.pop("trainer"), words["test"], student, word_tok), **r}

    # the augmented transfer set: generated from the training texts, never a validation or test text
    texts = raw["train"]["text"]
    if a.mlm:
        augmented = MaskedLMAugmenter(a.mlm, fraction=a.p_swap + a.p_mask, seed=a.seed).augment(
            texts, copies=a.augment_copies)
    else:
        augmented = TangAugmenter(p_mask=a.p_mask, p_swap=a.p_swap, p_ngram=a.p_ngram, mask_token=t_tok.mask_token,
                                  seed=a.seed).augment(texts, copies=a.augment_copies)
    transfer, report = build_transfer_set(augmented, t_tok, task="sequence",
                                          exclude=[raw["validation"], raw["test"]])
    t_transfer = cache_teacher_outputs(teacher, tokenize_text(transfer, t_tok, max_length=a.max_length),
                                       cache_dir=cache_dir, tokenizer=t_tok)
    if a.balance:
        t_transfer = filter_by_teacher(t_transfer, balance=int(a.balance) if a.balance.isdigit() else a.balance,
                                       seed=a.seed, report=report)
    w_transfer = transfer_teacher_cache(t_transfer, tokenize_text(t_transfer.select_columns(["text"]), word_tok,
                                                                  max_length=a.max_length), level="sequence")
    mixed = mix_transfer(kd_train, w_transfer)
    out["transfer"] = {**report.to_dict(), "operators": "mlm" if a.mlm else "tang",
                       "copies": a.augment_copies}
    student = mlp()
    r = _fit(a, template, "mlp_kd_transfer", student, word_tok, mixed, words["validation"], a.transfer_epochs,
             a.student_learning_rate, a.student_batch_size, **kd)
    out["mlp_kd_transfer"] = {**_test(r.pop("trainer"), words["test"], student, word_tok), **r,
                              "train_rows": len(mixed)}
    folder = os.path.join(a.output_dir, "mlp_kd_transfer", "model")
    student.save_pretrained(folder)
    word_tok.save_pretrained(folder)
    out["model_dir"] = folder
    out["wall_s"], out["cpu_s"] = time.perf_counter() - wall0, time.process_time() - cpu0
    out["command"] = "python recipes/emotion_mlp/distill_emotion.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    os.makedirs(a.output_dir, exist_ok=True)
    write_json_atomic(os.path.join(a.output_dir, "results.json"), out)
    print(table(out), flush=True)
    return out


def table(out: dict) -> str:
    rows = ["| model | test accuracy | macro-F1 | params | latency ms | epochs (best) |", "|---|---|---|---|---|---|"]
    for key, label in (("tfidf_lr", "TF-IDF + LR"), ("mlp", "MLP, no KD"), ("teacher", "teacher (MiniLM-L6)"),
                       ("mlp_kd", "MLP + KD"), ("mlp_kd_transfer", "MLP + KD + augmented transfer set")):
        r = out[key]
        lat = f"{r['latency_ms']:.3f}" if "latency_ms" in r else "-"
        ep = f"{r['epochs_run']} ({r['best_epoch']:.0f})" if r.get("best_epoch") else "-"
        rows.append(f"| {label} | {100 * r['accuracy']:.2f} | {100 * r['macro_f1']:.2f} | {r['params']:,} | {lat} "
                    f"| {ep} |")
    rows.append(f"| blog: TF-IDF + LR / MLP | {100 * BLOG['tfidf_lr_acc']:.1f} / {100 * BLOG['mlp_acc']:.0f} | | | | |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> dict:
    from hf_distill.runs import parse_recipe_args

    argv = sys.argv[1:] if argv is None else argv
    a, template = parse_recipe_args(EmotionArguments, argv, training=TEMPLATE_DEFAULTS)
    return run(a, template)


if __name__ == "__main__":
    main()
