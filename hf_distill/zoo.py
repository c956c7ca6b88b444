"""``hf-distill zoo``: which student is best for this teacher and these data?

The teacher is cached once; every student of the zoo is distilled (and, when asked, trained without KD too)
to convergence on the dev split, saved ready to ship (``save_student``) and benched with the ``bench``
machinery (F1 in PyTorch, ONNX and int8 ONNX; parameters; FLOPs; latency per sentence). The results go to one
JSON, a Markdown table, a plot of F1 against latency with the Pareto front, and a recommendation: the fastest
student within ``max_f1_drop`` of the teacher, the most accurate under ``latency_budget_ms``. A student already
finished with the same spec, teacher and settings is skipped, so a killed run continues where it stopped.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from .base import write_bytes_atomic, write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    from .runs import TaskSpec

logger = logging.getLogger(__name__)

#: the default zoo: name -> (family, config, learning rate); sub-word students share the teacher's tokenizer
PRESETS: dict[str, tuple[str, dict, float]] = {
    "bilstm": ("bilstm", {"embedding_dim": 128, "hidden_size": 256}, 2e-3),
    "bilstm-att": ("bilstm", {"embedding_dim": 128, "hidden_size": 256, "use_attention": True}, 2e-3),
    "cnn": ("cnn", {"embedding_dim": 128, "num_blocks": 4}, 2e-3),
    "window": ("window", {"embedding_dim": 100, "window_size": 3}, 2e-3),
    "bilstm-B": ("bilstm", {"hidden_size": 256, "teacher_embeddings": True}, 2e-3),
    "bert-tiny": ("bert-tiny", {}, 1e-3),
    "bert-mini": ("bert-mini", {}, 5e-4),
    "bert-small": ("bert-small", {}, 3e-4),
    "truncated-2": ("truncated", {"layers": [0, 1]}, 2e-4),
    "charcnn-wordlstm": ("char_lstm", {"embedding_dim": 100, "hidden_size": 200}, 2e-3),
}


@dataclass
class ZooArguments:
    """hf-distill zoo: distill every student of a zoo from one teacher, bench them, recommend one."""

    teacher: str = field(default="", metadata={"help": "Fine-tuned token-classification teacher (folder or Hub id)."})
    dataset: str = field(default="conll2003", metadata={"help": "Registered dataset name or local folder."})
    data_dir: str | None = field(default=None, metadata={"help": "Data root (default: $HF_DISTILL_DATA_DIR)."})
    students: list[str] = field(
        default_factory=lambda: list(PRESETS),
        metadata={"help": f"Student specs: preset names {list(PRESETS)}, or NAME=FAMILY:JSON_CONFIG[@LR], e.g. "
                          "'lstm-64=bilstm:{\"hidden_size\": 64}@1e-3'; \"teacher_embeddings\": true starts from "
                          "the teacher's sub-word embeddings (the papers' -B students)."})
    output_dir: str = field(default="outputs/zoo", metadata={"help": "Where students, results and the plot go."})
    label_column: str | None = field(default=None, metadata={
        "help": "Column of the labels: a tag column (tagging) or a class column (text classification). Default: "
                "'label' if the data set has it, else its tag column (ner_tags first)."})
    text_column: str = field(default="text", metadata={"help": "Column of the text (text classification)."})
    kd_loss: str = field(default="kl", metadata={"help": "KD loss of every student (a registered kd_loss)."})
    temperature: float = 1.0
    kd_weight: str = "auto"
    cache_backend: str = field(default="torch", metadata={
        "help": "How the teacher's outputs are cached: 'torch', 'onnxruntime' (its ONNX export, checked against "
                "PyTorch) or 'onnxruntime-int8' (dynamically quantized: faster on CPU, refused below 99% argmax "
                "agreement with PyTorch)."})
    cache_dir: str | None = field(default=None, metadata={
        "help": "Folder of the teacher caches (default: output_dir/teacher_cache). Caches are keyed by teacher, "
                "rows and options, so zoo runs over the same rows can share one folder and label them once."})
    compare_no_kd: bool = field(default=False, metadata={"help": "Also train each student without KD."})
    transfer: str | None = field(default=None, metadata={"help": "Unlabeled text for KD only (a transfer-set "
                                                                   "source: file, 'name:split'...)."})
    trim_vocabulary: str = field(default="auto", metadata={
        "help": "Give BiLSTM, CNN, window, MLP and small-BERT students embedding rows only for the sub-words of "
                "the training and dev rows (the others share the unknown token's row): 'auto' (when the teacher's "
                "vocabulary has over 60k entries, e.g. multilingual teachers), 'true' or 'false'."})
    transfer_length: str | None = field(default=None, metadata={
        "help": "Keep transfer rows whose sub-word length lies in the labeled train split's range: 'iqr' (Q1-Q3) "
                "or 'minmax' (default: no length filter)."})
    transfer_max_rows: int | None = field(default=None, metadata={"help": "A seeded sample of at most N transfer "
                                                                          "rows (default: all)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "First N train sentences (default: all)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "First N test sentences (default: all)."})
    max_dev_samples: int | None = field(default=None, metadata={"help": "First N dev sentences (default: all)."})
    epochs: float = field(default=30.0, metadata={"help": "Most epochs per student (early stopping on dev)."})
    patience: int = field(default=3, metadata={"help": "Epochs without a better dev F1 before stopping."})
    batch_size: int = 32
    seed: int = 42
    dev_fraction: float = field(default=0.1, metadata={"help": "Share of train held out as dev when the data set "
                                                                 "has no validation split."})
    dev_seed: int = field(default=0, metadata={"help": "Seed of that split (fixed, so every run sees one dev)."})
    max_f1_drop: float = field(default=3.0, metadata={"help": "Recommend the fastest student within this many F1 "
                                                                "points of the teacher."})
    latency_budget_ms: float | None = field(default=None, metadata={"help": "Recommend the most accurate student "
                                                                              "under this latency per sentence."})
    extra_test: str | None = field(default=None, metadata={
        "help": "A second test set (CoNLL/IOB2 column file, the same labels) every student is also scored on."})
    search: int = field(default=0, metadata={"help": "Optuna trials per student over learning rate, temperature "
                                                     "and KD weight on the dev split (0 = no search)."})
    bench_runs: int = field(default=50, metadata={"help": "Single-sentence forward passes timed per model."})
    quantize: bool = field(default=True, metadata={"help": "Also export and bench an int8 ONNX model."})
    threads: int = field(default=1, metadata={"help": "Threads while timing."})
    bf16: bool = field(default=False, metadata={
        "help": "Train the students under bfloat16 autocast (faster on GPUs and on CPUs with native bf16; see "
                "hf_distill.args.fast_bf16_available). Benches and exports stay in float32."})

    positional = ()


@dataclass
class StudentSpec:
    name: str
    family: str
    config: dict
    learning_rate: float

    @classmethod
    def parse(cls, text: str) -> StudentSpec:
        if text in PRESETS:
            family, config, lr = PRESETS[text]
            return cls(text, family, dict(config), lr)
        if "=" not in text or ":" not in text.split("=", 1)[1]:
            raise ValueError(f"student spec {text!r}: a preset ({', '.join(PRESETS)}) or NAME=FAMILY:JSON[@LR]")
        name, rest = text.split("=", 1)
        family, config = rest.split(":", 1)
        lr = 1e-3
        if "@" in config and config.rsplit("@", 1)[1].replace(".", "").replace("e-", "").isdigit():
            config, lr_text = config.rsplit("@", 1)
            lr = float(lr_text)
        try:
            parsed = json.loads(config) if config.strip() else {}
        except json.JSONDecodeError as e:
            raise ValueError(f"student spec {text!r}: the config is not JSON ({e.msg})") from None
        return cls(name, family, parsed, lr)


def score(measured: dict) -> float | None:
    """The zoo's quality number of a benched backend: F1 (tagging) or macro-F1 (classification)."""
    return measured.get("f1", measured.get("macro_f1"))


