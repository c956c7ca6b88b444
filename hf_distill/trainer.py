"""``DistillationTrainer``: a thin ``Trainer`` whose loss is task loss + weighted distillation terms."""

from __future__ import annotations

import copy
import logging
import math
import os
from collections import defaultdict

import torch
from torch import nn
from transformers import Trainer
from transformers.trainer_utils import get_last_checkpoint

from .args import DistillationTrainingArguments
from .base import DISTILLATION_FILE, IGNORE_INDEX, extra_model_inputs, write_json_atomic
from .checkpoints import resume_state, save_trainer_state
from .collator import EXTRA_COLUMNS, DistillationCollator
from .counting import COUNT_NAMES, count_items
from .data.align import DISTILL_MASK
from .data.transfer import log_row_counts
from .losses import HIDDEN_LOSSES, KD_LOSSES, KDBatch, cross_entropy
from .projections import build_projections
from .schedules import auto_kd_weight, kd_weight_at, task_weight_at
from .signals import (
    CachedTeacher,
    OnlineTeacher,
    has_cache_columns,
    label_map_id,
    label_names,
    teacher_fingerprint,
    tokenizer_fingerprint,
)
from .students.common import crf_nll
from .validate import LabelSetMismatchError, check_setup  # noqa: F401  (re-exported)

logger = logging.getLogger(__name__)

#: name of the student's submodule holding the hidden-state projections
PROJECTIONS = "distill_projections"


