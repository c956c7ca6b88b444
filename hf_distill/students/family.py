"""The record of a student family: what ``build_student``, the Auto classes, ONNX export and the zoo read.

A new family is its module (a ``PretrainedConfig`` + ``PreTrainedModel`` pair) plus one
``register_family(StudentFamily(...))`` call; nothing else in the library names families.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification

_AUTO = {"token": AutoModelForTokenClassification, "sequence": AutoModelForSequenceClassification}


@dataclass(frozen=True)
class StudentFamily:
    """One student family.

    Args:
        name: the name ``build_student`` and zoo specs use (``"bilstm"``).
        config_class: its ``PretrainedConfig`` (``model_type`` identifies saved models of the family).
        models: model class per task: ``"token"`` (tagging) and/or ``"sequence"`` (text classification).
        onnx_inputs: the graph inputs of an ONNX export, each with axes (batch, sequence), in ``forward``'s order.
        onnx_dummy: ``config -> {input: tensor}`` for inputs that are not token ids (e.g. characters); an input of
            ``onnx_inputs`` it leaves out for a config is not an input of that config's graph.
        trimmable: its embedding table can keep only the sub-words a data set uses (``trim_vocabulary``).
        word_level: it reads words and characters through its own word tokenizer (not the teacher's).
        presets: zoo presets, ``name -> (config, learning rate)``.
        build: ``(config kwargs, task) -> model`` when a family is not built as ``models[task](config_class(...))``.
        register_auto: register ``config_class``/``models`` with the Auto classes (off for transformers' own).
    """

    name: str
    config_class: type
    models: Mapping[str, type]
    onnx_inputs: tuple[str, ...] = ("input_ids", "attention_mask")
    onnx_dummy: Callable | None = None
    trimmable: bool = False
    word_level: bool = False
    presets: Mapping[str, tuple[dict, float]] = field(default_factory=dict)
    build: Callable | None = None
    register_auto: bool = True

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.models)

    @property
    def model_type(self) -> str:
        return self.config_class.model_type


#: every registered family by name
FAMILIES: dict[str, StudentFamily] = {}


def register_family(family: StudentFamily) -> StudentFamily:
    """Add ``family`` (replacing one of the same name) and register its classes with the Auto classes, so that
    saved students reload with ``AutoModelFor...Classification`` and carry their code (``trust_remote_code``).

    Args:
        family: the record.

    Returns:
        The record, for use as a module-level constant.
    """
    unknown = sorted(set(family.models) - set(_AUTO))
    if unknown or not family.models:
        raise ValueError(f"student family {family.name!r}: tasks {unknown or '(none)'}; use 'token' and/or "
                         "'sequence'")
    FAMILIES[family.name] = family
    if family.register_auto:
        config_cls = family.config_class
        AutoConfig.register(config_cls.model_type, config_cls, exist_ok=True)
        config_cls.register_for_auto_class()
        for task, model_cls in family.models.items():
            _AUTO[task].register(config_cls, model_cls, exist_ok=True)
            model_cls.register_for_auto_class(_AUTO[task].__name__)
    return family


def family_for_model_type(model_type: str) -> StudentFamily | None:
    """The registered family whose config has ``model_type`` (the first one registered), else None."""
    return next((f for f in FAMILIES.values() if f.register_auto and f.model_type == model_type), None)