# ------------------------------------------------------------------------------- Pareto and advice
def pareto_front(rows: list[dict], x: str = "latency_ms", y: str = "f1") -> list[str]:
    """Names of the rows no other row beats on both ``x`` (lower is better) and ``y`` (higher is better)."""
    front = []
    for r in rows:
        dominated = any(o is not r and o[x] <= r[x] and o[y] >= r[y] and (o[x] < r[x] or o[y] > r[y]) for o in rows)
        if not dominated:
            front.append(r["name"])
    return sorted(front, key=lambda n: next(r[x] for r in rows if r["name"] == n))


def recommend(rows: list[dict], teacher_f1: float, max_f1_drop: float | None,
              latency_budget_ms: float | None) -> dict:
    """The fastest row within ``max_f1_drop`` F1 points of the teacher and the most accurate row under
    ``latency_budget_ms``, each with the numbers behind it, or a sentence saying that no row qualifies."""
    out = {}
    if max_f1_drop is not None:
        ok = [r for r in rows if 100 * (teacher_f1 - r["f1"]) <= max_f1_drop + 1e-9]
        closest = max(rows, key=lambda r: r["f1"]) if rows else None
        out["within_f1_drop"] = _choice(
            ok, lambda rs: min(rs, key=lambda r: r["latency_ms"]),
            lambda b: f"fastest within {max_f1_drop:g} F1 of the teacher: {b['name']} ({100 * b['f1']:.2f} F1, "
                      f"{100 * (b['f1'] - teacher_f1):+.2f} vs the teacher, {b['latency_ms']:.2f} ms per sentence, "
                      f"{b['backend']})",
            f"no student is within {max_f1_drop:g} F1 of the teacher ({100 * teacher_f1:.2f})"
            + (f"; the closest is {closest['name']} at {100 * closest['f1']:.2f}" if closest else ""))
    if latency_budget_ms is not None:
        ok = [r for r in rows if r["latency_ms"] <= latency_budget_ms]
        fastest = min(rows, key=lambda r: r["latency_ms"]) if rows else None
        out["under_latency_budget"] = _choice(
            ok, lambda rs: max(rs, key=lambda r: r["f1"]),
            lambda b: f"most accurate under {latency_budget_ms:g} ms: {b['name']} ({100 * b['f1']:.2f} F1, "
                      f"{b['latency_ms']:.2f} ms, {b['backend']})",
            f"no student runs under {latency_budget_ms:g} ms per sentence"
            + (f"; the fastest is {fastest['name']} at {fastest['latency_ms']:.2f} ms" if fastest else ""))
    return out


