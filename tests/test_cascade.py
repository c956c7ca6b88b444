"""The cascade: the student answers what it is sure of, the teacher the rest."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from conftest import CONLL_LABELS, tiny_bert

from hf_distill.shipping.cascade import (
    Cascade,
    choose_threshold,
    confidence,
    length_batches,
    merge,
    path_probability,
    threshold_curve,
)
from hf_distill.students import build_student


def _pair(tmp_path, tokenizer, student_labels=CONLL_LABELS):
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    tiny_bert(len(tokenizer), layers=1, hidden=16, seed=3).save_pretrained(teacher)
    torch.manual_seed(0)
    build_student("bilstm", tokenizer, labels=student_labels, embedding_dim=8, hidden_size=8).save_pretrained(student)
    for folder in (teacher, student):
        tokenizer.save_pretrained(folder)
    return str(student), str(teacher)


def test_threshold_search_on_a_hand_made_table():
    gold = ["a", "b", "a", "b"]
    student = ["a", "a", "a", "a"]  # wrong on rows 1 and 3
    teacher = ["a", "b", "a", "b"]
    conf = [0.95, 0.40, 0.90, 0.60]  # the wrong rows are the unsure ones
    curve = threshold_curve(conf, student, teacher, gold, token=False, points=5)
    assert curve[0] == {"threshold": 0.0, "score": 0.5, "to_teacher": 0.0}  # never the teacher
    assert curve[-1]["score"] == 1.0 and curve[-1]["to_teacher"] == 1.0  # always the teacher
    best = choose_threshold(curve, teacher_score=1.0, max_drop=0.0)
    assert best["score"] == 1.0 and best["to_teacher"] == 0.5  # the two unsure rows, no more
    assert 0.6 < best["threshold"] <= 0.9
    within = choose_threshold(curve, teacher_score=1.0, max_drop=0.26)
    assert within["to_teacher"] == 0.25 and within["score"] == 0.75
    fast = choose_threshold(curve, 1.0, latency_budget_ms=1.3, student_ms=1.0, teacher_ms=1.0)
    assert fast["to_teacher"] <= 0.3 and fast["score"] == 0.75  # 1 + 0.25 * 1 <= 1.3
    with pytest.raises(ValueError, match="over the budget"):
        choose_threshold(curve, 1.0, latency_budget_ms=0.5, student_ms=1.0, teacher_ms=1.0)
    # the latency budget weighs the inputs sent by their length: the unsure row 1 is long and costs the teacher more
    weighed = threshold_curve(conf, student, teacher, gold, token=False, points=5, lengths=[10, 50, 10, 30])
    one = next(p for p in weighed if p["to_teacher"] == 0.25)
    assert one["teacher_load"] == 0.5  # 50 of the 100 tokens
    slow = choose_threshold(weighed, 1.0, latency_budget_ms=1.3, student_ms=1.0, teacher_ms=1.0)
    assert slow["to_teacher"] == 0.0  # 1 + 0.5 * 1 > 1.3: only the student fits
    with pytest.raises(ValueError, match="one of them"):
        choose_threshold(curve, 1.0)
    # against the teacher's answers (the default): agreement, whatever the gold labels say
    from hf_distill.shipping.cascade import calibrate

    wrong_gold = ["b", "a", "b", "a"]  # the teacher is wrong everywhere: agreement does not care
    cal = calibrate(conf, student, teacher, wrong_gold, token=False, max_drop=0.0)
    assert cal["reference"] == "teacher" and cal["point"]["to_teacher"] == 0.5 and cal["point"]["score"] == 1.0
    assert calibrate(conf, student, teacher, wrong_gold, False, max_drop=0.0, reference="gold")["point"][
        "to_teacher"] == 0.0  # against these gold labels the teacher scores 0: sending nothing is within 0 of it


def test_length_batches_sort_rows_and_cut_where_padding_would_cost_more():
    lengths = [30, 5, 6, 5, 60, 31]
    batches = length_batches(lengths, batch_size=32)
    assert batches == [[1, 3, 2], [0, 5], [4]]  # 5, 5, 6 pad to 6 (+6%); 30 and 31 together; 60 alone
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert length_batches(lengths, batch_size=2) == [[1, 3], [2], [0, 5], [4]]
    assert length_batches(lengths, batch_size=1) == [[i] for i in range(6)]  # input order, no sorting
    assert length_batches([7] * 5, batch_size=32, max_padding=0.0) == [[0, 1, 2, 3, 4]]


def test_merge_keeps_the_input_order_of_a_mixed_batch():
    merged, who = merge(["s0", "s1", "s2", "s3"], ["t0", "t1", "t2", "t3"], [0.9, 0.1, 0.8, 0.2], 0.5)
    assert merged == ["s0", "t1", "s2", "t3"] and who == ["student", "teacher", "student", "teacher"]


def test_crf_confidence_equals_brute_force_enumeration():
    rng = np.random.default_rng(0)
    em = rng.normal(size=(3, 3))
    crf = {"transitions": rng.normal(size=(3, 3)), "start": rng.normal(size=3), "end": rng.normal(size=3)}

    def score(path):
        s = crf["start"][path[0]] + crf["end"][path[-1]] + sum(em[i, p] for i, p in enumerate(path))
        return s + sum(crf["transitions"][a, b] for a, b in zip(path, path[1:]))

    paths = list(itertools.product(range(3), repeat=3))
    z = sum(np.exp(score(p)) for p in paths)
    best = max(paths, key=score)
    assert path_probability(torch.from_numpy(em), crf, best) == pytest.approx(np.exp(score(best)) / z, rel=1e-9)
    assert confidence(em, crf, best) == pytest.approx(np.exp(score(best)) / z, rel=1e-9)
    from hf_distill.shipping.crf_decode import crf_path_probability, crf_path_probability_log

    for path in paths[:5]:  # the numpy forward recursions the cascade uses, on any path
        assert crf_path_probability(em, crf, path) == pytest.approx(np.exp(score(path)) / z, rel=1e-9)
        assert crf_path_probability_log(em, crf, path) == pytest.approx(np.exp(score(path)) / z, rel=1e-9)
    # without a CRF: the lowest max-probability over positions
    probs = np.exp(em) / np.exp(em).sum(-1, keepdims=True)
    assert confidence(em) == pytest.approx(probs.max(-1).min())


def test_a_batch_decodes_and_scores_each_row_as_alone():
    from hf_distill.shipping.crf_decode import (
        crf_path_probability,
        crf_path_probability_log,
        path_probabilities,
        viterbi,
        viterbi_batch,
    )

    rng = np.random.default_rng(1)
    labels, lengths = 4, [5, 1, 0, 3, 5]
    crf = {"transitions": rng.normal(size=(labels, labels)), "start": rng.normal(size=labels),
           "end": rng.normal(size=labels)}
    crf["transitions"][0, 2] = -1e4  # a constrained transition, as a CRF student exports it
    rows = [rng.normal(size=(n, labels)).astype(np.float32) for n in lengths]
    padded = np.full((len(rows), max(lengths), labels), 7.0)  # the padding's values must not matter
    for i, row in enumerate(rows):
        padded[i, : len(row)] = row
    pot = crf["transitions"], crf["start"], crf["end"]
    paths = viterbi_batch(padded, lengths, *pot)
    assert paths == [viterbi(row, *pot) if len(row) else [] for row in rows]
    probs = path_probabilities(padded, lengths, paths, crf)
    for row, path, p in zip(rows, paths, probs):
        assert p == (pytest.approx(crf_path_probability_log(row, crf, path), rel=1e-9) if len(row) else 1.0)
        if len(row):
            assert crf_path_probability(row, crf, path) == pytest.approx(p, rel=1e-9)
    # start potentials too low for exp(): the rescaled recursion underflows and the row is redone in log space
    low = dict(crf, start=crf["start"] - 800.0)
    for batch in (padded[:1], padded[:2]):
        p = path_probabilities(batch, lengths[: len(batch)], paths[: len(batch)], low)[0]
        assert p > 0 and p == pytest.approx(crf_path_probability_log(rows[0], low, paths[0]), rel=1e-9)


def test_thresholds_zero_and_above_one_give_the_student_and_the_teacher_exactly(tmp_path, tokenizer, conll):
    student, teacher = _pair(tmp_path, tokenizer)
    split = conll["test"].select(range(12))
    never = Cascade(student, teacher, threshold=0.0).predict(split)
    always = Cascade(student, teacher, threshold=1.0 + 1e-9).predict(split)
    s = Cascade(student, teacher)._student
    t = Cascade(student, teacher)._teacher
    assert never["predictions"] == s.predict(s.encode(split))[0] and set(never["answered_by"]) == {"student"}
    assert always["predictions"] == t.predict(t.encode(split))[0] and set(always["answered_by"]) == {"teacher"}
    mixed = Cascade(student, teacher, threshold=float(np.median(never["confidence"]))).predict(split)
    for i, who in enumerate(mixed["answered_by"]):  # each row answered by its model, in the input order
        source = always if who == "teacher" else never
        assert mixed["predictions"][i] == source["predictions"][i]
    assert set(mixed["answered_by"]) == {"student", "teacher"}


def test_round_trip_and_bad_input(tmp_path, tokenizer):
    student, teacher = _pair(tmp_path, tokenizer)
    cascade = Cascade(student, teacher, threshold=0.42, record={"cascade": {"f1": 0.9}})
    path = cascade.save_pretrained()
    again = Cascade.from_pretrained(student)
    assert (again.threshold, again.teacher_backend, again.record) == (0.42, "pytorch", {"cascade": {"f1": 0.9}})
    with open(path, "w") as f:
        f.write("{broken")
    with pytest.raises(ValueError, match="cascade.json is damaged .*invalid JSON.*re-run `hf-distill cascade`"):
        Cascade.from_pretrained(student)
    other = CONLL_LABELS[:-1] + ["I-XYZ"]
    odd_student, _ = _pair(tmp_path / "odd", tokenizer, student_labels=other)
    with pytest.raises(ValueError, match=r"only the student: \['I-XYZ'\]; only the teacher: \['I-MISC'\]"):
        Cascade(odd_student, teacher)


def test_student_pipeline_serves_a_cascade(tmp_path, tokenizer):
    from hf_distill.shipping.pipelines import student_pipeline

    student, teacher = _pair(tmp_path, tokenizer)
    Cascade(student, teacher, threshold=1.01).save_pretrained()  # above 1: the teacher answers everything
    pipe = student_pipeline(student, cascade=True)
    one = pipe("EU rejects German call")
    assert one["tokens"] == ["EU", "rejects", "German", "call"] and one["answered_by"] == "teacher"
    assert len(one["tags"]) == 4 and set(one["tags"]) <= set(CONLL_LABELS)
    both = student_pipeline(Cascade(student, teacher, threshold=0.0))(["Peter Blackburn", ["BRUSSELS", "1996-08-22"]])
    assert [a["answered_by"] for a in both] == ["student", "student"] and [len(a["tags"]) for a in both] == [2, 2]


def test_a_data_set_without_dev_split_is_refused(tmp_path, tokenizer, monkeypatch):
    import datasets

    from hf_distill.runs.cascade import CascadeArguments, run_cascade

    student, teacher = _pair(tmp_path, tokenizer)
    names = datasets.ClassLabel(names=CONLL_LABELS)
    rows = datasets.Dataset.from_dict({"tokens": [["EU"]], "ner_tags": [[3]]}, features=datasets.Features(
        {"tokens": datasets.Sequence(datasets.Value("string")), "ner_tags": datasets.Sequence(names)}))
    monkeypatch.setattr("hf_distill.data.load_dataset", lambda *a, **k: datasets.DatasetDict(train=rows, test=rows))
    with pytest.raises(ValueError, match="no validation split to calibrate"):
        run_cascade(CascadeArguments(student=student, teacher=teacher, dataset="x"))


def test_a_dev_split_the_zoo_carved_is_carved_again_for_calibration(tmp_path, tokenizer, conll, monkeypatch):
    import datasets

    from hf_distill.runs import cascade as command
    from hf_distill.shipping.cascade import Side
    from hf_distill.zoo.splits import carve_dev

    student, teacher = _pair(tmp_path, tokenizer)
    raw = datasets.DatasetDict(train=conll["train"].select(range(30)), test=conll["test"].select(range(6)))
    monkeypatch.setattr("hf_distill.data.load_dataset", lambda *a, **k: datasets.DatasetDict(dict(raw)))
    monkeypatch.setattr(command, "throughput", lambda work, rows: (work(), 100.0)[1])  # speeds: not tested
    seen = []
    encode = Side.encode
    monkeypatch.setattr(Side, "encode", lambda self, split: seen.append(split["tokens"]) or encode(self, split))
    record = {"carved_from": "train", "fraction": 0.2, "seed": 3}
    (tmp_path / "student" / "distillation.json").write_text(json.dumps({"dataset": "x", "dev_split": record}))
    out = command.run_cascade(command.CascadeArguments(student=student, teacher=teacher))
    expected = datasets.DatasetDict(dict(raw))
    assert carve_dev(expected, 0.2, 3) == record == out["cascade"]["calibration"]["carved"]
    assert seen[0] == expected["validation"]["tokens"] and len(seen[0]) == 6  # the student's dev rows, no others
    seen.clear()  # --dev_fraction/--dev_seed name another split explicitly
    out = command.run_cascade(command.CascadeArguments(student=student, teacher=teacher, dev_fraction=0.1, dev_seed=5))
    assert out["cascade"]["calibration"]["carved"]["fraction"] == 0.1 and len(seen[0]) == 3


def test_the_card_section_is_rendered_from_cascade_json_only(tmp_path):
    from hf_distill.shipping.cards import CardError, cascade_section

    assert cascade_section(tmp_path) == ""  # no cascade measured: no section
    record = {"teacher": {"f1": 0.8660, "backend": "onnx_int8", "sent_per_s": {"1": 210.0, "32": 400.0}},
              "student": {"f1": 0.8512, "backend": "onnx_int8", "sent_per_s": {"1": 2800.0, "32": 9000.0}},
              "cascade": {"threshold": 0.9731, "f1": 0.8655, "to_teacher": 0.184,
                          "sent_per_s": {"1": 950.0, "32": 1800.0}},
              "metric": "f1", "dataset": "conll2003"}
    (tmp_path / "cascade.json").write_text(json.dumps({"student": ".", "teacher": "t", "threshold": 0.9731,
                                                       "record": record}))
    text = cascade_section(tmp_path)
    assert "| cascade | onnx_int8 + onnx_int8 | 86.55 | 18.4% | 950.0 | 1800.0 |" in text
    assert "| teacher | onnx_int8 | 86.60 | 100.0% | 210.0 | 400.0 |" in text and "0.9731" in text
    (tmp_path / "cascade.json").write_text("{}")
    with pytest.raises(CardError, match="cascade.json: not a cascade record"):
        cascade_section(tmp_path)


def test_a_crf_student_decodes_as_the_model_does_constraints_included(tmp_path, tokenizer, conll):
    from hf_distill.base import extra_model_inputs
    from hf_distill.shipping.bench import torch_predictions
    from hf_distill.shipping.cascade import Side
    from hf_distill.training.collator import DistillationCollator

    torch.manual_seed(1)
    student = build_student("bilstm", tokenizer, labels=CONLL_LABELS, embedding_dim=8, hidden_size=8, use_crf=True,
                            crf_constraints=True)
    with torch.no_grad():  # make the unconstrained transitions prefer what IOB2 forbids (O -> I-PER)
        student.crf.transitions.normal_(0, 3.0)
    student.save_pretrained(tmp_path / "crf")
    tokenizer.save_pretrained(tmp_path / "crf")
    side = Side(str(tmp_path / "crf"))
    rows = side.encode(conll["test"].select(range(20)))
    preds, conf = side.predict(rows, batch_size=8)
    want = torch_predictions(side.model, rows, DistillationCollator(tokenizer, extra_inputs=extra_model_inputs(
        side.model)))
    assert preds == [[CONLL_LABELS[i] for i in w] for w in want]
    assert all(0.0 < c <= 1.0 for c in conf)


def test_the_serve_the_student_advice_needs_dev_and_test_to_agree():
    from hf_distill.runs.cascade import serve_student_note

    assert serve_student_note(0.80, 0.82) == ""  # the teacher leads on dev: no advice
    assert "serve the student alone" in serve_student_note(0.93, 0.90, 0.89, 0.86)
    # Swedish NER: the early-stopped student leads on its own dev split, the teacher on test
    note = serve_student_note(0.7953, 0.7798, 0.7797, 0.8208)
    assert "serve the student alone" not in note and "82.08 against 77.97" in note
