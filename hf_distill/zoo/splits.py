"""The zoo's data and teacher: splits (a dev split carved when missing), a second test file, the teacher
checked against the labels, and the default transfer set built by augmenting the train rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..runs import TaskSpec
    from .args import ZooArguments

def read_extra_test(path: str, labels: list[str]):
    """A second test set in column format (token first, tag last), read with the model's label list: a tag
    outside it raises naming file and line."""
    from ..data.readers import build_token_dataset, read_column_file

    sentences = read_column_file(path, {"tokens": 0, "ner_tags": -1})
    return build_token_dataset({"test": sentences}, ["ner_tags"], label_names={"ner_tags": labels},
                               scheme={"ner_tags": "iob2"})["test"]


def carve_dev(raw, fraction: float, seed: int) -> dict | None:
    """Hold ``fraction`` of train out as the validation split (shuffled with ``seed``; never the test split) when
    ``raw`` has none, in place. Returns how, for ``distillation.json`` (``dev_split``), or None when ``raw`` had
    its own validation split: a later command (``hf-distill cascade``) carves the same rows again from it."""
    if "validation" in raw:
        return None
    carved = raw["train"].train_test_split(test_size=fraction, seed=seed, shuffle=True)
    raw["train"], raw["validation"] = carved["train"], carved["test"]
    return {"carved_from": "train", "fraction": float(fraction), "seed": int(seed)}


def load_splits(args, with_record: bool = False):
    """train, validation and test of ``args.dataset``; without a validation split, ``dev_fraction`` of train
    is carved out with ``dev_seed`` (:func:`carve_dev`); then the ``max_*_samples`` slices. With ``with_record``,
    returns ``(splits, carve_dev's record)``."""
    from ..data import load_dataset

    raw = load_dataset(args.dataset, data_dir=args.data_dir, name=getattr(args, "dataset_config", None),
                       revision=getattr(args, "dataset_revision", None))
    record = carve_dev(raw, args.dev_fraction, args.dev_seed)
    for split, n in (("train", args.max_train_samples), ("validation", args.max_dev_samples),
                     ("test", args.max_eval_samples)):
        if n:
            raw[split] = raw[split].select(range(min(n, len(raw[split]))))
    return (raw, record) if with_record else raw


def dev_overlap_warning(raw, text_column: str = "text") -> str | None:
    """A warning when most validation rows also occur in train (IndoNLU TermA: all 1,000): early stopping and
    model selection then reward memorizing train, and dev scores are not held-out scores."""
    from ..data.transfer import rows_also_in

    shared, total = rows_also_in(raw["validation"], raw["train"], text_column), len(raw["validation"])
    if total and shared * 2 > total:
        return (f"warning: {shared} of {total} validation rows also occur in the training split; early stopping "
                "selects on rows the students have seen, so dev scores overstate; only the test scores are held out")
    return None


def load_teacher(path: str, task: TaskSpec):
    """The fine-tuned teacher; refuses one whose head is not the task's or whose labels are not the data's."""
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    from ..files import check_model_folder

    auto = AutoModelForTokenClassification if task.kind == "token" else AutoModelForSequenceClassification
    check_model_folder(path)
    teacher = auto.from_pretrained(path).eval()
    have = [teacher.config.id2label[i] for i in range(teacher.config.num_labels)]
    if have != task.labels:
        raise ValueError(f"teacher {path}: its labels {have} are not the data set's {task.labels} (column "
                         f"{task.label_column!r}, in this order)")
    return teacher


def augmented_rows(raw, task: TaskSpec, copies: int, mask_token: str, seed: int = 0):
    """``copies`` augmented versions of every train row (Tang et al.: masking, swaps within the same gold tag,
    n-gram sampling), as rows of words (tagging) or texts (classification), without their labels."""
    from ..data.augment import TangAugmenter

    train = raw["train"]
    augmenter = TangAugmenter(mask_token=mask_token or "[MASK]", seed=seed)
    if task.kind == "token":
        names = train.features[task.label_column].feature.names
        groups = [[names[t] for t in tags] for tags in train[task.label_column]]
        return augmenter.augment(train["tokens"], copies=copies, groups=groups)
    return augmenter.augment(list(train[task.text_column]), copies=copies)


def transfer_rows(args: ZooArguments, raw, task: TaskSpec, tokenizer, say):
    """The zoo's transfer set (``None`` when there is none): ``--transfer`` text plus ``--augment_copies``
    augmented copies of the train rows, deduplicated, without any dev or test sentence; the counts are said."""
    from ..data.transfer import build_transfer_set, read_unlabeled

    sources, counts = [], {}
    if args.transfer:
        given = read_unlabeled(args.transfer, task.text_column, data_dir=args.data_dir)
        sources += given
        counts["unlabeled"] = len(given)
    if args.augment != "none" and args.augment_copies > 0:
        made = augmented_rows(raw, task, args.augment_copies, tokenizer.mask_token, args.seed)
        column = "tokens" if task.kind == "token" else "text"
        sources += list(made[column])
        counts["augmented"] = len(made)
    if not sources:
        return None, counts
    rows, report = build_transfer_set(sources, tokenizer, task=task.kind, text_column=task.text_column,
                                      data_dir=args.data_dir, exclude=[raw["validation"], raw["test"]],
                                      length=args.transfer_length, labeled=raw["train"],
                                      max_rows=args.transfer_max_rows, seed=args.seed)
    counts.update(kept=len(rows), report=str(report))
    say(f"transfer set: {', '.join(f'{k} {v}' for k, v in counts.items() if k != 'report')} rows; {report}")
    return rows, counts