def _choice(candidates: list[dict], pick, describe, none_text: str) -> dict:
    if not candidates:
        return {"name": None, "text": none_text}
    best = pick(candidates)
    return {"name": best["name"], "f1": best["f1"], "latency_ms": best["latency_ms"], "text": describe(best)}


def deployment_point(eff: dict) -> dict:
    """A benched student's fastest backend, its latency and the F1 measured with that backend."""
    s = eff["student"]
    options = [(k, s[k]) for k in ("onnx_int8", "onnx", "pytorch") if k in s and "latency_ms" in s[k]]
    backend, m = min(options, key=lambda kv: kv[1]["latency_ms"])
    return {"backend": backend, "latency_ms": m["latency_ms"], "f1": score(m) if score(m) is not None
            else score(s["pytorch"])}


# ------------------------------------------------------------------------------------------ running
def _key(spec: StudentSpec, args: ZooArguments, teacher_id: int, kd: bool) -> str:
    keep = {k: getattr(args, k) for k in ("dataset", "kd_loss", "temperature", "kd_weight", "transfer",
                                          "dev_fraction", "dev_seed",
                                          "max_train_samples", "max_dev_samples", "max_eval_samples", "epochs",
                                          "patience", "batch_size", "seed", "search", "quantize")}
    # these enter the key only when set, so results finished before these options existed stay valid
    keep.update({k: getattr(args, k) for k, default in (("label_column", None), ("text_column", "text"),
                                                        ("trim_vocabulary", "auto"),
                                                        ("cache_backend", "torch"), ("transfer_length", None),
                                                        ("transfer_max_rows", None), ("bf16", False))
                 if getattr(args, k) != default})
    blob = json.dumps([asdict(spec), keep, teacher_id, kd], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


#: families that only tag words (left out of the default zoo of a classification data set)
TAGGING_ONLY = ("window", "char_lstm")
#: vocabularies above this size are trimmed under trim_vocabulary="auto"
TRIM_ABOVE = 60000
#: families whose embedding table can be trimmed (the truncated teacher keeps the teacher's)
TRIMMABLE = ("bilstm", "cnn", "window", "mlp", "bert-tiny", "bert-mini", "bert-small")


def kept_ids(args: ZooArguments, tokenizer, *splits) -> set[int] | None:
    """The sub-word ids of ``splits`` when the vocabulary is to be trimmed, else None."""
    choice = str(args.trim_vocabulary).lower()
    if choice not in ("auto", "true", "false"):
        raise ValueError(f"--trim_vocabulary {args.trim_vocabulary!r}: use auto, true or false")
    if choice == "false" or (choice == "auto" and len(tokenizer) <= TRIM_ABOVE):
        return None
    return {i for split in splits for row in split["input_ids"] for i in row}


def _build(spec: StudentSpec, teacher, tokenizer, task: TaskSpec, keep: set[int] | None = None, words=None):
    from .students import SMALL_BERTS, build_student, student_from_teacher, trim_vocabulary

    if spec.family == "truncated":
        return student_from_teacher(teacher, spec.config.get("layers", [0, 1]))
    config = dict(spec.config)
    if spec.family == "char_lstm":  # its own word tokenizer and characters (``words``: see word_data)
        if words is None:
            raise ValueError(f"student {spec.name!r}: a word-level student needs the zoo's word data")
        from_teacher = config.pop("teacher_embeddings", False)
        if from_teacher:
            config["embedding_dim"] = words["teacher_vectors"].shape[1]
        student = build_student("char_lstm", words["tokenizer"], labels=task.labels, char_vocab=words["chars"],
                                **config)
        if from_teacher:
            student.load_embeddings(words["teacher_vectors"], freeze=bool(config.get("freeze_embeddings", False)))
        return student
    from_teacher = config.pop("teacher_embeddings", False)  # the "-B" students: the teacher's sub-word embeddings
    if from_teacher:
        config["embedding_dim"] = teacher.get_input_embeddings().weight.shape[1]
    if keep is not None and spec.family in SMALL_BERTS:
        config["trimmable"] = True
    student = build_student(spec.family, tokenizer, task=task.kind, labels=task.labels, **config)
    if keep is not None and spec.family in TRIMMABLE:
        trim_vocabulary(student, keep, unk_token_id=tokenizer.unk_token_id)
    if from_teacher:  # rows past the tokenizer (a padded embedding table) are never read
        student.load_embeddings(teacher.get_input_embeddings().weight.detach()[: len(tokenizer)].clone(),
                                freeze=bool(config.get("freeze_embeddings", False)))
    return student


def _training_args(args: ZooArguments, folder: str, task: TaskSpec, kd: bool, lr: float, **over):
    from .args import DistillationTrainingArguments

    settings = {"kd_loss": args.kd_loss, "temperature": args.temperature, "kd_weight": args.kd_weight} if kd \
        else {"kd_loss": "none"}
    base = dict(
        output_dir=folder, num_train_epochs=args.epochs, learning_rate=lr, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=64, warmup_ratio=0.1, weight_decay=0.01, seed=args.seed, report_to="none",
        disable_tqdm=True, dataloader_pin_memory=False, group_by_length=True, eval_strategy="epoch",
        save_strategy="epoch", save_total_limit=1, load_best_model_at_end=True, metric_for_best_model=task.metric,
        greater_is_better=True, save_only_model=False, logging_steps=50, bf16=args.bf16,
        restore_callback_states_from_checkpoint=True)  # a resumed run keeps its early-stopping count
    return DistillationTrainingArguments(**{**base, **settings, **over})


def _search(args, spec, teacher, tokenizer, task: TaskSpec, train, dev, folder, kd: bool, keep=None,
            words=None) -> dict:
    """Optuna over learning rate (log-uniform 5e-5..1e-2), temperature and KD weight on the dev split: each
    trial trains with early stopping (``args.patience``) and scores its best dev epoch; every trial is recorded
    in ``search/trials.json``."""
    from transformers import EarlyStoppingCallback, PrinterCallback

    from .trainer import DistillationTrainer

    trials: list[dict] = []
    current: dict = {}
    metric = f"eval_{task.metric}"

    def space(trial):
        hp = {"learning_rate": trial.suggest_float("learning_rate", 5e-5, 1e-2, log=True)}
        if kd:
            hp["temperature"] = trial.suggest_categorical("temperature", [1.0, 2.0, 4.0])
            hp["kd_weight"] = trial.suggest_categorical("kd_weight", ["auto", "0.5", "1.0", "2.0"])
        current.clear()
        current.update(hp)
        return hp

    class TrialEarlyStopping(EarlyStoppingCallback):
        """Early stopping whose patience count and dev history start afresh with each trial."""

        def on_train_begin(self, args, state, control, **kwargs):
            self.early_stopping_patience_counter = 0
            self.history: list[float] = []
            return super().on_train_begin(args, state, control, **kwargs)

        def on_evaluate(self, args, state, control, metrics, **kwargs):
            self.history.append(metrics[metric])  # before the objective is read (Trainer reports after this)
            return super().on_evaluate(args, state, control, metrics, **kwargs)

        def on_train_end(self, args, state, control, **kwargs):
            trials.append({**current, "dev_history": self.history,
                           "objective": max(self.history) if self.history else None})

    stopper = TrialEarlyStopping(early_stopping_patience=args.patience)
    targs = _training_args(args, os.path.join(folder, "search"), task, kd, spec.learning_rate,
                           save_strategy="no", load_best_model_at_end=False)
    trainer = DistillationTrainer(model_init=lambda trial=None: _build(spec, teacher, tokenizer, task, keep, words),
                                  args=targs, train_dataset=train, eval_dataset=dev, processing_class=tokenizer,
                                  compute_metrics=task.compute_metrics(), callbacks=[stopper])
    trainer.remove_callback(PrinterCallback)
    best = trainer.hyperparameter_search(hp_space=space, backend="optuna", n_trials=args.search, direction="maximize",
                                         compute_objective=lambda metrics: max(stopper.history))
    write_json_atomic(os.path.join(folder, "search", "trials.json"), trials)
    return {"objective": best.objective, **best.hyperparameters}


def resume_point(folder: str, key: str, say) -> str | None:
    """The last checkpoint of a killed run of this student with the same settings (``key``), else None.

    The key is recorded before training starts; checkpoints left by a run with other settings are removed so
    that they are neither resumed nor mistaken for this run's best."""
    import shutil

    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

    record = os.path.join(folder, "zoo_key.json")
    same = False
    if os.path.isfile(record):
        with open(record) as f:
            same = json.load(f).get("key") == key
    last = get_last_checkpoint(folder) if os.path.isdir(folder) else None
    if last and same:
        say(f"{os.path.basename(folder)}: resuming from {os.path.basename(last)} (a killed run, same settings)")
        return last
    if last:
        for entry in os.listdir(folder):
            if entry.startswith(PREFIX_CHECKPOINT_DIR + "-"):
                shutil.rmtree(os.path.join(folder, entry))
        say(f"{os.path.basename(folder)}: checkpoints of a run with other settings removed, starting afresh")
    os.makedirs(folder, exist_ok=True)
    write_json_atomic(record, {"key": key})
    return None


def distill_one(args, spec, kd, teacher, tokenizer, task: TaskSpec, data, raw_test, teacher_id, say) -> dict:
    """Train one student (with or without KD) to convergence, save it, bench it; resumable by its result file."""
    from transformers import EarlyStoppingCallback, PrinterCallback

    from .bench import bench_student
    from .runs import Progress
    from .trainer import DistillationTrainer

    name = spec.name if kd else f"{spec.name}-no-kd"
    folder = os.path.join(args.output_dir, "students", name)
    result_path = os.path.join(folder, "zoo_result.json")
    key = _key(spec, args, teacher_id, kd)
    if os.path.isfile(result_path):
        with open(result_path) as f:
            done = json.load(f)
        if done.get("key") == key:
            say(f"{name}: finished before with the same settings, skipped")
            return {**done, "skipped": True}
    words = data.get("words") if spec.family == "char_lstm" else None
    source = words if words is not None else data  # a word-level student reads its own rows and tokenizer
    tokenizer = words["tokenizer"] if words is not None else tokenizer
    train = source["cached"] if kd else source["train"]
    searched = {}
    if args.search:
        say(f"{name}: {args.search} search trials")
        searched = _search(args, spec, data["teacher"], tokenizer, task, train, source["dev"], folder, kd,
                           data.get("keep"), words)
    lr = searched.get("learning_rate", spec.learning_rate)
    over = {k: searched[k] for k in ("temperature", "kd_weight") if k in searched}
    student = _build(spec, teacher, tokenizer, task, data.get("keep"), words)
    resume = resume_point(folder, key, say)
    progress = Progress(name)
    trainer = DistillationTrainer(model=student, args=_training_args(args, folder, task, kd, lr, **over),
                                  train_dataset=train, eval_dataset=source["dev"], processing_class=tokenizer,
                                  compute_metrics=task.compute_metrics(),
                                  callbacks=[progress, EarlyStoppingCallback(early_stopping_patience=args.patience)])
    trainer.remove_callback(PrinterCallback)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    train_s = time.perf_counter() - start
    model_dir = os.path.join(folder, "model")
    trainer.save_student(model_dir, teacher=args.teacher if not os.path.exists(args.teacher)
                         else os.path.abspath(args.teacher), dataset=args.dataset, student_family=spec.family,
                         zoo_spec=asdict(spec), searched=searched or None)
    say(f"{name}: benching (PyTorch, ONNX{', int8' if args.quantize else ''})")
    eff = bench_student(model_dir, raw_test, threads=args.threads, runs=args.bench_runs, quantize=args.quantize,
                        dataset_name=args.dataset, label_column=task.label_column,
                        teacher_result=data.get("teacher_measured"))
    point = deployment_point(eff)
    extra = None
    if source.get("extra_test") is not None:
        from .runs import evaluate

        extra = evaluate(trainer.model, source["extra_test"], tokenizer, task.labels)["f1"]
    s = eff["student"]
    row = {"name": name, "family": spec.family, "kd": kd, "key": key, **point,
           "f1_pytorch": score(s["pytorch"]), "f1_onnx": score(s.get("onnx", {})),
           "f1_onnx_int8": score(s.get("onnx_int8", {})), "accuracy": s["pytorch"].get("accuracy"),
           "precision": s["pytorch"].get("precision"), "recall": s["pytorch"].get("recall"), "train_rows": len(train),
           "latency_ms_pytorch": s["pytorch"]["latency_ms"], "latency_ms_onnx": s.get("onnx", {}).get("latency_ms"),
           "latency_ms_onnx_int8": s.get("onnx_int8", {}).get("latency_ms"),
           "params": s.get("params"), "embedding_share": s.get("embedding_share"), "flops": s.get("flops"),
           "epochs_run": round(trainer.state.epoch or 0), "resumed_from": resume and os.path.basename(resume),
           "best_dev_f1": trainer.state.best_metric, "train_s": train_s, "model_dir": model_dir,
           "learning_rate": lr, "searched": searched or None, "f1_extra_test": extra, "bf16": args.bf16}
    write_json_atomic(result_path, row)
    say(f"{name}: test {'F1' if task.kind == 'token' else 'macro-F1'} {100 * row['f1']:.2f} at "
        f"{row['latency_ms']:.2f} ms ({row['backend']})")
    return row


def teacher_word_vectors(word_tokenizer, teacher_tokenizer, teacher):
    """One vector per word of ``word_tokenizer``: the mean of the teacher's input embeddings of the word's
    sub-words (how a word-level student starts from a teacher when no word vectors exist for its language)."""
    import torch

    table = teacher.get_input_embeddings().weight.detach()
    vocab = sorted(word_tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    out = torch.zeros(len(vocab), table.shape[1])
    for word, i in vocab[2:]:  # [PAD] stays zero, [UNK] keeps zeros too (no sub-words to pool)
        ids = teacher_tokenizer(word, add_special_tokens=False)["input_ids"]
        if ids:
            out[i] = table[ids].mean(0)
    return out


def word_data(raw, mixed, cached, task: TaskSpec, teacher, tokenizer, extra_test=None) -> dict:
    """Rows, tokenizer and characters of word-level students (CharCNN+WordLSTM): a word tokenizer and a
    character set built from the training words, the teacher's cached sub-word logits moved to words
    (``transfer_teacher_cache``), labels read from the sub-word rows' first sub-words (so transfer rows stay
    unlabeled), and the teacher's sub-word embeddings pooled per word for ``teacher_embeddings``."""
    from .cache import transfer_teacher_cache
    from .data.words import build_char_vocab, build_word_tokenizer, encode_words

    word_tok = build_word_tokenizer(mixed["tokens"])
    chars = build_char_vocab(raw["train"]["tokens"])

    def relabel(words, sub):
        labels = [[lab for lab, m in zip(row_labels, mask) if m] for row_labels, mask in
                  zip(sub["labels"], sub["distill_mask"])]
        return words.map(lambda ex, i: {"labels": (labels[i] + [-100] * len(ex["input_ids"]))[: len(ex["input_ids"])]},
                         with_indices=True, desc="word labels")

    mixed_words = relabel(encode_words(mixed.select_columns(["tokens"]), word_tok, chars, None), mixed)
    out = {"tokenizer": word_tok, "chars": chars,
           "train": encode_words(raw["train"], word_tok, chars, task.label_column),
           "dev": encode_words(raw["validation"], word_tok, chars, task.label_column),
           "cached": transfer_teacher_cache(cached, mixed_words, level="word"),
           "teacher_vectors": teacher_word_vectors(word_tok, tokenizer, teacher)}
    if extra_test is not None:
        out["extra_test"] = encode_words(extra_test, word_tok, chars, "ner_tags")
    return out


def read_extra_test(path: str, labels: list[str]):
    """A second test set in column format (token first, tag last), read with the model's label list: a tag
    outside it raises naming file and line."""
    from .data.readers import build_token_dataset, read_column_file

    sentences = read_column_file(path, {"tokens": 0, "ner_tags": -1})
    return build_token_dataset({"test": sentences}, ["ner_tags"], label_names={"ner_tags": labels},
                               scheme={"ner_tags": "iob2"})["test"]


def load_splits(args) -> dict:
    """train, validation and test of ``args.dataset``; without a validation split, ``dev_fraction`` of train
    is carved out with ``dev_seed`` (never the test split); then the ``max_*_samples`` slices."""
    from .data import load_dataset

    raw = load_dataset(args.dataset, data_dir=args.data_dir)
    if "validation" not in raw:
        carved = raw["train"].train_test_split(test_size=args.dev_fraction, seed=args.dev_seed, shuffle=True)
        raw["train"], raw["validation"] = carved["train"], carved["test"]
    for split, n in (("train", args.max_train_samples), ("validation", args.max_dev_samples),
                     ("test", args.max_eval_samples)):
        if n:
            raw[split] = raw[split].select(range(min(n, len(raw[split]))))
    return raw


def dev_overlap_warning(raw, text_column: str = "text") -> str | None:
    """A warning when most validation rows also occur in train (IndoNLU TermA: all 1,000): early stopping and
    model selection then reward memorizing train, and dev scores are not held-out scores."""
    from .data.transfer import rows_also_in

    shared, total = rows_also_in(raw["validation"], raw["train"], text_column), len(raw["validation"])
    if total and shared * 2 > total:
        return (f"warning: {shared} of {total} validation rows also occur in the training split; early stopping "
                "selects on rows the students have seen, so dev scores overstate; only the test scores are held out")
    return None


def _load_teacher(path: str, task: TaskSpec):
    """The fine-tuned teacher; refuses one whose head is not the task's or whose labels are not the data's."""
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    auto = AutoModelForTokenClassification if task.kind == "token" else AutoModelForSequenceClassification
    teacher = auto.from_pretrained(path).eval()
    have = [teacher.config.id2label[i] for i in range(teacher.config.num_labels)]
    if have != task.labels:
        raise ValueError(f"teacher {path}: its labels {have} are not the data set's {task.labels} (column "
                         f"{task.label_column!r}, in this order)")
    return teacher


def run_zoo(args: ZooArguments) -> dict:
    """Distill, bench and compare every student; write zoo.json, zoo.md and zoo.png under ``output_dir``."""
    import torch
    from transformers import AutoTokenizer

    from .bench import encode_for, measure_model
    from .cache import cache_teacher_outputs
    from .data import tokenize_and_align
    from .data.transfer import build_transfer_set, mix_transfer
    from .runs import TaskSpec
    from .signals import teacher_fingerprint

    if not args.teacher:
        raise ValueError("pass --teacher: a fine-tuned token-classification model folder or Hub id")
    specs = [StudentSpec.parse(s) for s in args.students]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"student names repeat: {names}")
    wall0 = time.perf_counter()

    def say(text: str) -> None:
        print(f"[zoo {time.perf_counter() - wall0:6.0f}s] {text}", flush=True)

    torch.manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.teacher)
    raw = load_splits(args)
    task = TaskSpec.of(raw["train"], args.label_column, args.text_column)
    overlap = dev_overlap_warning(raw, task.text_column)
    if overlap:
        say(overlap)
    if task.kind == "sequence" and list(args.students) == list(PRESETS):  # the default zoo, for classification
        specs = [s for s in specs if s.family not in TAGGING_ONLY]
    teacher = _load_teacher(args.teacher, task)
    dev_split = "validation"
    dev_raw = raw[dev_split]
    train = task.encode(raw["train"], tokenizer)
    mixed = train
    if args.transfer:
        rows, report = build_transfer_set(args.transfer, tokenizer, task=task.kind, text_column=task.text_column,
                                          data_dir=args.data_dir, exclude=[raw[dev_split], raw["test"]],
                                          length=args.transfer_length, labeled=raw["train"],
                                          max_rows=args.transfer_max_rows, seed=args.seed)
        say(f"transfer set: {report}")
        mixed = mix_transfer(train, task.encode(rows, tokenizer))
    data = {"train": train, "dev": task.encode(dev_raw, tokenizer), "teacher": teacher,
            "cached": cache_teacher_outputs(teacher, mixed, tokenizer=tokenizer, backend=args.cache_backend,
                                            cache_dir=args.cache_dir or os.path.join(args.output_dir, "teacher_cache"))}
    data["keep"] = kept_ids(args, tokenizer, mixed, data["dev"])
    if data["keep"] is not None:
        say(f"trimmed vocabulary: {len(data['keep'])} of {len(tokenizer)} sub-words occur in the training and dev "
            "rows; BiLSTM, CNN and window students get rows for these only")
    extra_raw = None
    if args.extra_test:
        if task.kind != "token":
            raise ValueError("--extra_test scores tagging students; this data set is text classification")
        extra_raw = read_extra_test(args.extra_test, task.labels)
        data["extra_test"] = tokenize_and_align(extra_raw, tokenizer)
    if any(spec.family == "char_lstm" for spec in specs):
        if task.kind != "token":
            raise ValueError("char_lstm students tag words: this data set is text classification")
        data["words"] = word_data(raw, mixed, data["cached"], task, teacher, tokenizer, extra_raw)
    teacher_id = teacher_fingerprint(teacher)
    teacher_file = os.path.join(args.output_dir, "teacher.json")
    t_record = None
    if os.path.isfile(teacher_file):
        with open(teacher_file) as f:
            t_record = json.load(f)
        t_record = t_record if t_record.get("teacher_id") == teacher_id and \
            t_record.get("test_rows") == len(raw["test"]) and "measured" in t_record else None
    if t_record is None:
        say("benching the teacher (PyTorch)")
        t_rows = list(encode_for(teacher, tokenizer, raw["test"], task.label_column))
        m = measure_model(teacher, tokenizer, t_rows, None, args.teacher if os.path.exists(args.teacher) else None,
                          args.threads, args.bench_runs)
        t_record = {"teacher_id": teacher_id, "test_rows": len(raw["test"]), "f1": score(m["pytorch"]),
                    "latency_ms": m["pytorch"]["latency_ms"], "params": m.get("params"), "flops": m.get("flops"),
                    "measured": {"path": args.teacher, **m}}  # every student's bench reuses it
        os.makedirs(args.output_dir, exist_ok=True)
        write_json_atomic(teacher_file, t_record)
    say(f"teacher: test F1 {100 * t_record['f1']:.2f}, {t_record['latency_ms']:.2f} ms per sentence")
    data["teacher_measured"] = t_record["measured"]
    rows = []
    plan = [(spec, kd) for spec in specs for kd in ((True, False) if args.compare_no_kd else (True,))]
    for i, (spec, kd) in enumerate(plan, start=1):
        say(f"student {i}/{len(plan)}: {spec.name}{'' if kd else ' (no KD)'}")
        rows.append(distill_one(args, spec, kd, teacher, tokenizer, task, data, raw["test"], teacher_id, say))
    return write_results(args, rows, t_record, task)


