"""Model cards for distilled students, rendered from ``model_cards/`` templates and measured figures."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

from ..base import DISTILLATION_FILE, task_of, write_json_atomic, write_text_atomic  # noqa: F401  (re-exported)
from ..files import read_json

CARD_FILE = "README.md"
# A source checkout or editable install reads the repository's model_cards/; a wheel installs the same
# templates under <prefix>/share/hf-distill/model_cards (setup.cfg data_files).
TEMPLATE_DIRS = (Path(__file__).resolve().parents[2] / "model_cards",
                 Path(sys.prefix) / "share" / "hf-distill" / "model_cards")


class CardError(ValueError):
    """A card that cannot be written honestly (a measurement is missing)."""


def default_template(name: str = "student_card.md") -> Path:
    """The installed card template ``name``; raises ``FileNotFoundError`` naming the folders searched."""
    for folder in TEMPLATE_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"card template {name} not found in {', '.join(map(str, TEMPLATE_DIRS))}; "
                            "pass template=")


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f}"


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "" if x is None else format(x, fmt)


def _quality(row: dict, token: bool) -> str:
    keys = ("precision", "recall", "f1") if token else ("accuracy", "macro_f1")
    return " | ".join(_pct(row.get(k)) for k in keys)


def _efficiency_row(name: str, r: dict) -> list[str]:
    onnx, int8 = r.get("onnx", {}), r.get("onnx_int8", {})
    return [name, f"{r['params'] / 1e6:.2f}M", f"{r['embedding_share']:.2f}", f"{r['flops'] / 1e9:.3g}",
            _num(r["pytorch"]["latency_ms"]), _num(onnx.get("latency_ms")), _num(int8.get("latency_ms")),
            _num(onnx.get("sentences_per_s"), ".0f"), _num(r.get("safetensors_mb"), ".1f"),
            _num(r.get("onnx_mb"), ".1f"), _num(r.get("onnx_int8_mb"), ".1f")]


def is_hub_id(name: str | None) -> bool:
    """True for a Hub repository id (``org/name``); False for a local path, absolute, relative or existing."""
    if not name or Path(name).exists() or name.startswith(("/", ".", "~")) or name.count("/") > 1:
        return False
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def card_data(info: dict, eff: dict, repo_id: str, token: bool, base_model: str | None):
    """The YAML metadata: library, tags, datasets, base model and a model-index of measured scores."""
    from huggingface_hub import EvalResult, ModelCardData

    dataset = eff.get("dataset") or info.get("dataset") or "unknown"
    task = "token-classification" if token else "text-classification"
    scores = eff["student"]["pytorch"]
    metrics = ("precision", "recall", "f1") if token else ("accuracy", "macro_f1")
    results = [EvalResult(task_type=task, dataset_type=dataset, dataset_name=dataset, dataset_split=eff["split"],
                          metric_type=m.replace("macro_f1", "f1"), metric_name=m, metric_value=round(scores[m], 4))
               for m in metrics if m in scores]
    return ModelCardData(library_name="transformers", pipeline_tag=task, datasets=[dataset], base_model=base_model,
                         tags=["knowledge-distillation", "hf-distill", task, "onnx", eff["student"]["model_type"]],
                         model_name=repo_id.split("/")[-1], eval_results=results or None)


def render_card(model_dir: str | os.PathLike, repo_id: str | None = None, template: str | os.PathLike | None = None,
                base_model: str | None = None):
    """A ``huggingface_hub.ModelCard`` for the student in ``model_dir`` from its measured records.

    Needs ``efficiency.json`` (``hf-distill bench``); ``distillation.json`` (written by the recipes)
    adds the KD settings and the command. ``base_model`` defaults to the recorded teacher.
    """
    from huggingface_hub import ModelCard

    model_dir = Path(model_dir)
    eff_path = model_dir / "efficiency.json"
    if not eff_path.is_file():
        raise CardError(f"{eff_path} is missing: run `hf-distill bench {model_dir}` first (the card only reports "
                        "measured numbers)")
    eff = read_json(eff_path)
    info_path = model_dir / DISTILLATION_FILE
    info = read_json(info_path) if info_path.is_file() else {}
    config = read_json(model_dir / "config.json")
    student, teacher = eff["student"], eff.get("teacher")
    token = task_of(student["class"]) == "token"
    repo_id = repo_id or model_dir.name
    teacher_name = info.get("teacher_name") or info.get("teacher") or (teacher or {}).get("path") or "the teacher"
    base = base_model
    if base is None and is_hub_id(info.get("teacher")):
        base = info["teacher"]  # a local teacher folder is no valid base_model (pass base_model=)

    quality = [{"name": "student (PyTorch)", "scores": _quality(student["pytorch"], token)}]
    for key, label in (("onnx", "student (ONNX)"), ("onnx_int8", "student (ONNX int8)")):
        if key in student:
            quality.append({"name": label, "scores": _quality(student[key], token)})
    if teacher:
        quality.append({"name": f"teacher `{teacher_name}`", "scores": _quality(teacher["pytorch"], token)})
    kd_keys = ("kd_loss", "temperature", "kd_weight", "resolved_kd_weight", "task_weight", "kd_weight_schedule",
               "kbest_k", "hidden_matches", "teacher_signal", "num_train_epochs", "learning_rate",
               "per_device_train_batch_size", "gradient_accumulation_steps", "world_size", "seed")
    kd_rows = [(k, info[k]) for k in kd_keys if info.get(k) is not None]
    if not kd_rows:
        kd_rows = [("record", "not recorded (no distillation.json from an hf-distill run beside the model)")]
    efficiency_rows = [_efficiency_row("student", student)]
    if teacher:
        efficiency_rows.append(_efficiency_row("teacher", teacher))
    speed = eff.get("speedup", {})
    notes = []
    if speed:
        notes.append(f"Speed-up over the teacher: {speed.get('pytorch', 0):.1f}x in PyTorch, "
                     f"{speed.get('onnx', 0):.1f}x in ONNX, {speed.get('onnx_vs_teacher_pytorch', 0):.1f}x for the "
                     "student's ONNX against the teacher in PyTorch.")
    if eff.get("break_even"):
        b = eff["break_even"]
        notes.append(f"Break-even: the teacher's fine-tuning ({b['teacher_epochs']} epochs) and caching cost "
                     f"{b['extra_flops']:.3g} FLOPs, repaid after {b['inferences']:,} inferences served by the "
                     "student instead of the teacher.")
    return ModelCard.from_template(
        card_data(info, eff, repo_id, token, base), template_path=str(template or default_template()),
        model_name=repo_id, family=info.get("student_family") or student["model_type"], teacher=teacher_name,
        dataset=eff.get("dataset") or info.get("dataset") or "unknown", split=eff["split"], examples=eff["examples"],
        metric_header="precision | recall | F1" if token else "accuracy | macro-F1",
        metric_sep="|---" * (3 if token else 2),
        quality_rows=quality, quality_note=(f"ONNX logits match PyTorch within {eff['onnx_max_abs_diff']:.1e}."
                                            if eff.get("onnx_max_abs_diff") is not None else ""),
        kd_rows=kd_rows, threads=eff["threads"], runs=eff["runs"],
        batch_size=student["pytorch"].get("batch_size", ""), flops_seq_len=student["flops_seq_len"],
        char_note=(" (15 characters per word" + (f", up to {config.get('max_word_pieces', 6)} sub-word pieces for "
                                                 "each word its table lacks" if config.get("piece_vocab") else "")
                   + ")") if config.get("char_vocab") else "",
        efficiency_rows=efficiency_rows, speedup_note="\n\n".join(notes), repo_id=repo_id,
        auto_class="AutoModelForTokenClassification" if token else "AutoModelForSequenceClassification",
        trust_remote_code=student["model_type"].startswith("hfd_"), model_type=student["model_type"],
        train_examples=info.get("train_examples", "an unrecorded number of"),
        command=info.get("command", "(not recorded: the student was not trained by an hf-distill recipe)"),
        cascade=cascade_section(model_dir))


def cascade_section(model_dir: str | os.PathLike) -> str:
    """The card's cascade section, from ``cascade.json`` alone (measured by ``hf-distill cascade``), or ""."""
    path = Path(model_dir) / "cascade.json"
    if not path.is_file():
        return ""
    try:
        record = read_json(path)["record"]
        t, s, c = record["teacher"], record["student"], record["cascade"]
    except (KeyError, TypeError) as e:
        raise CardError(f"{path}: not a cascade record ({e}); run hf-distill cascade again") from None
    metric = record.get("metric", "f1")
    rows = [f"| model | backend | test {metric} | sent to the teacher | inputs/s, batch 1 | inputs/s, batch 32 |",
            "|---|---|---|---|---|---|"]
    for name, r, share in (("teacher", t, 1.0), ("this student", s, 0.0), ("cascade", c, c["to_teacher"])):
        backend = r.get("backend") or f"{s['backend']} + {t['backend']}"
        rows.append(f"| {name} | {backend} | {100 * r['f1']:.2f} | {100 * share:.1f}% | "
                    f"{r['sent_per_s']['1']:.1f} | {r['sent_per_s']['32']:.1f} |")
    return ("## Cascade with the teacher\n\nThe student answers the inputs it is sure of (confidence at least "
            f"{c['threshold']:.4f}, calibrated on the dev split) and the teacher the rest; measured on "
            f"{record.get('dataset', 'the test split')} by `hf-distill cascade` (one thread):\n\n"
            + "\n".join(rows))


