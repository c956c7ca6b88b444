"""``DistillationTrainer``: a thin ``Trainer`` whose loss is task loss + weighted distillation terms."""

from __future__ import annotations

import logging
import os
from collections import defaultdict

import torch
from torch import nn
from transformers import Trainer
from transformers.trainer_utils import get_last_checkpoint

from ..base import DISTILLATION_FILE, IGNORE_INDEX, extra_model_inputs, write_json_atomic
from ..data.align import DISTILL_MASK
from ..data.transfer import log_row_counts
from ..files import check_checkpoint
from ..losses import KD_LOSSES, KDBatch, cross_entropy, finite_values, hidden_terms
from ..students.common import crf_nll
from .args import DistillationTrainingArguments
from .checkpoints import distillation_record, resume_state, save_trainer_state, without_hub_token
from .collator import EXTRA_COLUMNS, DistillationCollator, hidden_as_numpy
from .counting import COUNT_NAMES, count_items
from .projections import attach_projections, projections_detached, projections_of
from .schedules import auto_kd_weight, kd_weight_at, task_weight_at
from .signals import OnlineTeacher, SignalSelector, teacher_fingerprint
from .validate import LabelSetMismatchError, check_setup  # noqa: F401  (re-exported)

logger = logging.getLogger(__name__)

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
        if "train_dataset" in kwargs:
            kwargs["train_dataset"] = hidden_as_numpy(kwargs["train_dataset"])
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
        self.teacher_id = teacher_fingerprint(teacher_model) if teacher_model is not None else None
        if teacher_model is not None:
            teacher_model.requires_grad_(False)
            self.teacher = self.accelerator.prepare_model(teacher_model, evaluation_mode=True)
            self.teacher.eval()
        online = teacher_signal or (
            OnlineTeacher(self.teacher, output_hidden_states=bool(self.hidden_specs)) if self.teacher else None)
        # the teacher signal is chosen once (cached columns in the training rows, else the online teacher)
        self.signal = SignalSelector.for_run(self.model, self.teacher_id, processing_class, online,
                                             getattr(self.train_dataset, "column_names", None) or [])
        attach_projections(self.model, self.hidden_specs, teacher_model, args.device)
        self.row_counts = log_row_counts(self.train_dataset, args.kd_loss != "none" or bool(self.hidden_specs))
        if self._crf(self.model) is not None and self.preprocess_logits_for_metrics is None:
            self.preprocess_logits_for_metrics = self._viterbi_predictions

    def _crf(self, model):
        return getattr(self.accelerator.unwrap_model(model), "crf", None)

    def create_optimizer(self):
        """``Trainer.create_optimizer``; with ``crf_learning_rate``, the CRF head's parameters move to a group of
        their own with that learning rate (no weight decay), scheduled like the others."""
        optimizer = super().create_optimizer()
        crf = self._crf(self.model)
        rate = getattr(self.args, "crf_learning_rate", None)
        if rate is None or crf is None or any(g.get("crf") for g in optimizer.param_groups):
            return optimizer
        ids = {id(p) for p in crf.parameters() if p.requires_grad}
        for group in optimizer.param_groups:
            group["params"] = [p for p in group["params"] if id(p) not in ids]
        optimizer.add_param_group({"params": [p for p in crf.parameters() if p.requires_grad], "lr": rate,
                                   "weight_decay": 0.0, "crf": True})
        return optimizer

    def _viterbi_predictions(self, logits, labels):
        """Label ids decoded through the student's CRF at labeled positions (for compute_metrics)."""
        logits = logits[0] if isinstance(logits, tuple) else logits
        return self.accelerator.unwrap_model(self.model).decode(logits, labels != IGNORE_INDEX)

    @property
    def projections(self) -> nn.ModuleDict:
        """The hidden-state projections attached to the student (empty without hidden matches)."""
        return projections_of(self.accelerator.unwrap_model(self.model))

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        self._signature_columns += [c for c in EXTRA_COLUMNS if c not in self._signature_columns]

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
        teacher = self.accelerator.unwrap_model(self.teacher) if self.teacher is not None else None
        return distillation_record(self.args, self.state, teacher=teacher, teacher_id=self.teacher_id,
                                   signal=self.signal.kind, auto_kd_weight=self._auto_kd_weight,
                                   train_examples=len(self.train_dataset) if self.train_dataset is not None else None,
                                   row_counts=self.row_counts)

    def save_student(self, output_dir: str, **record) -> None:
        """``save_model`` (weights, config, tokenizer, modeling code) plus ``distillation.json``: the KD
        settings of :meth:`distillation_info` updated with ``record`` (dataset, metrics, command...)."""
        with projections_detached(self.accelerator.unwrap_model(self.model)):  # training-only layers
            self.save_model(output_dir)
        if self.is_world_process_zero():
            write_json_atomic(os.path.join(output_dir, DISTILLATION_FILE), {**self.distillation_info(), **record})

    def _save_checkpoint(self, model, trial):
        """``Trainer._save_checkpoint`` plus the state the trainer itself resolved (the ``auto`` KD weight)."""
        super()._save_checkpoint(model, trial)
        if self.is_world_process_zero():
            folder = os.path.join(self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}")
            save_trainer_state(folder, self._auto_kd_weight)

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs):
        """``Trainer.train``; a resumed run checks every file of its checkpoint first (a damaged one is named, with
        the checkpoint to go back to), restores the resolved ``auto`` KD weight and refuses a checkpoint without
        optimizer or scheduler state (it would restart them silently)."""
        checkpoint = resume_from_checkpoint
        if checkpoint is True:
            checkpoint = get_last_checkpoint(self.args.output_dir)
        if isinstance(checkpoint, str):
            check_checkpoint(checkpoint)
        # a fresh run (a new search trial too) resolves ``auto`` again; a resumed one restores its value
        self._auto_kd_weight = resume_state(checkpoint, self.args.kd_weight) if isinstance(checkpoint, str) else None
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def _save(self, output_dir: str | None = None, state_dict=None):
        """``Trainer._save`` with the Hub token stripped from the pickled ``training_args.bin``."""
        with without_hub_token(self):
            return super()._save(output_dir, state_dict)

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
            teacher = self.signal(cached)(inputs, cached)
        if kd_active:
            # KD positions: first sub-words, labeled or not (token level); every example (sequence level)
            mask = None if logits.dim() == 2 else \
                distill_mask.bool() if distill_mask is not None else labels.ne(IGNORE_INDEX)
            kd = self._kd_term(crf, logits, teacher, mask, counts)
            if need_auto:
                self._set_auto_weight(task, kd)
                kd_weight = self.kd_weight_now()
            loss = loss + kd_weight * kd
            terms[f"kd_{self.args.kd_loss}_loss"] = kd
        if self.args.kd_loss != "none":
            self._metrics["kd_weight"].append(kd_weight)
        if self.hidden_specs:
            hidden = hidden_terms(self.hidden_specs, outputs.hidden_states, teacher.hidden_states, self.projections,
                                  inputs.get("attention_mask"), counts.get("tokens"))
            loss = loss + self.args.hidden_weight * sum(hidden.values())
            terms.update(hidden)

        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # DDP averages gradients; counts were gathered
        for name, number in finite_values(terms, self.state.global_step).items():
            self._metrics[name].append(number)
        return (loss, outputs) if return_outputs else loss

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

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._metrics:  # training log: add the mean of each term since the last log
            for name, values in self._metrics.items():
                logs[name] = round(sum(values) / len(values), 6)
            self._metrics.clear()
        super().log(logs, start_time)
