"""Fine-tuning a teacher once for a task, resumable, refusing one that learned nothing."""

from __future__ import annotations

from transformers import PrinterCallback

from ..base import IGNORE_INDEX
from ..files import read_json
from ..training.args import DistillationTrainingArguments, keep_best_epoch
from ..training.trainer import DistillationTrainer
from .callbacks import EarlyStoppingAboveFloor, Progress
from .tasks import TaskSpec


class TeacherDidNotLearnError(RuntimeError):
    """A fine-tuned teacher scores no better on dev than predicting the most frequent label everywhere."""


def constant_prediction_score(task: TaskSpec, train, dev) -> float:
    """The dev score (``task.metric``) of predicting the most frequent training label at every position or row:
    the floor a fine-tuned teacher must clear (entity F1 0 when that label is ``O``). ``train`` and ``dev`` are
    encoded (a ``labels`` column, -100 where unscored)."""
    import numpy as np
    from transformers import EvalPrediction

    def padded(rows):
        rows = [np.asarray(r).reshape(-1) for r in rows]
        out = np.full((len(rows), max(len(r) for r in rows)), IGNORE_INDEX)
        for i, r in enumerate(rows):
            out[i, :len(r)] = r
        return out

    gold_train = padded(train["labels"])
    counts = np.bincount(gold_train[gold_train != IGNORE_INDEX], minlength=len(task.labels))
    gold = padded(dev["labels"])
    if task.kind == "sequence":
        gold = gold[:, 0]
    predicted = np.full(gold.shape, int(counts.argmax()))
    return float(task.compute_metrics()(EvalPrediction(predictions=predicted, label_ids=gold))[task.metric])


def fine_tune_teacher(base: str, raw, task: TaskSpec, folder: str, *, epochs: float, learning_rate: float,
                      patience: int, settings: dict, batch_size: int = 32, smoke: bool = False,
                      bf16: bool = False, require_progress: bool | None = None) -> str:
    """The teacher for ``task``: ``base`` (a pretrained encoder) fine-tuned once with early stopping on
    ``raw["validation"]`` and saved to ``folder/model`` with ``settings``; a later call with the same settings
    reuses it, one with other settings raises (never overwriting a teacher). A fine-tuning killed midway
    resumes from its last epoch checkpoint (``folder/run``) when the settings match. ``smoke``: a tiny random
    BERT with ``base``'s tokenizer (tests). ``bf16``: fine-tune under bfloat16 autocast (callers put it in
    ``settings``). Early stopping's patience starts once the dev score beats the constant-prediction floor.
    ``require_progress`` (default: unless ``smoke``): raise :class:`TeacherDidNotLearnError`, saving
    nothing, when the best dev score does not beat :func:`constant_prediction_score`."""
    import os

    from transformers import (
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
        BertForTokenClassification,
    )

    from ..base import write_json_atomic

    model_dir = os.path.join(folder, "model")
    record_path = os.path.join(model_dir, "recipe_teacher.json")
    if os.path.isfile(record_path):
        if read_json(record_path, f"delete {model_dir}: the teacher is trained again").get("settings") == settings:
            return model_dir
        raise FileExistsError(f"{model_dir} holds a teacher trained with other settings: pass another output folder")
    tokenizer = AutoTokenizer.from_pretrained(base)
    labels = {"num_labels": len(task.labels), "id2label": dict(enumerate(task.labels)),
              "label2id": {n: i for i, n in enumerate(task.labels)}}
    token = task.kind == "token"
    if smoke:
        config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32, **labels)
        teacher = BertForTokenClassification(config) if token else BertForSequenceClassification(config)
    else:
        auto = AutoModelForTokenClassification if token else AutoModelForSequenceClassification
        teacher = auto.from_pretrained(base, **labels)
    targs = DistillationTrainingArguments(
        output_dir=os.path.join(folder, "run"), kd_loss="none", num_train_epochs=epochs, learning_rate=learning_rate,
        per_device_train_batch_size=batch_size, per_device_eval_batch_size=64, warmup_ratio=0.1, weight_decay=0.01,
        **keep_best_epoch(task.metric, save_only_model=False), report_to="none", disable_tqdm=True,
        group_by_length=True, seed=0, logging_steps=50, bf16=bf16, restore_callback_states_from_checkpoint=True)
    train, dev = task.encode(raw["train"], tokenizer), task.encode(raw["validation"], tokenizer)
    floor = constant_prediction_score(task, train, dev)
    trainer = DistillationTrainer(model=teacher, args=targs, processing_class=tokenizer, train_dataset=train,
                                  eval_dataset=dev, compute_metrics=task.compute_metrics(),
                                  callbacks=[Progress("teacher"), EarlyStoppingAboveFloor(patience, floor)])
    trainer.remove_callback(PrinterCallback)
    run_record = os.path.join(folder, "run", "teacher_settings.json")
    resume = None
    if os.path.isfile(run_record):
        from transformers.trainer_utils import get_last_checkpoint

        same = read_json(run_record, f"delete {folder}/run: the teacher is trained again") == settings
        resume = get_last_checkpoint(os.path.join(folder, "run")) if same else None
        if not same:
            raise FileExistsError(f"{folder}/run holds a teacher run with other settings: pass another output folder")
    os.makedirs(os.path.join(folder, "run"), exist_ok=True)
    write_json_atomic(run_record, settings)
    trainer.train(resume_from_checkpoint=resume)
    if require_progress if require_progress is not None else not smoke:
        best = trainer.state.best_metric
        if best is None or best <= floor + 1e-9:
            raise TeacherDidNotLearnError(
                f"the teacher fine-tuned in {folder} reached dev {task.metric} {best} after {trainer.state.global_step}"
                f" steps ({epochs:g} epochs, learning rate {learning_rate:g}): no better than predicting the most "
                f"frequent label everywhere ({floor:.4f}). Nothing was saved to {model_dir}; fine-tune longer or "
                f"with a higher learning rate (e.g. more teacher epochs), after deleting {folder}/run")
    trainer.save_student(model_dir, role="teacher")
    import torch

    # the dev score of every epoch and the thread count: fine-tuning on CPU is deterministic for a given thread
    # count, so a later machine can tell after one epoch whether a lost teacher is being rebuilt bit for bit
    history = [round(h[f"eval_{task.metric}"], 6) for h in trainer.state.log_history if f"eval_{task.metric}" in h]
    write_json_atomic(record_path, {"settings": settings, "best_dev": trainer.state.best_metric,
                                    "metric": task.metric, "dev_history": history,
                                    "threads": torch.get_num_threads()})
    return model_dir
