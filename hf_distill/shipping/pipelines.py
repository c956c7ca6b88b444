"""``transformers`` pipelines over students, in PyTorch or exported and run by ``optimum.onnxruntime``.

``student_pipeline(path)`` returns a token-classification pipeline (with word-level aggregation) or a
text-classification pipeline. Two additions to the stock token-classification pipeline:

- CRF students decode with Viterbi over each word's first sub-word (as in training and evaluation);
  every sub-word takes its word's tag. Joint decoding has no per-token probability, so ``score`` is 1.0.
- Word-character students get their ``char_ids`` (and ``piece_ids``) built from each token's text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from optimum.onnxruntime import ORTModelForSequenceClassification, ORTModelForTokenClassification
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    TokenClassificationPipeline,
    pipeline,
)
from transformers.modeling_outputs import TokenClassifierOutput

from .. import students  # noqa: F401  (registers the students with the Auto classes)
from ..base import CRF_FILE, task_of
from ..data.words import PieceSegmenter, char_ids_for, piece_segmenter
from ..files import check_model_folder, read_json
from .crf_decode import viterbi
from .export import ONNX_FILE, QUANTIZED_FILE


class ORTStudentForTokenClassification(ORTModelForTokenClassification):
    """``ORTModelForTokenClassification`` that also feeds ``char_ids`` (and ``piece_ids``) to word-character
    students."""

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, char_ids=None, piece_ids=None, *,
                return_dict: bool = True, **kwargs):
        if "char_ids" not in self.input_names:
            return super().forward(input_ids, attention_mask, token_type_ids, return_dict=return_dict, **kwargs)
        use_torch = isinstance(input_ids, torch.Tensor)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "char_ids": char_ids}
        if "piece_ids" in self.input_names:
            inputs["piece_ids"] = piece_ids
        outputs = self._prepare_onnx_outputs(use_torch, self.session.run(None, self._prepare_onnx_inputs(
            use_torch, inputs)))
        return TokenClassifierOutput(logits=outputs["logits"]) if return_dict else (outputs["logits"],)


def _word_starts(word_ids, offsets, special) -> list[int]:
    """Token indices that begin a word: from ``word_ids`` when given, else from the character offsets."""
    starts, prev_word, prev_end = [], None, None
    for i in range(len(special)):
        if special[i]:
            prev_word, prev_end = None, None
            continue
        if word_ids is not None:
            if word_ids[i] is not None and word_ids[i] != prev_word:
                starts.append(i)
            prev_word = word_ids[i]
        else:
            start, end = int(offsets[i][0]), int(offsets[i][1])
            if prev_end is None or start > prev_end:
                starts.append(i)
            prev_end = end
    return starts


class StudentTokenClassificationPipeline(TokenClassificationPipeline):
    """Token classification for students: Viterbi for CRF heads, character (and piece) inputs for char students."""

    def __init__(self, *args, crf: dict[str, np.ndarray] | None = None, char_vocab: list[str] | None = None,
                 max_word_length: int = 15, pieces: PieceSegmenter | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.crf, self.char_vocab, self.max_word_length = crf, char_vocab, max_word_length
        self.pieces = pieces

    def preprocess(self, sentence, offset_mapping=None, **preprocess_params):
        words = sentence if isinstance(sentence, list) else None
        for model_inputs in super().preprocess(sentence, offset_mapping=offset_mapping, **preprocess_params):
            if self.char_vocab is not None:
                texts = self._word_texts(model_inputs, sentence, words)
                model_inputs["char_ids"] = torch.from_numpy(
                    char_ids_for(texts, self.char_vocab, self.max_word_length))[None]
                if self.pieces is not None:
                    model_inputs["piece_ids"] = torch.from_numpy(self.pieces.ids_for(texts))[None]
            yield model_inputs

    @staticmethod
    def _word_texts(model_inputs, sentence, words) -> list[str]:
        """Each position's word text (empty for special tokens)."""
        special = model_inputs["special_tokens_mask"][0].tolist()
        offsets = model_inputs["offset_mapping"][0].tolist()
        word_ids = model_inputs.get("word_ids")
        texts = []
        for i, (start, end) in enumerate(offsets):
            if special[i]:
                texts.append("")
            elif words is not None:
                texts.append(words[word_ids[i]][start:end])
            else:
                texts.append(sentence[start:end])
        return texts

    def _forward(self, model_inputs):
        out = super()._forward(model_inputs)
        out.pop("char_ids", None)
        out.pop("piece_ids", None)
        if self.crf is None:
            return out
        logits = torch.as_tensor(out["logits"])[0].float().numpy()
        special = out["special_tokens_mask"][0].tolist()
        offsets = out["offset_mapping"][0].tolist() if out["offset_mapping"] is not None else None
        starts = _word_starts(out.get("word_ids"), offsets, special)
        decoded = np.full(logits.shape, -1e4, dtype=np.float32)
        if starts:
            tags = viterbi(logits[starts], self.crf["transitions"], self.crf["start"], self.crf["end"])
            bounds = starts + [len(special)]
            for tag, a, b in zip(tags, bounds, bounds[1:]):
                decoded[a:b, tag] = 0.0  # the word's sub-words share its tag
        out["logits"] = torch.from_numpy(decoded)[None]
        return out


