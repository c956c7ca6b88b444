"""Offline augmentation: new unlabeled rows made from existing ones, for the teacher to label.

The cheap operators of Tang et al. 2019 ("Distilling task-specific knowledge from BERT into simple neural
networks"): per word, with probability ``p_mask`` replace it by a mask token, else with ``p_swap`` by another
word of the same group (same gold tag, same POS, or any word of the corpus); then with ``p_ngram`` keep only a
random n-gram (n = 1..5). :class:`MaskedLMAugmenter` replaces a fraction of the words by samples of a local
masked LM, as TinyBERT and Intel did. Everything is deterministic under a seed, and every generated row
records the row it came from (``source_row``).
"""

from __future__ import annotations

import inspect
import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import numpy as np

from .transfer import SOURCE_ROW, TransferSetError, split_words

logger = logging.getLogger(__name__)


@dataclass
class TangAugmenter:
    """Tang et al.'s masking, group-guided swaps and n-gram sampling over word lists.

    ``groups`` maps a row to one group name per word (e.g. its gold NER tags or POS tags): a swapped word is
    drawn from the words seen with the same group; ``None`` draws from every word of the rows given.
    """

    p_mask: float = 0.1
    p_swap: float = 0.1
    p_ngram: float = 0.25
    max_ngram: int = 5
    mask_token: str = "[MASK]"
    seed: int = 0

    def __post_init__(self):
        for name in ("p_mask", "p_swap", "p_ngram"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value}: expected a probability in [0, 1]")
        if self.max_ngram < 1:
            raise ValueError(f"max_ngram={self.max_ngram}: expected >= 1")

    def augment(self, rows: Sequence[Sequence[str] | str], copies: int = 1,
                groups: Sequence[Sequence] | None = None) -> datasets.Dataset:
        """``copies`` new rows per input row: a ``tokens`` column (``text`` if the rows were strings) and
        ``source_row``. Copies identical to their source are dropped."""
        as_text = bool(rows) and isinstance(rows[0], str)
        words = [split_words(r) if isinstance(r, str) else list(r) for r in rows]
        if groups is not None and len(groups) != len(words):
            raise ValueError(f"groups has {len(groups)} rows, the data {len(words)}")
        pool: dict = defaultdict(list)
        for i, ws in enumerate(words):
            g = groups[i] if groups is not None else [None] * len(ws)
            if len(g) != len(ws):
                raise ValueError(f"row {i}: {len(ws)} words but {len(g)} group labels")
            for w, k in zip(ws, g):
                pool[k].append(w)
        pools = {k: np.asarray(v, dtype=object) for k, v in pool.items()}
        out, source = [], []
        for i, ws in enumerate(words):
            g = groups[i] if groups is not None else [None] * len(ws)
            for c in range(copies):
                rng = np.random.default_rng([self.seed, i, c])
                new = []
                for w, k in zip(ws, g):
                    u = rng.random()
                    if u < self.p_mask:
                        new.append(self.mask_token)
                    elif u < self.p_mask + self.p_swap:
                        new.append(str(pools[k][rng.integers(len(pools[k]))]))
                    else:
                        new.append(w)
                if len(new) > 1 and rng.random() < self.p_ngram:
                    n = int(rng.integers(1, min(self.max_ngram, len(new)) + 1))
                    start = int(rng.integers(0, len(new) - n + 1))
                    new = new[start:start + n]
                if new != ws and new:
                    out.append(" ".join(new) if as_text else new)
                    source.append(i)
        return _rows_dataset(out, source, as_text)


def _rows_dataset(rows: list, source: list[int], as_text: bool) -> datasets.Dataset:
    column = "text" if as_text else "tokens"
    features = datasets.Features({
        column: datasets.Value("string") if as_text else datasets.Sequence(datasets.Value("string")),
        SOURCE_ROW: datasets.Value("int64"),
    })
    return datasets.Dataset.from_dict({column: rows, SOURCE_ROW: source}, features=features)


