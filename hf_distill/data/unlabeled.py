"""Reading unlabeled text for transfer sets: raw text split into words, and every source format (datasets,
lists, registered data sets, .txt/.jsonl/.csv/column files)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

import datasets

from .readers import DataFormatError, iter_jsonl, open_text

#: Words are runs of letters/digits (joined by inner ``-``, ``'``, ``.``) or single punctuation marks,
#: as in CoNLL-style tokenization: ``"U.S.-led talks, didn't"`` -> ``U.S.-led``, ``talks``, ``,``, ``didn't``.
WORD_PATTERN = re.compile(r"\w+(?:[-'’.]+\w+)*\.?|[^\w\s]", re.UNICODE)
SOURCE_ROW = "source_row"
TASKS = ("token", "sequence")
_COLUMN_EXTS = (".conll", ".iob2", ".bio", ".iob")
_TEXT_EXTS = (".txt", ".text")


class TransferSetError(DataFormatError):
    """An unlabeled source that cannot serve as a transfer set; the message names the problem."""


def split_words(text: str) -> list[str]:
    """The documented word splitter for raw text fed to token tasks (see :data:`WORD_PATTERN`)."""
    words = WORD_PATTERN.findall(text)
    # a trailing period belongs to an abbreviation ("U.S.") but not to a word ending a sentence ("lamb.")
    out = []
    for w in words:
        if len(w) > 1 and w.endswith(".") and "." not in w[:-1]:
            out.extend([w[:-1], "."])
        else:
            out.append(w)
    return out



def _read_lines(path: str) -> list[str]:
    with open_text(path) as f:
        return [line.rstrip("\r\n") for line in f]


def _read_column_words(path: str) -> list[list[str]]:
    """First column of a blank-line-separated column file (``-DOCSTART-`` and ``#`` comments skipped)."""
    rows, cur = [], []
    for line in _read_lines(path):
        if not line.strip():
            if cur:
                rows.append(cur)
            cur = []
            continue
        if line.startswith("#") or line.startswith("-DOCSTART-"):
            continue
        cur.append(line.split()[0])
    if cur:
        rows.append(cur)
    return rows


def _read_jsonl_field(path: str, text_column: str) -> list:
    return [obj[key] for _, obj, key in iter_jsonl(path, [text_column, "tokens"])]


def _read_csv_field(path: str, text_column: str) -> list[str]:
    import csv

    with open_text(path, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        column = text_column if text_column in header else next(
            (c for c in ("text", "tweet", "sentence") if c in header), None)
        if column is None:
            raise TransferSetError(f"{path}:1: header {header} has no text column {text_column!r}")
        return [r[column] for r in reader]


def read_unlabeled(source, text_column: str = "text", split: str = "train", data_dir: str | None = None) -> list:
    """Rows of an unlabeled source: each a string (raw text) or a list of words (pre-split).

    ``source`` is a ``datasets.Dataset`` (its ``tokens`` column, else ``text_column``), a list of strings or
    of word lists, a registered dataset name (``"conll2003"`` reads ``split``; ``"conll2003:validation"`` names
    the split), or a file: ``.txt`` (one text per line), ``.jsonl`` (``text_column`` or ``tokens`` field),
    ``.csv`` (header naming ``text_column``), ``.conll``/``.iob2``/``.bio`` (first column, blank-line-separated).
    Labels in the source are ignored.
    """
    if isinstance(source, datasets.DatasetDict):
        raise TransferSetError(f"a DatasetDict has splits {sorted(source)}: pass one split (e.g. source['train'])")
    if isinstance(source, datasets.Dataset):
        col = "tokens" if "tokens" in source.column_names else text_column
        if col not in source.column_names:
            raise TransferSetError(f"the dataset has no 'tokens' or {text_column!r} column "
                                   f"(columns: {source.column_names})")
        return list(source[col])
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            from .registry import REGISTRY, load_dataset

            name, _, named_split = path.partition(":")
            if name in REGISTRY:
                data = load_dataset(name, data_dir=data_dir)
                split = named_split or split
                if split not in data:
                    raise TransferSetError(f"dataset {name!r} has no split {split!r} (has {sorted(data)})")
                return read_unlabeled(data[split], text_column)
            raise TransferSetError(f"unlabeled source {path!r}: no such file and not a registered dataset name")
        if os.path.isdir(path):
            raise TransferSetError(f"{path} is a folder: name one file (.txt, .jsonl, .csv, .conll, .iob2)")
        ext = os.path.splitext(path)[1].lower()
        if ext in _TEXT_EXTS:
            return [line for line in _read_lines(path) if line.strip()]
        if ext == ".jsonl":
            return _read_jsonl_field(path, text_column)
        if ext == ".csv":
            return _read_csv_field(path, text_column)
        if ext in _COLUMN_EXTS:
            return _read_column_words(path)
        raise TransferSetError(f"{path}: unsupported file type {ext!r} (use .txt, .jsonl, .csv, .conll, .iob2)")
    if isinstance(source, Iterable):
        rows = list(source)
        for i, r in enumerate(rows):
            if not isinstance(r, (str, list, tuple)):
                raise TransferSetError(f"row {i}: expected a string or a list of words, got {type(r).__name__}")
        return rows
    raise TransferSetError(f"unsupported unlabeled source of type {type(source).__name__}")