def _crf_of(path: Path, model) -> dict[str, np.ndarray] | None:
    if (path / CRF_FILE).is_file():
        return {k: np.asarray(v) for k, v in read_json(path / CRF_FILE).items()}
    crf = getattr(model, "crf", None)
    if crf is None:
        return None
    return dict(zip(("transitions", "start", "end"), (p.detach().cpu().numpy() for p in crf.potentials())))


def student_pipeline(path, quantized: bool = False, aggregation_strategy: str = "first", cascade: bool = False,
                     **kwargs):
    """A ``transformers`` pipeline for a saved student (PyTorch folder) or its ONNX export folder, or a cascade.

    ONNX folders (``model.onnx``, or ``model_quantized.onnx`` with ``quantized``) run through
    ``optimum.onnxruntime``. Token classifiers aggregate sub-words to words (``aggregation_strategy``).
    A :class:`~hf_distill.shipping.cascade.Cascade`, or ``cascade=True`` with a folder holding ``cascade.json``, gives a
    :class:`~hf_distill.shipping.cascade.CascadePipeline`: the student answers what it is sure of, the teacher the rest.
    """
    from .cascade import Cascade, CascadePipeline

    if isinstance(path, Cascade):
        return CascadePipeline(path)
    if cascade:
        return CascadePipeline(Cascade.from_pretrained(str(path)))
    folder = Path(path)
    check_model_folder(folder)
    config = AutoConfig.from_pretrained(folder)
    token = bool(config.architectures) and task_of(config.architectures[0]) == "token"
    tokenizer = AutoTokenizer.from_pretrained(folder)
    onnx = (folder / ONNX_FILE).is_file()
    if onnx:
        ort_class = ORTStudentForTokenClassification if token else ORTModelForSequenceClassification
        model = ort_class.from_pretrained(folder, file_name=QUANTIZED_FILE if quantized else ONNX_FILE,
                                          config=config)
    elif quantized:
        raise ValueError(f"{folder}: quantized=True needs an ONNX export folder (hf-distill export --quantize)")
    else:
        auto = AutoModelForTokenClassification if token else AutoModelForSequenceClassification
        model = auto.from_pretrained(folder).eval()
    if not token:
        return pipeline("text-classification", model=model, tokenizer=tokenizer, **kwargs)
    return StudentTokenClassificationPipeline(
        model=model, tokenizer=tokenizer, aggregation_strategy=aggregation_strategy,
        crf=_crf_of(folder, None if onnx else model), char_vocab=getattr(config, "char_vocab", None),
        max_word_length=getattr(config, "max_word_length", 15), pieces=piece_segmenter(config), **kwargs)
