"""Readers for column (CoNLL-style) and table (JSONL/CSV/TSV) files, returning ``datasets.DatasetDict``.

Token datasets follow the Hugging Face ``conll2003`` schema: ``id``, ``tokens`` and one ``ClassLabel``
sequence per tag column (``ner_tags``, ``pos_tags``, ``chunk_tags``). Classification datasets have
``text`` and a ``ClassLabel`` ``label``. Every malformed input raises :class:`DataFormatError` naming the
file and line.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import datasets

from .schemes import (
    TagSchemeError,
    convert_scheme,
    iob_shaped,
    map_entity_types,
    repair_iob2,
    split_tag,
    validate_iob2,
)

logger = logging.getLogger(__name__)

DOCSTART = "-DOCSTART-"


class DataFormatError(ValueError):
    """Input data that cannot be read as declared; the message names file and line."""


def open_text(path: str, newline: str | None = None) -> io.StringIO:
    """A UTF-8 text file as a stream: a byte-order mark is dropped (Excel writes one); bytes that are not
    UTF-8 raise :class:`DataFormatError` naming the file, line and bytes."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data file not found: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        bad = raw[e.start : e.end + 8]
        raise DataFormatError(f"{path}:{line}: bytes {bad!r} are not UTF-8 (Latin-1 or cp1252?); re-save the file "
                              "as UTF-8, e.g. iconv -f latin1 -t utf-8") from None
    return io.StringIO(text, newline=newline)


@dataclass
class ColumnSentence:
    """One sentence of a column file: a list of values per column, and where it starts."""

    columns: dict[str, list[str]]
    path: str
    line: int
    lines: list[int] = field(default_factory=list)