def finished_students(output_dir: str) -> tuple[dict | None, list[dict]]:
    """The teacher record and the result rows of the students a zoo run in ``output_dir`` has finished so far
    (nothing is loaded or trained): what a recipe spread over sessions tabulates as partial results."""
    import glob

    rows = []
    for path in sorted(glob.glob(os.path.join(output_dir, "students", "*", "zoo_result.json"))):
        with open(path) as f:
            rows.append(json.load(f))
    teacher_file = os.path.join(output_dir, "teacher.json")
    if not os.path.isfile(teacher_file):
        return None, rows
    with open(teacher_file) as f:
        return json.load(f), rows


def command_of(args: ZooArguments) -> str:
    """The ``hf-distill zoo`` command line that reproduces ``args`` (options that differ from the defaults)."""
    import shlex
    from dataclasses import fields

    words = ["hf-distill", "zoo"]
    for f in fields(ZooArguments):
        value = getattr(args, f.name)
        default = f.default_factory() if callable(f.default_factory) else f.default
        if value == default:
            continue
        words.append(f"--{f.name}")
        words += [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return shlex.join(words)


def write_results(args: ZooArguments, rows: list[dict], teacher: dict, task: TaskSpec | None = None) -> dict:
    front = pareto_front(rows)
    advice = recommend(rows, teacher["f1"], args.max_f1_drop, args.latency_budget_ms)
    out = {"teacher": teacher, "students": rows, "pareto_front": front, "recommendation": advice,
           "settings": {k: v for k, v in asdict(args).items()}, "command": command_of(args),
           "task": task.kind if task else "token", "metric": task.metric if task else "f1"}
    os.makedirs(args.output_dir, exist_ok=True)
    write_json_atomic(os.path.join(args.output_dir, "zoo.json"), out)
    metric = "F1" if task is None or task.kind == "token" else "macro-F1"
    md = ["# Which student is best?", "", f"Command: `{command_of(args)}`", "",
          f"Teacher `{args.teacher}`: test {metric} {100 * teacher['f1']:.2f}, {teacher['latency_ms']:.2f} ms per "
          f"input (PyTorch, {args.threads} thread). Dataset {args.dataset}; KD {args.kd_loss}, T={args.temperature}, "
          f"kd_weight={args.kd_weight}; every student trained to convergence on the dev split.", "",
          f"| student | KD | {metric} (best backend) | backend | latency ms | {metric} PyTorch / ONNX / int8 | "
          "params | epochs | "
          "Pareto |", "|---|---|---|---|---|---|---|---|---|"]

    def pct(x):
        return "-" if x is None else f"{100 * x:.2f}"

    extra = bool(args.extra_test)
    if extra:
        md[-2] = md[-2].replace("| Pareto |", "| Pareto | F1 extra test |")
        md[-1] += "---|"
    for r in sorted(rows, key=lambda r: r["latency_ms"]):
        md.append(f"| {r['name']} | {'yes' if r['kd'] else 'no'} | {pct(r['f1'])} | {r['backend']} | "
                  f"{r['latency_ms']:.2f} | {pct(r['f1_pytorch'])} / {pct(r['f1_onnx'])} / {pct(r['f1_onnx_int8'])} | "
                  f"{(r['params'] or 0) / 1e6:.2f}M | {r['epochs_run']} | {'yes' if r['name'] in front else ''} |"
                  + (f" {pct(r.get('f1_extra_test'))} |" if extra else ""))
    md += ["", "**Recommendation**", ""] + [f"- {v['text']}" for v in advice.values()]
    write_text_atomic(os.path.join(args.output_dir, "zoo.md"), "\n".join(md) + "\n")
    plot(rows, front, teacher, os.path.join(args.output_dir, "zoo.png"))
    print("\n".join(md), flush=True)
    return out


def plot(rows: list[dict], front: list[str], teacher: dict, path: str) -> None:
    """F1 against latency (log scale), every point labeled, the Pareto front joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        on = r["name"] in front
        ax.scatter(r["latency_ms"], 100 * r["f1"], color="tab:blue" if on else "tab:gray", zorder=3)
        ax.annotate(r["name"], (r["latency_ms"], 100 * r["f1"]), textcoords="offset points", xytext=(4, 4),
                    fontsize=8)
    pts = sorted((r["latency_ms"], 100 * r["f1"]) for r in rows if r["name"] in front)
    if pts:
        ax.plot(*zip(*pts), color="tab:blue", linewidth=1, label="Pareto front")
    ax.axhline(100 * teacher["f1"], color="tab:red", linestyle="--", linewidth=1,
               label=f"teacher {100 * teacher['f1']:.2f} F1 ({teacher['latency_ms']:.1f} ms)")
    ax.set_xscale("log")
    ax.set_xlabel("latency per sentence, ms (log scale; fastest backend)")
    ax.set_ylabel("test F1")
    ax.legend(fontsize=8)
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=120)
    plt.close(fig)
    write_bytes_atomic(path, image.getvalue())