CARD_MARK = "<!-- hf-distill card sha256="


def _marked(text: str) -> str:
    body = text.rstrip("\n") + "\n"
    return f"{body}\n{CARD_MARK}{hashlib.sha256(body.encode()).hexdigest()} -->\n"


def split_card(text: str) -> tuple[str | None, str]:
    """``(generated part, notes)`` of a README.md: the generated part (marker line included) when its recorded hash
    still matches, else None; the notes are what a person wrote below the marker line ("" when nothing)."""
    head, sep, tail = text.rpartition("\n" + CARD_MARK)
    if not sep:
        return None, ""
    digest, _, rest = tail.partition(" -->")
    notes = rest[1:] if rest.startswith("\n") else rest
    if hashlib.sha256(head.encode()).hexdigest() != digest.strip():
        return None, notes
    return text[: len(text) - len(notes)], notes


def is_generated_card(text: str) -> bool:
    """True when the generated part of ``text`` (everything above its marker line) is as hf-distill wrote it;
    notes below the marker line may have been added."""
    return split_card(text)[0] is not None


def write_card(model_dir: str | os.PathLike, repo_id: str | None = None, overwrite: bool = False,
               **kwargs) -> Path:
    """Render the card and save it atomically as ``model_dir/README.md``.

    A README.md that hf-distill did not write, or whose generated part was edited since, is never replaced
    silently: it raises :class:`CardError` unless ``overwrite`` (then the old file is kept as ``README.md.bak``).
    Notes a person added below the card's marker line are carried into the new card, unchanged.
    """
    path = Path(model_dir) / CARD_FILE
    existing = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
    generated, notes = split_card(existing) if existing is not None else (None, "")
    if existing is not None and generated is None and not overwrite:
        raise CardError(f"{path} was written or edited by hand (above the hf-distill marker line): pass "
                        "overwrite=True (--overwrite) to replace it (a copy is kept as README.md.bak), or push it "
                        "as it is with --no_card; notes added below the marker line are kept without it")
    card = render_card(model_dir, repo_id, **kwargs)
    if existing is not None and generated is None:
        shutil.copy2(path, path.with_name(CARD_FILE + ".bak"))
        notes = ""  # the whole old file is in the backup
    write_text_atomic(path, _marked(str(card)) + notes)
    return path