def read_column_file(
    path: str,
    columns: Mapping[str, int],
    sep: str | None = None,
    comments: bool = False,
    missing_label: str | None = None,
) -> list[ColumnSentence]:
    """Read a blank-line separated column file.

    ``columns`` maps output names to column indices (negative indices count from the end).
    ``-DOCSTART-`` pseudo-sentences are skipped; ``#`` lines are skipped when ``comments``.
    A line with too few columns raises, unless ``missing_label`` is given: then a line holding only
    the token gets that label for every tag column (logged with file and line).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data file not found: {path}")
    # A negative index needs one column beyond the highest non-negative one (tokens 0, tag -1 -> 2 columns).
    need = max([i + 1 for i in columns.values() if i >= 0] or [0]) + sum(i < 0 for i in columns.values())
    sentences: list[ColumnSentence] = []
    rows: list[list[str]] = []
    row_lines: list[int] = []

    def flush() -> None:
        if rows and not rows[0][0].startswith(DOCSTART):
            cols = {name: [r[idx] for r in rows] for name, idx in columns.items()}
            sentences.append(ColumnSentence(cols, path, row_lines[0], list(row_lines)))
        rows.clear()
        row_lines.clear()

    width = first = None
    with open_text(path) as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.rstrip("\r\n")
            if comments and line.startswith("#"):
                continue
            if not line.strip() or line.startswith(DOCSTART):
                flush()
                continue
            if sep:
                parts = line.split(sep)
            elif "\t" in line.strip():  # tab-separated: a token may hold spaces ("New York")
                parts = [p.strip() for p in line.strip().split("\t")]
            else:
                parts = line.split()
            if len(parts) < need:
                if missing_label is not None and len(parts) == 1:
                    logger.warning("%s:%d: token %r has no label; using %r", path, lineno, parts[0], missing_label)
                    parts = parts + [missing_label] * (need - 1)
                else:
                    raise DataFormatError(
                        f"{path}:{lineno}: expected at least {need} columns, found {len(parts)}: {line!r}"
                    )
            if width is None:
                width, first = len(parts), lineno
            elif len(parts) != width:
                raise DataFormatError(f"{path}:{lineno}: {len(parts)} columns, but line {first} has {width}: "
                                      f"{line!r} (a stray column or a token with a space?)")
            rows.append(parts)
            row_lines.append(lineno)
    flush()
    if not sentences:
        raise DataFormatError(f"{path}: no sentences (the file is empty or holds only {DOCSTART} lines)")
    return sentences


def _class_label(names: Sequence[str]) -> datasets.ClassLabel:
    return datasets.ClassLabel(names=list(names))


def _label_set(splits: Mapping[str, list[ColumnSentence]], col: str) -> list[str]:
    seen = {t for sents in splits.values() for s in sents for t in s.columns[col]}
    rest = sorted(seen - {"O"})
    return (["O"] if "O" in seen else []) + rest


def check_tag_shapes(splits: Mapping[str, list[ColumnSentence]], col: str, scheme: str) -> None:
    """Check a tag column against its declared scheme before conversion.

    A tag that is not ``O``, ``B-X`` or ``I-X`` in an IOB2/IOB1 column raises, naming file, line and label (a file of
    bare entity types is IO: read it with scheme ``io``). Entity types seen in a single token, and types that never
    open with ``B-`` in an IOB2 column (the file is likely IOB1), are named in a warning with file, line and label,
    and a close known type when there is one (a typo such as ``B-PRE`` among ``B-PER``).
    """
    import difflib

    where: dict[str, tuple[str, int]] = {}
    counts: collections.Counter = collections.Counter()
    for sents in splits.values():
        for s in sents:
            for j, tag in enumerate(s.columns[col]):
                counts[tag] += 1
                where.setdefault(tag, (s.path, s.lines[j]))
    if scheme in ("iob2", "iob1"):
        for tag in counts:
            if not iob_shaped(tag):
                path, line = where[tag]
                raise DataFormatError(f"{path}:{line}: label {tag!r} in column {col!r} is not {scheme.upper()} "
                                      "(expected O, B-X or I-X); a file of bare entity types is IO: read it with "
                                      "scheme 'io'")
    types: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for tag, n in counts.items():
        prefix, typ = split_tag(tag)
        if typ is not None:
            types[typ][prefix] += n
    problems = []
    for typ, by_prefix in sorted(types.items()):
        tag = min((t for t in where if t in (typ, f"B-{typ}", f"I-{typ}")), key=lambda t: where[t])
        path, line = where[tag]
        close = difflib.get_close_matches(typ, [t for t in types if t != typ and sum(types[t].values()) > 1], n=1)
        hint = f" (a typo of {close[0]!r}?)" if close else ""
        if sum(by_prefix.values()) == 1:
            problems.append(f"{path}:{line}: entity type {typ!r} occurs in one token only ({tag!r}){hint}")
        elif scheme == "iob2" and by_prefix["B"] == 0:
            problems.append(f"{path}:{line}: entity type {typ!r} never opens with B- ({by_prefix['I']} I- tags): "
                            "is the file IOB1? read it with scheme 'iob1'")
    for problem in problems:
        logger.warning("%s", problem)


def build_token_dataset(
    splits: Mapping[str, list[ColumnSentence]],
    tag_columns: Sequence[str],
    label_names: Mapping[str, Sequence[str]] | None = None,
    scheme: Mapping[str, str] | None = None,
    type_map: Mapping[str, str] | None = None,
    strict: bool = False,
) -> datasets.DatasetDict:
    """Turn sentences into a ``DatasetDict``; converts ``scheme`` columns to IOB2 and checks labels.

    ``label_names`` fixes the label list of a column (labels outside it raise, naming file and line);
    otherwise the list is every label seen in any split, ``O`` first, the rest sorted.
    With ``strict`` an ``I-X`` after ``O`` or another type raises; otherwise it is repaired to ``B-X`` (as
    conlleval reads it, so strict IOB2 metrics count that entity), and the repairs are logged per file.
    Tags are checked against their scheme first (:func:`check_tag_shapes`): labels of another shape raise, naming
    file, line and label; entity types seen once or never opened by ``B-`` are warned about.
    """
    scheme = dict(scheme or {})
    for col, sch in scheme.items():
        check_tag_shapes(splits, col, sch)
    repaired: dict[str, list[int]] = {}
    for sents in splits.values():
        for s in sents:
            for col, sch in scheme.items():
                tags = convert_scheme(s.columns[col], sch)
                if type_map is not None:
                    tags = map_entity_types(tags, type_map)
                try:
                    validate_iob2(tags, where=f"{s.path}:{s.line}: ", strict=strict)
                except TagSchemeError as e:
                    raise DataFormatError(str(e)) from None
                tags, changed = repair_iob2(tags)
                if changed:
                    repaired.setdefault(s.path, []).append(s.line)
                s.columns[col] = tags
    for path, lines in repaired.items():
        logger.warning("%s: %d sentences had I-X after O or another type, read as B-X (first at line %d)",
                       path, len(lines), lines[0])
    names = {col: list((label_names or {}).get(col) or _label_set(splits, col)) for col in tag_columns}
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            **{col: datasets.Sequence(_class_label(names[col])) for col in tag_columns},
        }
    )
    out = {}
    for split, sents in splits.items():
        index = {col: {n: i for i, n in enumerate(names[col])} for col in tag_columns}
        data: dict[str, list] = {"id": [], "tokens": [], **{c: [] for c in tag_columns}}
        for k, s in enumerate(sents):
            data["id"].append(str(k))
            data["tokens"].append(s.columns["tokens"])
            for col in tag_columns:
                ids = []
                for j, tag in enumerate(s.columns[col]):
                    if tag not in index[col]:
                        raise DataFormatError(
                            f"{s.path}:{s.lines[j]}: label {tag!r} in column {col!r} is not in the label set "
                            f"{names[col]}"
                        )
                    ids.append(index[col][tag])
                data[col].append(ids)
        out[split] = datasets.Dataset.from_dict(data, features=features, split=split)
    return datasets.DatasetDict(out)


def iter_jsonl(path: str, fields: Sequence[str]):
    """``(line, object, field)`` for each non-blank line of a JSON-lines file: ``field`` is the first of
    ``fields`` the object has; a line that is not such an object raises, naming file and line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data file not found: {path}")
    with open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
            field_ = next((k for k in fields if isinstance(obj, dict) and k in obj), None)
            if field_ is None:
                raise DataFormatError(f"{path}:{lineno}: expected an object with a {' or '.join(map(repr, fields))} "
                                      "field")
            yield lineno, obj, field_


