"""Named datasets resolved to a local directory (``data_dir`` or ``HF_DISTILL_DATA_DIR``), else to the Hub."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import datasets

from . import readers
from .schemes import SUC_TO_CONLL  # noqa: F401  (re-exported for users building Swedish SUC data)

DATA_DIR_ENV = "HF_DISTILL_DATA_DIR"

CONLL2003_NER = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
EMOTION_LABELS = ["sadness", "joy", "love", "anger", "fear", "surprise"]


@dataclass(frozen=True)
class Layout:
    """Where one copy of a dataset lives below the data root, and how its files are written."""

    directory: str
    files: Mapping[str, str]  # split -> file name
    scheme: Mapping[str, str] = field(default_factory=dict)  # tag column -> source scheme


@dataclass(frozen=True)
class DatasetSpec:
    kind: str  # "column", "jsonl", "csv" or "tsv"
    layouts: tuple[Layout, ...]
    hub_id: str | None = None
    columns: Mapping[str, int] = field(default_factory=dict)
    sep: str | None = None
    label_names: Mapping[str, list[str]] | None = None
    missing_label: str | None = None


def _indonlu(task: str, ext: str, tags: str | None = None) -> tuple[Layout, ...]:
    """The two places an IndoNLU task may sit; ``tags``: its IOB2 tag column (NERP and TermA have a few ``I-X``
    after ``O``: declared IOB2, they are read as conlleval does, ``B-X``, and the repairs are logged)."""
    files = {s: f"{f}_preprocess.{ext}" for s, f in (("train", "train"), ("validation", "valid"), ("test", "test"))}
    scheme = {tags: "iob2"} if tags else {}
    return (Layout(f"indonlu/{task}", files, scheme), Layout(task, files, scheme))


_CONLL_FILES = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}
_IOB2_NER_CHUNK = {"ner_tags": "iob2", "chunk_tags": "iob2"}

REGISTRY: dict[str, DatasetSpec] = {
    "conll2003": DatasetSpec(
        "column",
        (
            Layout("conll2003/neuroner", _CONLL_FILES, _IOB2_NER_CHUNK),
            Layout("conll2003", _CONLL_FILES, _IOB2_NER_CHUNK),
            Layout(
                "conll2003/synalp_NER",
                {"train": "eng.train", "validation": "eng.testa", "test": "eng.testb"},
                {"ner_tags": "iob1", "chunk_tags": "iob1"},
            ),
        ),
        hub_id="eriktks/conll2003",
        columns={"tokens": 0, "pos_tags": 1, "chunk_tags": 2, "ner_tags": 3},
        label_names={"ner_tags": CONLL2003_NER},
    ),
    "conll2000": DatasetSpec(
        "column",
        (
            Layout("conll2000/ukplab", {"train": "train.txt", "test": "test.txt"}, {"chunk_tags": "iob2"}),
            Layout("conll2000", {"train": "train.txt", "test": "test.txt"}, {"chunk_tags": "iob2"}),
        ),
        hub_id="eriktks/conll2000",
        columns={"tokens": 0, "pos_tags": 1, "chunk_tags": 2},
    ),
    "swedish-ner": DatasetSpec(
        "column",
        tuple(
            Layout(d, {"train": "train_corpus.txt", "test": "test_corpus.txt"}, {"ner_tags": "io"})
            for d in ("swedish_ner/klintan_webbnyheter2012", "swedish_ner")
        ),
        hub_id="klintan/swedish-ner-corpus",
        columns={"tokens": 0, "ner_tags": 1},
        missing_label="0",
    ),
    "indonlu-nergrit": DatasetSpec(
        "column", _indonlu("nergrit_ner-grit", "txt", "ner_tags"), "indonlp/indonlu", {"tokens": 0, "ner_tags": 1}, "\t"
    ),
    "indonlu-nerp": DatasetSpec(
        "column", _indonlu("nerp_ner-prosa", "txt", "ner_tags"), "indonlp/indonlu", {"tokens": 0, "ner_tags": 1}, "\t"
    ),
    "indonlu-posp": DatasetSpec(
        "column", _indonlu("posp_pos-prosa", "txt", "pos_tags"), "indonlp/indonlu", {"tokens": 0, "pos_tags": 1}, "\t"
    ),
    "indonlu-terma": DatasetSpec(
        "column", _indonlu("terma_term-extraction-airy", "txt", "ner_tags"), "indonlp/indonlu",
        {"tokens": 0, "ner_tags": 1}, "\t"
    ),
    "indonlu-emot": DatasetSpec("csv", _indonlu("emot_emotion-twitter", "csv"), "indonlp/indonlu"),
    "indonlu-smsa": DatasetSpec("tsv", _indonlu("smsa_doc-sentiment-prosa", "tsv"), "indonlp/indonlu"),
    "emotion": DatasetSpec(
        "jsonl",
        tuple(
            Layout(d, {s: f"{s}.jsonl" for s in ("train", "validation", "test")})
            for d in ("emotion/chanys_tnlp", "emotion")
        ),
        hub_id="dair-ai/emotion",
        label_names={"label": EMOTION_LABELS},
    ),
}


def _read(spec: DatasetSpec, layout: Layout, root: str, strict: bool) -> datasets.DatasetDict:
    paths = {split: os.path.join(root, layout.directory, name) for split, name in layout.files.items()}
    if spec.kind == "column":
        splits = {
            split: readers.read_column_file(
                p, spec.columns, sep=spec.sep, comments=p.endswith(".iob2"), missing_label=spec.missing_label
            )
            for split, p in paths.items()
        }
        tag_columns = [c for c in spec.columns if c != "tokens"]
        return readers.build_token_dataset(splits, tag_columns, spec.label_names, layout.scheme, strict=strict)
    read = {"jsonl": readers.read_jsonl, "csv": readers.read_csv, "tsv": readers.read_tsv}[spec.kind]
    rows = {split: read(p) for split, p in paths.items()}
    names = (spec.label_names or {}).get("label")
    return readers.build_text_dataset(rows, paths, names)


def _expected(spec: DatasetSpec, root: str) -> str:
    return "; ".join(
        ", ".join(os.path.join(root, lay.directory, f) for f in lay.files.values()) for lay in spec.layouts
    )


def load_dataset(
    name_or_path, data_dir: str | None = None, strict: bool = False, name: str | None = None,
    revision: str | None = None, **hub_kwargs
) -> datasets.DatasetDict:
    """Load a data set as a ``DatasetDict`` from wherever a Hugging Face user keeps it.

    Args:
        name_or_path: a registered name (see :data:`REGISTRY`: read below ``data_dir`` or
            ``$HF_DISTILL_DATA_DIR``, else from the Hub), a local file or directory of data files, a folder written
            by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``, a ``Dataset`` / ``DatasetDict`` in memory,
            or a Hub dataset id (``org/name``).
        data_dir: root of the registered names' local copies.
        strict: reject ``I-X`` after ``O`` in tag columns of local column files.
        name: the Hub dataset's configuration.
        revision: the Hub dataset's branch, tag or commit.
        hub_kwargs: passed to ``datasets.load_dataset`` (``token``...).

    Splits named ``dev`` or ``valid`` become ``validation``; the task (tagging or classification) is read from the
    features (``Sequence(ClassLabel)`` or ``ClassLabel``, see ``hf_distill.runs.TaskSpec``).
    """
    if isinstance(name_or_path, (datasets.Dataset, datasets.DatasetDict)):
        return _as_dict(name_or_path, "the data set given")
    if name_or_path in REGISTRY:
        spec = REGISTRY[name_or_path]
        root = data_dir or os.environ.get(DATA_DIR_ENV)
        if root:
            for layout in spec.layouts:
                if all(os.path.isfile(os.path.join(root, layout.directory, f)) for f in layout.files.values()):
                    return _read(spec, layout, root, strict)
            raise FileNotFoundError(
                f"dataset {name_or_path!r}: no local copy under {root!r}; expected one of these file sets: "
                f"{_expected(spec, root)}"
            )
        try:
            return datasets.load_dataset(spec.hub_id, name=name, revision=revision, **hub_kwargs)
        except Exception as e:  # offline, missing, gated: say what to do instead
            raise FileNotFoundError(
                f"dataset {name_or_path!r}: no local directory given (pass data_dir= or set {DATA_DIR_ENV}) "
                f"and the Hub dataset {spec.hub_id!r} could not be loaded: {e}"
            ) from e
    if os.path.exists(name_or_path):
        if _saved_to_disk(name_or_path):
            return _as_dict(datasets.load_from_disk(name_or_path), name_or_path)
        return load_local(name_or_path, strict=strict)
    if _looks_like_hub_id(name_or_path):
        return load_hub_dataset(name_or_path, name=name, revision=revision, **hub_kwargs)
    raise ValueError(
        f"unknown dataset {name_or_path!r}: not a registered name ({', '.join(sorted(REGISTRY))}), "
        "not an existing file or directory, and not a Hub dataset id (org/name)"
    )


def _saved_to_disk(path: str) -> bool:
    return os.path.isdir(path) and any(os.path.isfile(os.path.join(path, f))
                                       for f in ("dataset_dict.json", "state.json"))


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "/")) and " " not in text


_SPLIT_ALIASES = {"dev": "validation", "valid": "validation", "val": "validation"}


def _as_dict(data, where: str) -> datasets.DatasetDict:
    """A ``DatasetDict`` (a single ``Dataset`` becomes its train split) with ``dev``/``valid`` named ``validation``;
    refuses one without a train split, naming its splits."""
    if isinstance(data, datasets.Dataset):
        data = datasets.DatasetDict({"train": data})
    out = datasets.DatasetDict({_SPLIT_ALIASES.get(k, k): v for k, v in data.items()})
    if "train" not in out:
        raise readers.DataFormatError(f"{where}: no train split (it has {sorted(data)})")
    return out


def load_hub_dataset(repo_id: str, name: str | None = None, revision: str | None = None,
                     **hub_kwargs) -> datasets.DatasetDict:
    """A dataset repository of the Hub (``HF_ENDPOINT`` honoured): its files are downloaded with
    ``huggingface_hub.snapshot_download`` and read by ``datasets`` (parquet written by ``push_to_hub`` keeps its
    features, ``ClassLabel`` included). An unreachable Hub or a missing repository is one clear error."""
    from huggingface_hub import snapshot_download

    token = hub_kwargs.pop("token", None)
    try:
        folder = snapshot_download(repo_id, repo_type="dataset", revision=revision, token=token,
                                   cache_dir=hub_kwargs.get("cache_dir"))
    except Exception as e:  # offline, unreachable, missing, gated
        raise FileNotFoundError(f"Hub dataset {repo_id!r}"
                                f"{f' (revision {revision})' if revision else ''} could not be downloaded: "
                                f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    if _saved_to_disk(folder):
        return _as_dict(datasets.load_from_disk(folder), repo_id)
    try:
        data = datasets.load_dataset(folder, name=name, **hub_kwargs)
    except ValueError as e:  # an unknown configuration, or no data files
        raise readers.DataFormatError(f"Hub dataset {repo_id!r}: {e}") from None
    return _as_dict(data, repo_id)


_SPLIT_PREFIXES = (("train", "train"), ("valid", "validation"), ("dev", "validation"), ("test", "test"))
_EXACT_STEMS = ("train", "valid", "validation", "dev", "test")
_COLUMN_EXTS = (".txt", ".conll", ".iob2", ".bio", ".tsv2")


def load_local(path: str, strict: bool = False, scheme: str = "iob2") -> datasets.DatasetDict:
    """Load a file (one ``train`` split) or a directory of ``train*``/``valid*``/``dev*``/``test*`` files.

    Column files (``.txt``, ``.conll``, ``.iob2``...) take the first column as token and the last as tag;
    ``.iob2`` files may carry ``#`` comment lines and a leading token index. ``.jsonl``, ``.csv`` (header)
    and ``.tsv`` (``text<TAB>label``) are classification data.
    """
    if os.path.isdir(path):
        candidates: dict[str, list[str]] = {}
        for name in sorted(os.listdir(path)):
            for prefix, split in _SPLIT_PREFIXES:
                if name.lower().startswith(prefix) and os.path.isfile(os.path.join(path, name)):
                    candidates.setdefault(split, []).append(name)
        if not candidates:
            raise FileNotFoundError(f"{path}: no train*/valid*/dev*/test* data files in this directory")
        files = {}
        for split, names in candidates.items():
            exact = [n for n in names if os.path.splitext(n)[0].lower() in _EXACT_STEMS]
            if len(names) > 1 and len(exact) != 1:
                raise readers.DataFormatError(f"{path}: {len(names)} files could be the {split} split ({names}); "
                                              "keep one, or name it exactly train/dev/test + extension")
            files[split] = os.path.join(path, exact[0] if exact else names[0])
    else:
        files = {"train": path}
    exts = {os.path.splitext(p)[1].lower() for p in files.values()}
    if len(exts) != 1:
        raise readers.DataFormatError(f"{path}: split files mix formats {sorted(exts)}")
    ext = exts.pop()
    if ext in (".jsonl", ".csv", ".tsv"):
        read = {".jsonl": readers.read_jsonl, ".csv": readers.read_csv, ".tsv": readers.read_tsv}[ext]
        return readers.build_text_dataset({s: read(p) for s, p in files.items()}, files)
    if ext not in _COLUMN_EXTS:
        raise readers.DataFormatError(f"{path}: unsupported file type {ext!r}")
    splits = {}
    for split, p in files.items():
        token_col = 1 if ext == ".iob2" and _first_column_is_index(p) else 0
        splits[split] = readers.read_column_file(p, {"tokens": token_col, "ner_tags": -1}, comments=ext == ".iob2")
    return readers.build_token_dataset(splits, ["ner_tags"], scheme={"ner_tags": scheme}, strict=strict)


def _first_column_is_index(path: str) -> bool:
    with readers.open_text(path) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                parts = line.split()
                return len(parts) >= 3 and parts[0].isdigit()
    return False
