"""Checks run before any compute: do teacher, student, tokenizer and training rows fit together?

Each raises a ``ValueError`` subclass naming the model, the row or the label and what to do, instead of
an index error deep inside torch.
"""

from __future__ import annotations

from torch import nn

from ..base import IGNORE_INDEX, extra_model_inputs


class LabelSetMismatchError(ValueError):
    """Teacher and student predict different label sets."""


def check_label_sets(teacher: nn.Module, student: nn.Module) -> None:
    """Raise if teacher and student disagree on the number or the names of their labels."""
    t_cfg, s_cfg = getattr(teacher, "config", None), getattr(student, "config", None)
    if t_cfg is None or s_cfg is None:
        return
    if t_cfg.num_labels != s_cfg.num_labels:
        raise LabelSetMismatchError(f"teacher has {t_cfg.num_labels} labels, student has {s_cfg.num_labels}")
    t_names = [t_cfg.id2label[i] for i in range(t_cfg.num_labels)]
    s_names = [s_cfg.id2label[i] for i in range(s_cfg.num_labels)]
    generic = [f"LABEL_{i}" for i in range(t_cfg.num_labels)]
    if t_names != s_names and generic not in (t_names, s_names):
        raise LabelSetMismatchError(f"teacher labels {t_names} differ from student labels {s_names}")


def check_vocabulary(model: nn.Module, tokenizer, who: str = "model") -> None:
    """Raise if the tokenizer can produce ids beyond the model's input embedding table."""
    if tokenizer is None or not hasattr(tokenizer, "__len__") or not hasattr(model, "get_input_embeddings"):
        return
    emb = model.get_input_embeddings()
    if not isinstance(emb, nn.Embedding):
        return
    # a trimmed table (students.TrimmedEmbedding) reads every id of its id map, with fewer rows
    accepted = emb.id_map.shape[0] if hasattr(emb, "id_map") else emb.num_embeddings
    if len(tokenizer) > accepted:
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the {who} embeds only {accepted}: "
                         f"use the {who}'s own tokenizer, or build the student with vocab_size=len(tokenizer)")


def check_max_length(max_length: int, config, who: str = "teacher") -> None:
    """Raise if ``max_length`` (tokens per row) exceeds the position embeddings of ``config`` (a model's config)."""
    limit = getattr(config, "max_position_embeddings", None)
    if limit and max_length > limit:
        raise ValueError(f"max_length={max_length} is above the {who}'s {limit} position embeddings "
                         f"({getattr(config, '_name_or_path', '') or type(config).__name__}): use max_length<={limit}")


def longest_row(dataset) -> int:
    """Tokens in the longest ``input_ids`` row of a dataset (read from Arrow, not row by row)."""
    import pyarrow.compute as pc

    if dataset is None or "input_ids" not in getattr(dataset, "column_names", ()) or not len(dataset):
        return 0
    return int(pc.max(pc.list_value_length(dataset.data.column("input_ids"))).as_py() or 0)


def check_rows(dataset, models: dict[str, nn.Module]) -> None:
    """Raise if a row is longer than a model's position embeddings or holds a label id the models lack."""
    if dataset is None or not hasattr(dataset, "column_names"):
        return
    if "input_ids" in dataset.column_names:
        longest = longest_row(dataset)
        for who, model in models.items():
            limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
            if limit and longest > limit:
                raise ValueError(f"training rows are up to {longest} tokens long but the {who} has {limit} position "
                                 f"embeddings: tokenize with max_length<={limit}")
    column = next((c for c in ("labels", "label") if c in dataset.column_names), None)
    num_labels = {who: getattr(getattr(m, "config", None), "num_labels", None) for who, m in models.items()}
    if column is None or not any(num_labels.values()):
        return
    values = dataset[column]
    flat = [v for row in values for v in row] if values and isinstance(values[0], list) else values
    top = min(n for n in num_labels.values() if n)
    # -100 (ignored) and -1 (a ClassLabel's "no label") mark unlabeled items
    bad = sorted({v for v in flat if v is not None and (v >= top or v < -1) and v != IGNORE_INDEX})
    if bad:
        raise ValueError(f"{column!r} holds label ids {bad[:5]} outside 0..{top - 1} (num_labels {num_labels}): "
                         "the data's label set is larger than the models'")


def check_setup(args, student: nn.Module, teacher: nn.Module | None, tokenizer, train_dataset) -> None:
    """Every check of a distillation run that needs no compute: label sets, the inputs the student reads,
    vocabulary sizes, row lengths and label ids, and a CRF head where the KD loss needs one."""
    from ..losses import KD_LOSSES
    from .signals import CACHE_TOPK_VALUES

    distilling = args.kd_loss != "none" or bool(args.hidden_matches)
    if teacher is not None:
        check_label_sets(teacher, student)
        if extra_model_inputs(student) and distilling:
            raise ValueError(
                f"{type(student).__name__} reads {extra_model_inputs(student)}: its inputs are not the teacher's; "
                "cache the teacher on its own tokenization and move the cache with "
                "transfer_teacher_cache(cached, student_dataset, level='word'), then train without teacher_model")
        check_vocabulary(teacher, tokenizer, "teacher")
    check_vocabulary(student, tokenizer, "student")
    check_rows(train_dataset, {"student": student, **({"teacher": teacher} if teacher is not None else {})})
    columns = getattr(train_dataset, "column_names", None) or ()
    if args.kd_loss != "none" and CACHE_TOPK_VALUES in columns and not KD_LOSSES[args.kd_loss].top_k_ok:
        k = len(train_dataset[0][CACHE_TOPK_VALUES][0]) if len(train_dataset) else "k"
        raise ValueError(f"kd_loss={args.kd_loss!r} needs every label's teacher logit, but the training rows' teacher "
                         f"cache keeps the top {k} only: rebuild it without top_k (or use kd_loss='kl')")
    if args.kd_loss != "none" and KD_LOSSES[args.kd_loss].structured and getattr(student, "crf", None) is None:
        raise ValueError(f"kd_loss={args.kd_loss!r} needs a student with a CRF head (use_crf=True, or "
                         "BertCRFForTokenClassification)")