def _check_label(value, path: str, lineno: int) -> str | int:
    """A class label is a name (string) or an integer id; anything else names file and line."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataFormatError(f"{path}:{lineno}: label {value!r} is a {type(value).__name__}: use a class name "
                              "or an integer id")
    return value


def _warn_unlabeled(path: str, rows: list[tuple], label_field: str) -> None:
    missing = sum(r[1] is None for r in rows)
    if rows and missing == len(rows):
        raise DataFormatError(f"{path}: no row has a {label_field!r} field; for unlabeled text use "
                              "build_transfer_set, or name the label field")
    if missing:
        logger.warning("%s: %d of %d rows have no %r field and are unlabeled (KD terms only)", path, missing,
                       len(rows), label_field)


def read_jsonl(path: str, text_field: str = "text", label_field: str = "label") -> list[tuple]:
    """``(text, label, line)`` rows from a JSON-lines file. A label is a class name or an integer id; a row
    without one is unlabeled (counted in a warning), a file without any raises."""
    rows = []
    for lineno, obj, _ in iter_jsonl(path, [text_field]):
        label = obj.get(label_field)
        if not isinstance(obj[text_field], str):
            raise DataFormatError(f"{path}:{lineno}: {text_field!r} is a {type(obj[text_field]).__name__}, "
                                  "not a string")
        rows.append((obj[text_field], None if label is None else _check_label(label, path, lineno), lineno))
    _warn_unlabeled(path, rows, label_field)
    return rows


def read_csv(path: str, text_field: str | None = None, label_field: str = "label") -> list[tuple]:
    """``(text, label, line)`` rows from a CSV file with a header row (text column: ``text``/``tweet``/``sentence``)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data file not found: {path}")
    with open_text(path, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        if text_field is None:
            text_field = next((c for c in ("text", "tweet", "sentence") if c in header), None)
        if text_field not in header or label_field not in header:
            raise DataFormatError(
                f"{path}:1: header {header} lacks the text column {text_field!r} or label column {label_field!r}"
            )
        rows = []
        for r in reader:
            if None in r or r[text_field] is None or r[label_field] is None:
                fields = sum(v is not None for k, v in r.items() if k is not None) + len(r.get(None) or [])
                raise DataFormatError(f"{path}:{reader.line_num}: {fields} fields where the header has "
                                      f"{len(header)} (quote text that holds commas)")
            rows.append((r[text_field], r[label_field].strip(), reader.line_num))
        return rows


def read_tsv(path: str) -> list[tuple]:
    """``(text, label, line)`` rows from a header-less ``text<TAB>label`` file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data file not found: {path}")
    rows = []
    with open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if "\t" not in line:
                raise DataFormatError(f"{path}:{lineno}: expected 'text<TAB>label', found no tab")
            text, label = line.rsplit("\t", 1)
            rows.append((text, label.strip(), lineno))
    return rows


def build_text_dataset(
    splits: Mapping[str, list[tuple]], paths: Mapping[str, str], label_names: Sequence[str] | None = None
) -> datasets.DatasetDict:
    """``DatasetDict`` with ``text`` and ``ClassLabel`` ``label`` (-1 where a row has no label)."""
    if label_names is None:
        seen = {r[1] for rows in splits.values() for r in rows if r[1] is not None}
        if seen and all(isinstance(x, int) or (isinstance(x, str) and x.lstrip("-").isdigit()) for x in seen):
            label_names = [str(x) for x in sorted({int(x) for x in seen})]  # integer ids: numeric order
        else:
            label_names = sorted(str(x) for x in seen)
    index = {n: i for i, n in enumerate(label_names)}
    splits = {k: [(t, None if lab is None else str(lab), n) for t, lab, n in rows] for k, rows in splits.items()}
    features = datasets.Features({"text": datasets.Value("string"), "label": _class_label(label_names)})
    out = {}
    for split, rows in splits.items():
        labels = []
        for _text, label, lineno in rows:
            if label is not None and label not in index:
                raise DataFormatError(
                    f"{paths[split]}:{lineno}: label {label!r} is not in the label set {list(label_names)}"
                )
            labels.append(-1 if label is None else index[label])
        out[split] = datasets.Dataset.from_dict(
            {"text": [r[0] for r in rows], "label": labels}, features=features, split=split
        )
    return datasets.DatasetDict(out)
