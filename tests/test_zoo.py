"""hf-distill zoo on tiny models and a slice of real CoNLL-2003: results, resume, Pareto front, advice."""

from __future__ import annotations

import json

import pytest
from conftest import CONLL_LABELS, tiny_bert

from hf_distill.zoo import StudentSpec, ZooArguments, pareto_front, recommend, run_zoo


def _rows():
    return [  # hand-made: c is beaten by b (faster and better); a, b, d form the front
        {"name": "a", "latency_ms": 0.2, "f1": 0.70, "backend": "onnx_int8"},
        {"name": "b", "latency_ms": 1.0, "f1": 0.84, "backend": "onnx"},
        {"name": "c", "latency_ms": 2.0, "f1": 0.80, "backend": "onnx"},
        {"name": "d", "latency_ms": 5.0, "f1": 0.86, "backend": "pytorch"},
        {"name": "e", "latency_ms": 5.0, "f1": 0.85, "backend": "pytorch"},
    ]


def test_pareto_front_on_a_hand_made_table():
    assert pareto_front(_rows()) == ["a", "b", "d"]


def test_recommendations_and_constraints_no_student_meets():
    advice = recommend(_rows(), teacher_f1=0.87, max_f1_drop=3.0, latency_budget_ms=1.5)
    assert advice["within_f1_drop"]["name"] == "b" and "-3.00 vs the teacher" in advice["within_f1_drop"]["text"]
    assert advice["under_latency_budget"]["name"] == "b"
    none = recommend(_rows(), teacher_f1=0.95, max_f1_drop=1.0, latency_budget_ms=0.1)
    assert none["within_f1_drop"]["name"] is None
    text = none["within_f1_drop"]["text"]
    assert "no student is within 1 F1 of the teacher (95.00); the closest is d at 86.00" in text
    text = none["under_latency_budget"]["text"]
    assert "no student runs under 0.1 ms per sentence; the fastest is a at 0.20 ms" in text


def test_student_specs_parse_and_bad_ones_are_named():
    spec = StudentSpec.parse('lstm-64=bilstm:{"hidden_size": 64}@1e-3')
    assert (spec.name, spec.family, spec.config, spec.learning_rate) == ("lstm-64", "bilstm", {"hidden_size": 64}, 1e-3)
    assert StudentSpec.parse("cnn").family == "cnn"
    with pytest.raises(ValueError, match="a preset"):
        StudentSpec.parse("lstm")
    with pytest.raises(ValueError, match="not JSON"):
        StudentSpec.parse("x=bilstm:{hidden}")


@pytest.mark.slow
def test_zoo_end_to_end_then_resume_skips_finished_students(tmp_path, tokenizer, data_dir, capsys):
    teacher_dir = tmp_path / "teacher"
    tiny_bert(len(tokenizer), layers=1, hidden=16, seed=3, labels=CONLL_LABELS).save_pretrained(teacher_dir)
    tokenizer.save_pretrained(teacher_dir)
    args = ZooArguments(
        teacher=str(teacher_dir), data_dir=str(data_dir), output_dir=str(tmp_path / "zoo"),
        students=['w=window:{"embedding_dim": 8}@1e-2', 'l=bilstm:{"embedding_dim": 8, "hidden_size": 8}@1e-2'],
        max_train_samples=48, max_dev_samples=24, max_eval_samples=24, epochs=2, patience=1, bench_runs=2,
        quantize=False, compare_no_kd=True, max_f1_drop=100.0, latency_budget_ms=1e4)
    out = run_zoo(args)
    names = sorted(r["name"] for r in out["students"])
    assert names == ["l", "l-no-kd", "w", "w-no-kd"]
    saved = json.loads((tmp_path / "zoo" / "zoo.json").read_text())
    assert saved["pareto_front"] == pareto_front(saved["students"])
    assert saved["recommendation"]["within_f1_drop"]["name"] in names
    assert (tmp_path / "zoo" / "zoo.png").stat().st_size > 1000
    text = (tmp_path / "zoo" / "zoo.md").read_text()
    assert saved["recommendation"]["within_f1_drop"]["text"] in text
    for r in saved["students"]:  # every student folder is ready for card / push
        assert (tmp_path / "zoo" / "students" / r["name"] / "model" / "efficiency.json").is_file()
        assert (tmp_path / "zoo" / "students" / r["name"] / "model" / "tokenizer_config.json").is_file()
    capsys.readouterr()
    again = run_zoo(args)
    assert all(r.get("skipped") for r in again["students"])
    assert capsys.readouterr().out.count("finished before with the same settings, skipped") == 4


def test_b_students_start_from_the_teacher_embeddings(tokenizer):
    import torch

    from hf_distill.zoo import _build

    teacher = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=5)
    spec = StudentSpec.parse('l-B=bilstm:{"hidden_size": 8, "teacher_embeddings": true}')
    student = _build(spec, teacher, tokenizer, CONLL_LABELS)
    assert torch.equal(student.get_input_embeddings().weight, teacher.get_input_embeddings().weight)
    assert student.config.embedding_dim == 16