class MaskedLMAugmenter:
    """Replace a fraction of the words of each row by samples of a local masked LM.

    Each chosen word becomes one mask token; the LM's distribution at that position (restricted to whole
    words: no ``##`` continuation pieces, no special tokens, not the original word) is sampled with
    ``temperature`` from its ``top_k`` candidates. A folder without a trained masked-LM head is refused.
    """

    def __init__(self, model_name_or_path: str | os.PathLike, fraction: float = 0.15, top_k: int = 20,
                 temperature: float = 1.0, seed: int = 0, batch_size: int = 32, max_length: int = 128):
        import torch
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction={fraction}: expected a fraction in (0, 1]")
        if top_k < 1 or temperature <= 0:
            raise ValueError(f"top_k={top_k}, temperature={temperature}: expected top_k >= 1 and temperature > 0")
        path = os.fspath(model_name_or_path)
        try:
            self.model, info = AutoModelForMaskedLM.from_pretrained(path, output_loading_info=True)
        except ValueError as e:  # a config whose model type has no masked-LM class
            raise TransferSetError(f"{path} is not a masked language model: {e}") from None
        head_missing = [k for k in info["missing_keys"] if not k.endswith("position_ids")]
        if head_missing:
            raise TransferSetError(
                f"{path} is not a masked language model: its weights lack {len(head_missing)} masked-LM head "
                f"tensors (e.g. {head_missing[0]!r}); an encoder saved without its pre-training head would "
                "substitute random words. Use a folder saved from *ForMaskedLM.")
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if self.tokenizer.mask_token_id is None:
            raise TransferSetError(f"{path}: the tokenizer has no mask token")
        self.model.eval()
        self._inputs = set(inspect.signature(self.model.forward).parameters)
        self.fraction, self.top_k, self.temperature = fraction, top_k, temperature
        self.seed, self.batch_size, self.max_length = seed, batch_size, max_length
        vocab = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
        special = set(self.tokenizer.all_special_ids)
        allowed = [i for i, t in enumerate(vocab) if i not in special and not t.startswith("##")
                   and not (t.startswith("[") and t.endswith("]"))]
        self._allowed = torch.zeros(self.model.config.vocab_size, dtype=torch.bool)
        self._allowed[[i for i in allowed if i < self.model.config.vocab_size]] = True

    def augment(self, rows: Sequence[Sequence[str] | str], copies: int = 1) -> datasets.Dataset:
        """``copies`` new rows per input row (``tokens``, or ``text`` for string rows) and ``source_row``."""
        import torch

        as_text = bool(rows) and isinstance(rows[0], str)
        words = [split_words(r) if isinstance(r, str) else list(r) for r in rows]
        jobs = []  # (row, copy, masked word positions)
        for i, ws in enumerate(words):
            for c in range(copies):
                if not ws:
                    continue
                rng = np.random.default_rng([self.seed, i, c])
                n = max(1, int(round(self.fraction * len(ws))))
                jobs.append((i, c, sorted(rng.choice(len(ws), size=min(n, len(ws)), replace=False).tolist())))
        out, source = [], []
        mask = self.tokenizer.mask_token
        for b in range(0, len(jobs), self.batch_size):
            batch = jobs[b:b + self.batch_size]
            masked = [[mask if j in set(pos) else w for j, w in enumerate(words[i])] for i, _, pos in batch]
            enc = self.tokenizer(masked, is_split_into_words=True, truncation=True, max_length=self.max_length,
                                 padding=True, return_tensors="pt")
            with torch.no_grad():
                logits = self.model(**{k: v for k, v in enc.items() if k in self._inputs}).logits
            logits = logits.float().masked_fill(~self._allowed[: logits.shape[-1]], float("-inf"))
            for r, (i, c, pos) in enumerate(batch):
                gen = torch.Generator().manual_seed(int(np.random.default_rng([self.seed, i, c, 1]).integers(2**31)))
                new = list(words[i])
                word_ids = enc.word_ids(r)
                for p, w in enumerate(word_ids):
                    if w is None or w not in pos or enc["input_ids"][r, p] != self.tokenizer.mask_token_id:
                        continue
                    scores = logits[r, p].clone()
                    original = self.tokenizer.convert_tokens_to_ids(words[i][w].lower()) \
                        if getattr(self.tokenizer, "do_lower_case", False) else \
                        self.tokenizer.convert_tokens_to_ids(words[i][w])
                    if original is not None and 0 <= original < scores.shape[0]:
                        scores[original] = float("-inf")
                    top = scores.topk(min(self.top_k, int(torch.isfinite(scores).sum())))
                    probs = torch.softmax(top.values / self.temperature, -1)
                    pick = top.indices[torch.multinomial(probs, 1, generator=gen)].item()
                    new[w] = self.tokenizer.convert_ids_to_tokens(pick)
                if new != words[i]:
                    out.append(" ".join(new) if as_text else new)
                    source.append(i)
        return _rows_dataset(out, source, as_text)