class DistillationTrainer(Trainer):
    """``Trainer`` for knowledge distillation into token or sequence classifiers.

    ``teacher_model`` is placed once through the accelerator in eval mode and run under ``no_grad``;
    datasets carrying columns from :func:`~hf_distill.cache_teacher_outputs` skip the teacher forward.
    Each loss term is normalized by its item count over the whole accumulated (and, across processes,
    gathered) batch, so gradient accumulation and multi-process runs give the loss of one large batch.
    Evaluation reports the task loss only.
    """

    def __init__(self, model=None, args: DistillationTrainingArguments | None = None, teacher_model=None,
                 teacher_signal=None, data_collator=None, processing_class=None, **kwargs):
        if args is None:
            args = DistillationTrainingArguments(output_dir="hf_distill_output")
        if not isinstance(args, DistillationTrainingArguments):
            raise TypeError("DistillationTrainer needs DistillationTrainingArguments, got " + type(args).__name__)
        if data_collator is None and processing_class is not None:
            data_collator = DistillationCollator(processing_class, extra_inputs=extra_model_inputs(model))
        super().__init__(model=model, args=args, data_collator=data_collator, processing_class=processing_class,
                         **kwargs)
        # compute_loss normalizes every term by counts over the accumulated batch (see _get_num_items_in_batch)
        self.model_accepts_loss_kwargs = True
        self._item_counts: dict[str, torch.Tensor] = {}
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self._auto_kd_weight: float | None = None
        self.hidden_specs = args.hidden_match_specs
        self.teacher = None
        check_setup(args, self.model, teacher_model, processing_class, self.train_dataset)
        if teacher_model is not None:
            teacher_id = teacher_fingerprint(teacher_model)
            teacher_model.requires_grad_(False)
            self.teacher = self.accelerator.prepare_model(teacher_model, evaluation_mode=True)
            self.teacher.eval()
        else:
            teacher_id = None
        config = getattr(self.model, "config", None)
        self.cached_signal = CachedTeacher(
            teacher_id=teacher_id, num_labels=getattr(config, "num_labels", None), label_map=label_map_id(config),
            tokenizer_id=tokenizer_fingerprint(processing_class), labels=label_names(config))
        self.online_signal = teacher_signal or (
            OnlineTeacher(self.teacher, output_hidden_states=bool(self.hidden_specs)) if self.teacher else None
        )
        # the teacher signal is chosen once: cached columns in the training rows, else the online teacher
        columns = getattr(self.train_dataset, "column_names", None) or []
        self.signal_kind = None  # without training rows to look at, the first training batch decides
        if columns:
            self.signal_kind = "cached" if has_cache_columns(columns) else "online" if self.online_signal else None
        self._build_projections(teacher_model)
        self.row_counts = log_row_counts(self.train_dataset, args.kd_loss != "none" or bool(self.hidden_specs))
        if self._crf(self.model) is not None and self.preprocess_logits_for_metrics is None:
            self.preprocess_logits_for_metrics = self._viterbi_predictions

    def _crf(self, model):
        return getattr(self.accelerator.unwrap_model(model), "crf", None)

    def _viterbi_predictions(self, logits, labels):
        """Label ids decoded through the student's CRF at labeled positions (for compute_metrics)."""
        logits = logits[0] if isinstance(logits, tuple) else logits
        return self.accelerator.unwrap_model(self.model).decode(logits, labels != IGNORE_INDEX)

    # ----------------------------------------------------------------- set-up
    def _build_projections(self, teacher) -> None:
        """Learned maps from student to teacher hidden sizes, attached to the student (as DistillKit does) so
        they are trained, wrapped, clipped, checkpointed and resumed with it; ``save_student`` leaves them out."""
        if not self.hidden_specs:
            return
        if teacher is None:
            raise ValueError("hidden_matches need teacher_model= (hidden states are not cached)")
        projections = build_projections(self.hidden_specs, teacher, self.model)
        self.model.add_module(PROJECTIONS, projections.to(self.args.device))

    @property
    def projections(self) -> nn.ModuleDict:
        """The hidden-state projections attached to the student (empty without hidden matches)."""
        return getattr(self.accelerator.unwrap_model(self.model), PROJECTIONS, None) or nn.ModuleDict()

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        self._signature_columns += [c for c in EXTRA_COLUMNS if c not in self._signature_columns]

    # ------------------------------------------------------- item counting
    def _get_num_items_in_batch(self, batch_samples, device):
        """Count task labels (returned, as ``Trainer`` expects), KD positions and tokens over the batches."""
        if not batch_samples:
            return None
        counts = count_items(batch_samples, device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            counts = self.accelerator.gather(counts.unsqueeze(0)).sum(0)
        self._item_counts = dict(zip(COUNT_NAMES, counts))
        return counts[0]

    def distillation_info(self) -> dict:
        """What a model card needs to say about how this student was distilled (no metrics)."""
        a = self.args
        teacher = self.accelerator.unwrap_model(self.teacher) if self.teacher is not None else None
        info = {
            "teacher": getattr(getattr(teacher, "config", None), "_name_or_path", None) if teacher else None,
            "teacher_fingerprint": self.cached_signal.teacher_id,
            "teacher_signal": self.signal_kind,
            "kd_loss": a.kd_loss, "temperature": a.temperature, "kd_weight": a.kd_weight,
            "resolved_kd_weight": self._auto_kd_weight, "task_weight": a.task_weight,
            "kd_weight_schedule": a.kd_weight_schedule, "hidden_matches": a.hidden_matches or None,
            "num_train_epochs": a.num_train_epochs, "learning_rate": a.learning_rate,
            "per_device_train_batch_size": a.per_device_train_batch_size,
            "gradient_accumulation_steps": a.gradient_accumulation_steps, "world_size": a.world_size,
            "seed": a.seed, "global_step": self.state.global_step,
            "train_examples": len(self.train_dataset) if self.train_dataset is not None else None,
            **self.row_counts,
        }
        if a.kd_loss == "kbest":
            info["kbest_k"] = a.kbest_k
        return info

    def save_student(self, output_dir: str, **record) -> None:
        """``save_model`` (weights, config, tokenizer, modeling code) plus ``distillation.json``: the KD
        settings of :meth:`distillation_info` updated with ``record`` (dataset, metrics, command...)."""
        model = self.accelerator.unwrap_model(self.model)
        projections = model._modules.pop(PROJECTIONS, None)  # training-only layers: not part of the student
        try:
            self.save_model(output_dir)
        finally:
            if projections is not None:
                model.add_module(PROJECTIONS, projections)
        if self.is_world_process_zero():
            write_json_atomic(os.path.join(output_dir, DISTILLATION_FILE), {**self.distillation_info(), **record})

    # ---------------------------------------------------------- checkpoints
    def _save_checkpoint(self, model, trial):
        """``Trainer._save_checkpoint`` plus the state the trainer itself resolved (the ``auto`` KD weight)."""
        super()._save_checkpoint(model, trial)
        if self.is_world_process_zero():
            folder = os.path.join(self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}")
            save_trainer_state(folder, self._auto_kd_weight)

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs):
        """``Trainer.train``; a resumed run restores the resolved ``auto`` KD weight and refuses a checkpoint
        without optimizer or scheduler state (it would restart them silently)."""
        checkpoint = resume_from_checkpoint
        if checkpoint is True:
            checkpoint = get_last_checkpoint(self.args.output_dir)
        if isinstance(checkpoint, str):
            self._auto_kd_weight = resume_state(checkpoint, self.args.kd_weight)
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def _save(self, output_dir: str | None = None, state_dict=None):
        """``Trainer._save`` with the Hub token stripped from the pickled ``training_args.bin``."""
        if not (self.args.hub_token or getattr(self.args, "push_to_hub_token", None)):
            return super()._save(output_dir, state_dict)
        real = self.args
        self.args = copy.copy(real)
        self.args.hub_token = None
        if hasattr(self.args, "push_to_hub_token"):
            self.args.push_to_hub_token = None
        try:
            return super()._save(output_dir, state_dict)
        finally:
            self.args = real

    # -------------------------------------------------------------- the loss
    def kd_weight_now(self) -> float:
        """The KD weight at the current step: base weight (number or auto) times the schedule."""
        return kd_weight_at(self.args, self.state, self._auto_kd_weight)

    def task_weight_now(self) -> float:
        """The task weight at the current step (0 before the last epoch under ``kd_only_until_last_epoch``)."""
        return task_weight_at(self.args, self.state)

    def _set_auto_weight(self, task: torch.Tensor, kd: torch.Tensor) -> None:
        pair = torch.stack([task.detach().float(), kd.detach().float()])
        if self.args.world_size > 1:
            pair = self.accelerator.reduce(pair, reduction="mean")
        self._auto_kd_weight = auto_kd_weight((self.args.task_weight * pair[0]).item(), pair[1].item())
        logger.info("kd_weight=auto: set to %.4g on the first step", self._auto_kd_weight)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        labels = inputs.pop("labels", None)
        distill_mask = inputs.pop(DISTILL_MASK, None)
        cached = {k: inputs.pop(k) for k in EXTRA_COLUMNS if k in inputs}
        training = model.training
        want_hidden = training and bool(self.hidden_specs)
        outputs = model(**inputs, output_hidden_states=True) if want_hidden else model(**inputs)
        logits = outputs.logits
        if labels is not None:
            labels = labels.to(logits.device)
        crf = self._crf(model)
        if not training:  # evaluation: the task loss, averaged over labeled items (sequences for a CRF)
            loss = self._task_loss(crf, logits, labels, {}) if labels is not None else logits.new_zeros(())
            return (loss, outputs) if return_outputs else loss

        counts = self._item_counts if num_items_in_batch is not None else {}
        token_level = logits.dim() == 3
        terms: dict[str, torch.Tensor] = {}
        task_weight = self.task_weight_now()
        distilling = self.args.kd_loss != "none" or bool(self.hidden_specs)
        need_auto = self.args.kd_weight == "auto" and self._auto_kd_weight is None
        # a zero-weight task term (KD-only epochs) is skipped: it would cost a CRF forward pass for nothing
        if labels is not None and (task_weight != 0 or need_auto or not distilling):
            task = self._task_loss(crf, logits, labels, counts)
            terms["task_loss"] = task
        else:
            task = logits.new_zeros(())
        loss = task_weight * task

        # a zero-weight KD term (e.g. the NLL-only last epoch) is skipped, teacher forward included
        kd_weight = None if need_auto else self.kd_weight_now()
        kd_active = self.args.kd_loss != "none" and kd_weight != 0
        if kd_active or self.hidden_specs:
            teacher = self._teacher_signal(cached)(inputs, cached)
        if kd_active:
            # KD positions: first sub-words, labeled or not (token level); every example (sequence level)
            mask = None
            if token_level:
                mask = distill_mask.bool() if distill_mask is not None else labels.ne(IGNORE_INDEX)
            kd = self._kd_term(crf, logits, teacher, mask, counts)
            if need_auto:
                self._set_auto_weight(task, kd)
                kd_weight = self.kd_weight_now()
            loss = loss + kd_weight * kd
            terms[f"kd_{self.args.kd_loss}_loss"] = kd
        if self.args.kd_loss != "none":
            self._metrics["kd_weight"].append(kd_weight)
        if self.hidden_specs:
            loss = loss + self._hidden_terms(outputs, teacher, inputs, counts.get("tokens"), terms)

        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # DDP averages gradients; counts were gathered
        for name, value in terms.items():
            number = value.detach().item()
            if not math.isfinite(number):
                raise FloatingPointError(
                    f"loss term {name} is {number} at step {self.state.global_step}: check the teacher signal "
                    "(a top-k cache gives -inf outside its k labels, which structured KD cannot use) and the "
                    "learning rate")
            self._metrics[name].append(number)
        return (loss, outputs) if return_outputs else loss

    def _teacher_signal(self, cached: dict):
        """The signal chosen for this run (the first batch decides when the training rows could not)."""
        if self.signal_kind is None:
            self.signal_kind = "cached" if has_cache_columns(cached) else "online" if self.online_signal else None
        if self.signal_kind is None:
            raise ValueError("no teacher signal: pass teacher_model= or train on cache_teacher_outputs() data")
        if self.signal_kind == "cached" and not has_cache_columns(cached):
            raise ValueError("this run reads cached teacher outputs, but a batch has no cache columns: cache every "
                             "training row (labeled and transfer rows together)")
        return self.cached_signal if self.signal_kind == "cached" else self.online_signal

    def _kd_term(self, crf, logits, teacher, mask, counts) -> torch.Tensor:
        """The KD term of the registered loss ``kd_loss``, given the hyper-parameters it declares."""
        loss = KD_LOSSES[self.args.kd_loss]
        batch = KDBatch(logits, teacher.logits.to(logits.device), mask, counts,
                        student_crf=crf.potentials() if crf is not None else None, teacher_crf=teacher.crf)
        return loss(batch, **{name: getattr(self.args, name) for name in loss.hparams})

    @staticmethod
    def _task_loss(crf, logits, labels, counts) -> torch.Tensor:
        if crf is not None and logits.dim() == 3:
            return crf_nll(crf, logits, labels, normalizer=counts.get("task_rows"))
        return cross_entropy(logits, labels, normalizer=counts.get("task"))

    def _hidden_terms(self, outputs, teacher, inputs, normalizer, terms) -> torch.Tensor:
        if teacher.hidden_states is None:
            raise ValueError("hidden_matches need the teacher online (cached outputs hold logits only)")
        mask = inputs.get("attention_mask")
        total = 0.0
        for t, s, kind in self.hidden_specs:
            student_h = outputs.hidden_states[s]
            key = f"{t}_{s}"
            if key in self.projections:
                student_h = self.projections[key](student_h)
            term = HIDDEN_LOSSES[kind](student_h, teacher.hidden_states[t].to(student_h.device), mask,
                                       normalizer=normalizer)
            terms[f"hidden_{t}_{s}_{kind}_loss"] = term
            total = total + self.args.hidden_weight * term
        return total

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._metrics:  # training log: add the mean of each term since the last log
            for name, values in self._metrics.items():
                logs[name] = round(sum(values) / len(values), 6)
            self._metrics.clear()
        super().log(logs, start_time)
