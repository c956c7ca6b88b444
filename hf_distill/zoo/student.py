"""Training one zoo student: the key of its settings (what a resumed or repeated run is matched on), its
training arguments, and the checkpoint a killed run resumes from."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

from ..base import write_json_atomic
from ..files import DamagedFileError, check_checkpoint, read_json
from .specs import implied_config

if TYPE_CHECKING:
    from ..runs import TaskSpec
    from .args import ZooArguments
    from .specs import StudentSpec

#: the zoo's defaults for the template's fields (the command line can change each): the KD weight balanced against
#: the task loss on the first step, as every zoo result was measured
TEMPLATE_DEFAULTS = {"kd_weight": "auto", "warmup_ratio": 0.1, "weight_decay": 0.01}

#: the fields the zoo sets on each student's training arguments (the template's values are replaced)
PER_STUDENT = ("output_dir", "num_train_epochs", "learning_rate", "per_device_train_batch_size", "seed", "bf16")


def settings_key(spec: StudentSpec, args: ZooArguments, template, teacher_id: str, kd: bool,
                 seed: int | None = None, words: dict | None = None) -> str:
    """A short hash of everything that decides a student's result: spec, data, KD and training settings (the
    template's distillation fields), teacher, seed, and for word-level students the word vectors' report
    (``words``) when their vocabulary reaches past the training words into the teacher's."""
    keep = {k: getattr(args, k) for k in ("dataset", "transfer", "dev_fraction", "dev_seed",
                                          "max_train_samples", "max_dev_samples", "max_eval_samples", "epochs",
                                          "patience", "batch_size", "seed", "search", "quantize")}
    # these enter the key only when set, so results finished before these options existed stay valid
    keep.update({k: getattr(args, k) for k, default in (("label_column", None), ("text_column", "text"),
                                                        ("trim_vocabulary", "auto"),
                                                        ("cache_backend", "torch"), ("transfer_length", None),
                                                        ("transfer_max_rows", None), ("bf16", False),
                                                        ("augment", "none"), ("augment_copies", 0),
                                                        ("word_vectors", "teacher"), ("vector_words", 0),
                                                        ("dataset_config", None), ("dataset_revision", None))
                 if getattr(args, k) != default})
    if kd:
        from ..training.args import kd_settings

        keep.update(kd_settings(template))
    if seed is not None and seed != args.seed:
        keep["seed"] = seed
    if not spec.word_level:
        keep.pop("word_vectors", None)
        keep.pop("vector_words", None)
    elif words and words.get("extra_words"):
        keep["word_vocabulary"] = {k: words.get(k) for k in ("source", "extra_words", "vocabulary")}
        keep.update(implied_config(spec, words))
    blob = json.dumps([asdict(spec), keep, teacher_id, kd], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def training_args(args: ZooArguments, template, folder: str, task: TaskSpec, kd: bool, lr: float, **over):
    """One student's ``DistillationTrainingArguments``: the ``template`` (its KD settings and anything else the
    user set) with the zoo's per-student fields: output folder, epochs, learning rate, batch size, seed, early
    stopping on the dev split with the best epoch restored, length-grouped batches; ``over`` replaces any of them
    (a searched temperature, another seed). Without KD, ``kd_loss="none"``."""
    from ..training.args import derive, keep_best_epoch

    base = dict(
        output_dir=folder, num_train_epochs=args.epochs, learning_rate=lr, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=64, seed=args.seed, report_to="none",
        disable_tqdm=True, dataloader_pin_memory=False, group_by_length=True,
        **keep_best_epoch(task.metric, save_only_model=False), logging_steps=50, bf16=args.bf16,
        restore_callback_states_from_checkpoint=True)  # a resumed run keeps its early-stopping count
    if not kd:
        base["kd_loss"] = "none"
    return derive(template, **{**base, **over})


def default_template(args: ZooArguments):
    """The template when none is given: ``DistillationTrainingArguments`` on its defaults (KL, T=1), with the
    zoo's own defaults: ``kd_weight="auto"``, warm-up and weight decay (:data:`TEMPLATE_DEFAULTS`)."""
    from ..training.args import DistillationTrainingArguments

    return DistillationTrainingArguments(output_dir=args.output_dir, **TEMPLATE_DEFAULTS)


def claim(folder: str) -> str | None:
    """Claim a student for this process: creates ``<folder>.lock`` holding the process id and returns its path, or
    None while another live process holds it (zoo processes started side by side on one output_dir share the
    students this way). A lock left by a dead process is taken over."""
    path = folder.rstrip(os.sep) + ".lock"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                with open(path) as f:
                    pid = int(f.read().strip() or 0)
                age = time.time() - os.path.getmtime(path)
            except (OSError, ValueError):
                pid, age = 0, 0.0
            if pid == os.getpid():
                return path
            if (pid and _alive(pid)) or (not pid and age < 60):  # no pid yet: its writer is between two calls
                return None
            try:  # its process is gone (killed): take the student over
                os.remove(path)
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return path
    return None


def release(lock: str | None) -> None:
    """Remove a lock taken by :func:`claim`."""
    if lock:
        try:
            os.remove(lock)
        except FileNotFoundError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def resume_point(folder: str, key: str, say) -> str | None:
    """The last checkpoint of a killed run of this student with the same settings (``key``), else None.

    The key is recorded before training starts; checkpoints left by a run with other settings are removed so
    that they are neither resumed nor mistaken for this run's best."""
    import shutil

    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

    record = os.path.join(folder, "zoo_key.json")
    same = False
    if os.path.isfile(record):
        same = read_json(record).get("key") == key
    last = get_last_checkpoint(folder) if os.path.isdir(folder) else None
    while last and same:
        try:
            check_checkpoint(last)
            if not os.path.isfile(os.path.join(last, "trainer_state.json")):
                raise DamagedFileError(f"{last} has no trainer_state.json")
        except DamagedFileError as e:  # the run was killed while saving it: go back one checkpoint
            say(f"{os.path.basename(folder)}: {os.path.basename(last)} is incomplete ({e}); removed")
            shutil.rmtree(last)
            last = get_last_checkpoint(folder)
            continue
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


