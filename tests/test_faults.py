"""Fault injection: every kind of file the library reads back, damaged three ways (empty, truncated, other content),
must give one error that names the file (or be rebuilt), through the call that reads it in normal use."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from conftest import CONLL_LABELS, tiny_bert

from hf_distill import DistillationTrainer, DistillationTrainingArguments, cache_teacher_outputs
from hf_distill.shipping.bench import bench_student
from hf_distill.students import build_student

DAMAGES = ("empty", "truncated", "other_content")


def damage(path, how: str) -> None:
    data = open(path, "rb").read()
    if how == "empty":
        out = b""
    elif how == "truncated":
        out = data[: len(data) // 2]
    else:  # another file's bytes where this one should be
        out = b"\x89PNG\r\n\x1a\n" + bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8))
    with open(path, "wb") as f:
        f.write(out)


@pytest.fixture(scope="module")
def made(tmp_path_factory, tokenizer, tokenized, conll):
    """One of each artefact: a trained CRF student with its bench record, ONNX export and checkpoints, a teacher
    cache on disk, a zoo student record, a cascade record and word vectors in the three formats read."""
    root = tmp_path_factory.mktemp("made")
    teacher = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=2).eval()
    teacher.save_pretrained(root / "teacher")
    tokenizer.save_pretrained(root / "teacher")
    torch.manual_seed(0)
    student = build_student("bilstm", tokenizer, labels=CONLL_LABELS, embedding_dim=16, hidden_size=8, use_crf=True)
    args = DistillationTrainingArguments(output_dir=str(root / "run"), max_steps=4, per_device_train_batch_size=8,
                                         kd_loss="kl", report_to="none", save_strategy="steps", save_steps=2,
                                         disable_tqdm=True, use_cpu=True, dataloader_pin_memory=False)
    train = tokenized["train"].select(range(32))
    trainer = DistillationTrainer(model=student, args=args, teacher_model=teacher, processing_class=tokenizer,
                                  train_dataset=train)
    trainer.train()
    trainer.save_student(str(root / "student"), teacher=str(root / "teacher"), dataset="conll2003")
    bench_student(str(root / "student"), conll["test"].select(range(12)), runs=2)
    cache_teacher_outputs(teacher, train, cache_dir=str(root / "cache"), tokenizer=tokenizer)
    from hf_distill.shipping.cascade import Cascade

    Cascade(student=str(root / "student"), teacher=str(root / "teacher"), threshold=0.5).save_pretrained()
    zoo = root / "zoo" / "students" / "s"
    zoo.mkdir(parents=True)
    from hf_distill.base import write_json_atomic

    write_json_atomic(str(zoo / "zoo_result.json"), {"name": "s", "key": "k", "f1": 0.5})
    write_json_atomic(str(zoo / "zoo_key.json"), {"key": "k"})
    vectors = root / "vectors"
    (vectors / "npy").mkdir(parents=True)
    words = [f"w{i}" for i in range(40)]
    np.save(vectors / "npy" / "vectors.npy", np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"word": words}), vectors / "npy" / "words.parquet")
    (vectors / "glove.txt").write_text("".join(f"{w} " + " ".join(["0.125"] * 8) + "\n" for w in words))
    return {"root": root, "teacher": teacher, "train": train, "tokenizer": tokenizer}


def _student_pipeline(folder):
    from hf_distill.shipping.pipelines import student_pipeline

    student_pipeline(str(folder))


def _card(folder):
    from hf_distill.shipping.cards import render_card

    render_card(str(folder))


def _resume(checkpoint, made):
    student = build_student("bilstm", made["tokenizer"], labels=CONLL_LABELS, embedding_dim=16, hidden_size=8,
                            use_crf=True)
    args = DistillationTrainingArguments(output_dir=str(checkpoint.parent), max_steps=6, per_device_train_batch_size=8,
                                         kd_loss="kl", report_to="none", save_strategy="no", disable_tqdm=True,
                                         use_cpu=True)
    DistillationTrainer(model=student, args=args, teacher_model=made["teacher"], processing_class=made["tokenizer"],
                        train_dataset=made["train"]).train(resume_from_checkpoint=str(checkpoint))


def _cache(folder, made):
    cache_teacher_outputs(made["teacher"], made["train"], cache_dir=str(folder.parent), tokenizer=made["tokenizer"])


def _cache_folder(path):
    """The cache folder (under cache/) a data file belongs to."""
    while path.parent.name != "cache":
        path = path.parent
    return path


def _cascade(folder):
    from hf_distill.shipping.cascade import Cascade

    Cascade.from_pretrained(str(folder))


def _zoo_results(folder):
    from hf_distill.zoo.report import finished_students

    finished_students(str(folder.parent.parent))


def _zoo_resume(folder):
    from hf_distill.zoo.student import resume_point

    resume_point(str(folder), "k", lambda _text: None)


def _vectors(path):
    from hf_distill.data.words import load_word_vectors

    load_word_vectors(str(path))


#: (name, where the file is below the artefacts' root, the call that reads it)
FILES = [
    ("student config.json", "student/config.json", lambda p, m: _student_pipeline(p.parent)),
    ("student model.safetensors", "student/model.safetensors", lambda p, m: _student_pipeline(p.parent)),
    ("student tokenizer.json", "student/tokenizer.json", lambda p, m: _student_pipeline(p.parent)),
    ("student tokenizer_config.json", "student/tokenizer_config.json", lambda p, m: _student_pipeline(p.parent)),
    ("efficiency.json", "student/efficiency.json", lambda p, m: _card(p.parent)),
    ("distillation.json", "student/distillation.json", lambda p, m: _card(p.parent)),
    ("onnx model.onnx", "student/onnx/model.onnx", lambda p, m: _student_pipeline(p.parent)),
    ("onnx crf.json", "student/onnx/crf.json", lambda p, m: _student_pipeline(p.parent)),
    ("cascade.json", "student/cascade.json", lambda p, m: _cascade(p.parent)),
    ("checkpoint trainer_state.json", "run/checkpoint-4/trainer_state.json", lambda p, m: _resume(p.parent, m)),
    ("checkpoint optimizer.pt", "run/checkpoint-4/optimizer.pt", lambda p, m: _resume(p.parent, m)),
    ("checkpoint scheduler.pt", "run/checkpoint-4/scheduler.pt", lambda p, m: _resume(p.parent, m)),
    ("checkpoint rng_state.pth", "run/checkpoint-4/rng_state.pth", lambda p, m: _resume(p.parent, m)),
    ("checkpoint model.safetensors", "run/checkpoint-4/model.safetensors", lambda p, m: _resume(p.parent, m)),
    ("checkpoint hf_distill_state.json", "run/checkpoint-4/hf_distill_state.json",
     lambda p, m: _resume(p.parent, m)),
    ("checkpoint training_args.bin", "run/checkpoint-4/training_args.bin", lambda p, m: _resume(p.parent, m)),
    ("teacher cache metadata", "cache/*/hf_distill_cache.json", lambda p, m: _cache(p.parent, m)),
    ("teacher cache data", "cache/*/**/*.arrow", lambda p, m: _cache(_cache_folder(p), m)),
    ("zoo_result.json", "zoo/students/s/zoo_result.json", lambda p, m: _zoo_results(p.parent)),
    ("zoo_key.json", "zoo/students/s/zoo_key.json", lambda p, m: _zoo_resume(p.parent)),
    ("word vectors .npy", "vectors/npy/vectors.npy", lambda p, m: _vectors(p.parent)),
    ("word list .parquet", "vectors/npy/words.parquet", lambda p, m: _vectors(p.parent)),
    ("word vectors text", "vectors/glove.txt", lambda p, m: _vectors(p)),
]
CASES = [(name, rel, read, how) for name, rel, read in FILES for how in DAMAGES]


@pytest.mark.parametrize("name,rel,read,how", CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_a_damaged_file_is_named(tmp_path, made, name, rel, read, how):
    root = tmp_path / "copy"
    shutil.copytree(made["root"], root)
    (path,) = [p for p in root.glob(rel) if p.is_file()][:1] or [None]
    assert path is not None, f"the fixture made no {rel}"
    damage(path, how)
    with pytest.raises(Exception) as caught:
        read(path, {**made, "root": root})
    message = str(caught.value)
    # the file; a cache is named by its folder and the file inside it
    shown = [path.name] if not name.startswith("teacher cache") else [path.relative_to(root).parts[1]]
    assert any(s in message for s in shown), f"{type(caught.value).__name__}: {message}"
    assert len(message.splitlines()) <= 3 and "Traceback" not in message
