"""hf-distill zoo on tiny models and a slice of real CoNLL-2003: results, resume, Pareto front, advice."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import CONLL_LABELS, tiny_bert

from hf_distill.runs import TaskSpec
from hf_distill.zoo import StudentSpec, ZooArguments, load_splits, pareto_front, recommend, run_zoo


def _tiny_teacher(tmp_path, tokenizer):
    """A tiny random CoNLL tagger saved with its tokenizer: the zoo's teacher folder."""
    folder = tmp_path / "teacher"
    tiny_bert(len(tokenizer), layers=1, hidden=16, seed=3, labels=CONLL_LABELS).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


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


def test_a_validation_split_inside_train_is_warned_about():
    # IndoNLU TermA: all 1,000 validation sentences are training sentences too
    import datasets

    from hf_distill.zoo import dev_overlap_warning

    def split(rows):
        return datasets.Dataset.from_dict({"tokens": rows})

    train = split([["Kamar", "bersih"], ["AC", "rusak"], ["Sarapan", "enak"]])
    inside = {"train": train, "validation": split([["kamar", "bersih"], ["AC", "rusak"], ["Baru", "sekali"]])}
    assert dev_overlap_warning(inside).startswith("warning: 2 of 3 validation rows also occur in the training")
    apart = {"train": train, "validation": split([["Kamar", "kotor"], ["AC", "rusak"]])}
    assert dev_overlap_warning(apart) is None  # 1 of 2: not most of them
    texts = {"train": datasets.Dataset.from_dict({"text": ["a b", "c"]}),
             "validation": datasets.Dataset.from_dict({"text": ["a  b"]})}
    assert "1 of 1 validation rows" in dev_overlap_warning(texts)


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
    teacher_dir = _tiny_teacher(tmp_path, tokenizer)
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
    import shlex

    from hf_distill.cli import parse  # the recorded command parses back to the same settings

    assert parse(ZooArguments, shlex.split(saved["command"])[2:], "hf-distill zoo") == args
    assert saved["recommendation"]["within_f1_drop"]["name"] in names
    assert (tmp_path / "zoo" / "zoo.png").stat().st_size > 1000
    text = (tmp_path / "zoo" / "zoo.md").read_text()
    assert saved["recommendation"]["within_f1_drop"]["text"] in text
    for r in saved["students"]:  # every student folder is ready for card / push
        eff = json.loads((tmp_path / "zoo" / "students" / r["name"] / "model" / "efficiency.json").read_text())
        assert (tmp_path / "zoo" / "students" / r["name"] / "model" / "tokenizer_config.json").is_file()
        # the teacher is benched once, and each student's bench carries that measurement
        assert eff["teacher"] == json.loads((tmp_path / "zoo" / "teacher.json").read_text())["measured"]
        assert eff["speedup"]["pytorch"] > 0
    capsys.readouterr()
    again = run_zoo(args)
    assert all(r.get("skipped") for r in again["students"])
    assert capsys.readouterr().out.count("finished before with the same settings, skipped") == 4
    import dataclasses

    with_cascade = run_zoo(dataclasses.replace(args, cascade=True))  # the recommended student with the teacher
    c = with_cascade["cascade"]
    assert c["student"] == with_cascade["recommendation"]["within_f1_drop"]["name"] and 0 <= c["to_teacher"] <= 1
    assert json.loads((tmp_path / "zoo" / "zoo.json").read_text())["cascade"]["f1"] == c["f1"]
    assert "## Cascade" in (tmp_path / "zoo" / "zoo.md").read_text()


def test_side_by_side_zoo_processes_claim_each_student_once(tmp_path):
    import subprocess
    import sys

    from hf_distill.zoo.student import claim, release

    folder = str(tmp_path / "students" / "s")
    lock = claim(folder)
    assert lock and claim(folder) == lock  # this process holds it
    other = subprocess.run([sys.executable, "-c", "from hf_distill.zoo.student import claim; "
                            f"print(claim({folder!r}))"], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == "None"  # another process is refused while this one lives
    release(lock)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with open(lock, "w") as f:  # a lock left by a process that was killed is taken over
        f.write(dead.stdout.strip())
    assert claim(folder) == lock


def test_b_students_start_from_the_teacher_embeddings(tokenizer):
    import torch

    from hf_distill.zoo import _build

    teacher = tiny_bert(len(tokenizer) + 7, layers=1, hidden=16, seed=5)  # a padded table, as e5-small has
    spec = StudentSpec.parse('l-B=bilstm:{"hidden_size": 8, "teacher_embeddings": true}')
    student = _build(spec, teacher, tokenizer, TaskSpec("token", "ner_tags", CONLL_LABELS))
    assert torch.equal(student.get_input_embeddings().weight, teacher.get_input_embeddings().weight[: len(tokenizer)])
    assert student.config.embedding_dim == 16


def test_the_task_is_read_from_the_features_and_bad_columns_are_named():
    import datasets

    tags = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                              "pos_tags": datasets.Sequence(datasets.ClassLabel(names=["NN", "VB"]))})
    rows = datasets.Dataset.from_dict({"tokens": [["a"]], "pos_tags": [[0]]}, features=tags)
    task = TaskSpec.of(rows)
    assert (task.kind, task.label_column, task.labels, task.metric) == ("token", "pos_tags", ["NN", "VB"], "f1")
    text = datasets.Dataset.from_dict({"text": ["x"], "label": [1]}, features=datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}))
    assert (TaskSpec.of(text).kind, TaskSpec.of(text).metric) == ("sequence", "macro_f1")
    with pytest.raises(ValueError, match="label column 'stars' not found"):
        TaskSpec.of(text, label_column="stars")
    with pytest.raises(ValueError, match="text column 'body' not found"):
        TaskSpec.of(text, text_column="body")


@pytest.mark.slow
def test_zoo_on_text_classification(tmp_path, tokenizer, data_dir):
    from conftest import save_emotion_teacher

    save_emotion_teacher(tmp_path / "teacher", tokenizer, data_dir)
    args = ZooArguments(
        teacher=str(tmp_path / "teacher"), dataset="emotion", data_dir=str(data_dir), output_dir=str(tmp_path / "zoo"),
        students=['l=bilstm:{"embedding_dim": 8, "hidden_size": 8}@1e-2', 'c=cnn:{"embedding_dim": 8}@1e-2'],
        max_train_samples=64, max_dev_samples=32, max_eval_samples=32, epochs=1, patience=1, bench_runs=2,
        quantize=False, max_f1_drop=100.0, cache_dir=str(tmp_path / "shared_cache"))
    out = run_zoo(args)
    assert out["task"] == "sequence" and out["metric"] == "macro_f1"
    # the teacher cache lives in the shared folder, not the zoo's own
    assert any((tmp_path / "shared_cache").iterdir()) and not (tmp_path / "zoo" / "teacher_cache").exists()
    for r in out["students"]:
        assert 0.0 <= r["f1"] <= 1.0 and 0.0 <= r["accuracy"] <= 1.0
        assert r["f1_pytorch"] is not None
    assert "macro-F1 (best backend)" in (tmp_path / "zoo" / "zoo.md").read_text()
    # a teacher whose labels are not the data set's is refused, naming both
    wrong = ZooArguments(**{**args.__dict__, "output_dir": str(tmp_path / "zoo2"), "dataset": "conll2003"})
    with pytest.raises(ValueError, match="not the data set's"):
        run_zoo(wrong)


def test_zoo_trims_the_vocabulary_of_embedding_students(tmp_path, tokenizer, tokenized):
    import torch

    from hf_distill.zoo import _build, kept_ids

    args = ZooArguments(trim_vocabulary="true")
    keep = kept_ids(args, tokenizer, tokenized["train"])
    assert keep == {i for row in tokenized["train"]["input_ids"] for i in row}
    assert kept_ids(ZooArguments(), tokenizer, tokenized["train"]) is None  # auto: a small vocabulary stays
    with pytest.raises(ValueError, match="auto, true or false"):
        kept_ids(ZooArguments(trim_vocabulary="maybe"), tokenizer, tokenized["train"])
    teacher = tiny_bert(len(tokenizer) + 7, layers=1, hidden=16, seed=5)
    task = TaskSpec("token", "ner_tags", CONLL_LABELS)
    b = _build(StudentSpec.parse('l-B=bilstm:{"hidden_size": 8, "teacher_embeddings": true}'), teacher, tokenizer,
               task, keep)
    emb = b.get_input_embeddings()
    assert b.config.kept_tokens == emb.weight.shape[0] < len(tokenizer)
    word = max(keep)
    torch.testing.assert_close(emb(torch.tensor([word]))[0], teacher.get_input_embeddings().weight[word])
    tiny = _build(StudentSpec.parse("bert-tiny"), teacher, tokenizer, task, keep)  # small BERTs are trimmed too
    assert tiny.config.model_type == "hfd_trimmable_bert"
    assert tiny.get_input_embeddings().weight.shape[0] == tiny.config.kept_tokens == emb.weight.shape[0]
    truncated = _build(StudentSpec.parse('t1=truncated:{"layers": [0]}'), teacher, tokenizer, task, keep)  # not trimmed
    assert truncated.get_input_embeddings().weight.shape[0] == len(tokenizer) + 7
    # a trimmed student trains with the teacher's tokenizer (its id map covers the whole vocabulary)
    from hf_distill import DistillationTrainer, DistillationTrainingArguments

    args = DistillationTrainingArguments(output_dir=str(tmp_path / "t"), max_steps=2, kd_loss="none",
                                         report_to="none", per_device_train_batch_size=4, save_strategy="no")
    DistillationTrainer(model=b, args=args, train_dataset=tokenized["train"].select(range(8)),
                        processing_class=tokenizer).train()


@pytest.mark.slow
def test_zoo_runs_word_level_students_from_a_subword_teacher(tmp_path, tokenizer, data_dir):
    import torch
    from transformers import AutoModelForTokenClassification

    from hf_distill.zoo import teacher_word_vectors

    teacher = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=3, labels=CONLL_LABELS)
    teacher.save_pretrained(tmp_path / "teacher")
    tokenizer.save_pretrained(tmp_path / "teacher")
    args = ZooArguments(
        teacher=str(tmp_path / "teacher"), data_dir=str(data_dir), output_dir=str(tmp_path / "zoo"),
        students=['cw=char_lstm:{"embedding_dim": 8, "hidden_size": 8, "char_filters": 8}@1e-2',
                  'cw-B=char_lstm:{"hidden_size": 8, "char_filters": 8, "teacher_embeddings": true}@1e-2'],
        transfer="conll2003:train", transfer_max_rows=24, max_train_samples=32, max_dev_samples=16,
        max_eval_samples=16, epochs=1, patience=1, bench_runs=2, quantize=False, compare_no_kd=True)
    out = run_zoo(args)
    assert sorted(r["name"] for r in out["students"]) == ["cw", "cw-B", "cw-B-no-kd", "cw-no-kd"]
    assert all(0.0 <= r["f1"] <= 1.0 for r in out["students"])
    saved = tmp_path / "zoo" / "students" / "cw-B" / "model"
    model = AutoModelForTokenClassification.from_pretrained(saved)
    assert model.config.char_vocab and model.config.embedding_dim == 16
    # the -B student starts from the teacher's sub-word embeddings pooled per word
    from transformers import AutoTokenizer

    words = AutoTokenizer.from_pretrained(saved)
    vectors = teacher_word_vectors(words, tokenizer, teacher)
    word = "EU" if "EU" in words.get_vocab() else sorted(words.get_vocab())[5]
    pieces = tokenizer(word, add_special_tokens=False)["input_ids"]
    want = teacher.get_input_embeddings().weight[pieces].mean(0).detach()
    torch.testing.assert_close(vectors[words.get_vocab()[word]], want)


def test_a_killed_student_resumes_from_its_last_checkpoint(tmp_path, tokenizer, data_dir, capsys, monkeypatch):
    from hf_distill import runs

    teacher_dir = _tiny_teacher(tmp_path, tokenizer)
    args = ZooArguments(
        teacher=str(teacher_dir), data_dir=str(data_dir), output_dir=str(tmp_path / "zoo"),
        students=['l=bilstm:{"embedding_dim": 8, "hidden_size": 8}@1e-2'], max_train_samples=32,
        max_dev_samples=16, max_eval_samples=16, epochs=3, patience=5, bench_runs=1, quantize=False,
        max_f1_drop=100.0, latency_budget_ms=1e4, augment="none")

    class Killed(Exception):
        pass

    def kill_after_first_save(self, args, state, control, **kwargs):
        raise Killed  # the process dies right after the first epoch's checkpoint is written

    monkeypatch.setattr(runs.Progress, "on_save", kill_after_first_save, raising=False)
    with pytest.raises(Killed):
        run_zoo(args)
    folder = tmp_path / "zoo" / "students" / "l"
    first = sorted(p.name for p in folder.glob("checkpoint-*"))
    assert len(first) == 1 and (folder / first[0] / "optimizer.pt").is_file()
    monkeypatch.undo()
    capsys.readouterr()
    out = run_zoo(args)
    assert f"resuming from {first[0]}" in capsys.readouterr().out
    row = out["students"][0]
    assert row["resumed_from"] == first[0] and row["epochs_run"] == 3
    state = json.loads(next(folder.glob("checkpoint-*")).joinpath("trainer_state.json").read_text())
    assert [round(e["epoch"]) for e in state["log_history"] if "eval_f1" in e] == [1, 2, 3]
    # the early-stopping count is part of what resumes: killed with 4 of 5 epochs of patience used and a best no
    # later epoch can beat, the resumed run stops after one more epoch
    shutil.rmtree(folder / "model")
    (folder / "zoo_result.json").unlink()
    for checkpoint in folder.glob("checkpoint-*"):
        shutil.rmtree(checkpoint)
    monkeypatch.setattr(runs.Progress, "on_save", kill_after_first_save, raising=False)
    with pytest.raises(Killed):
        run_zoo(args)
    monkeypatch.undo()
    (checkpoint,) = folder.glob("checkpoint-*")
    state_file = checkpoint / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["best_metric"] = 2.0
    state["stateful_callbacks"]["EarlyStoppingCallback"]["attributes"]["early_stopping_patience_counter"] = 4
    state_file.write_text(json.dumps(state))
    assert run_zoo(args)["students"][0]["epochs_run"] == 2
    # a run with other settings does not resume these checkpoints: it removes them and starts afresh
    other = ZooArguments(**{**args.__dict__, "max_train_samples": 24})
    monkeypatch.setattr(runs.Progress, "on_save", kill_after_first_save, raising=False)
    with pytest.raises(Killed):
        run_zoo(other)
    assert "checkpoints of a run with other settings removed" in capsys.readouterr().out
    (left,) = folder.glob("checkpoint-*")
    assert json.loads((left / "trainer_state.json").read_text())["epoch"] == 1.0


def test_search_records_the_best_trial_and_trains_with_it(tmp_path, tokenizer, data_dir):
    teacher_dir = _tiny_teacher(tmp_path, tokenizer)
    args = ZooArguments(
        teacher=str(teacher_dir), data_dir=str(data_dir), output_dir=str(tmp_path / "zoo"),
        students=['l=bilstm:{"embedding_dim": 8, "hidden_size": 8}@1e-2'], max_train_samples=48,
        max_dev_samples=24, max_eval_samples=24, epochs=3, patience=1, bench_runs=2, quantize=False, search=3)
    row = run_zoo(args)["students"][0]
    searched = row["searched"]
    assert set(searched) == {"objective", "learning_rate", "temperature", "kd_weight"}
    assert 5e-5 <= searched["learning_rate"] <= 1e-2 and row["learning_rate"] == searched["learning_rate"]
    assert searched["temperature"] in (1.0, 2.0, 4.0) and searched["kd_weight"] in ("auto", "0.5", "1.0", "2.0")
    args_used = json.loads((tmp_path / "zoo" / "students" / "l" / "model" / "distillation.json").read_text())
    assert args_used["temperature"] == searched["temperature"]
    # the objective is the trial's best dev score, not its last epoch's
    trials = json.loads((tmp_path / "zoo" / "students" / "l" / "search" / "trials.json").read_text())
    assert len(trials) == 3 and searched["objective"] == max(t["objective"] for t in trials)
    for t in trials:
        assert t["objective"] == max(t["dev_history"]) and 1 <= len(t["dev_history"]) <= 3


def test_extra_test_scores_every_student_on_a_second_test_file(tmp_path, tokenizer, data_dir):
    from hf_distill import load_dataset

    test = load_dataset("conll2003", data_dir=str(data_dir))["test"].select(range(12))
    names = test.features["ner_tags"].feature.names
    extra = tmp_path / "extra.conll"  # column format: token first, tag last, a blank line between sentences
    extra.write_text("\n\n".join("\n".join(f"{w} {names[t]}" for w, t in zip(r["tokens"], r["ner_tags"]))
                                 for r in test) + "\n")
    args = ZooArguments(
        teacher=str(_tiny_teacher(tmp_path, tokenizer)), data_dir=str(data_dir), output_dir=str(tmp_path / "zoo"),
        students=['w=window:{"embedding_dim": 8}@1e-2'], max_train_samples=32, max_dev_samples=16,
        max_eval_samples=16, epochs=1, patience=1, bench_runs=1, quantize=False, extra_test=str(extra))
    row = run_zoo(args)["students"][0]
    assert 0.0 <= row["f1_extra_test"] <= 1.0
    assert "| F1 extra test |" in (tmp_path / "zoo" / "zoo.md").read_text()
    bad = tmp_path / "bad.conll"  # a tag the teacher does not know is named with its file and line
    bad.write_text("EU B-ORG\nrejects B-VERB\n")
    with pytest.raises(ValueError, match=r"bad\.conll:2: label 'B-VERB'"):
        run_zoo(ZooArguments(**{**args.__dict__, "extra_test": str(bad), "output_dir": str(tmp_path / "zoo2")}))


def test_without_a_validation_split_dev_is_carved_from_train_only(monkeypatch):
    from datasets import Dataset, DatasetDict

    import hf_distill.data as data

    rows = DatasetDict(train=Dataset.from_dict({"text": [f"train {i}" for i in range(50)], "label": [0, 1] * 25}),
                       test=Dataset.from_dict({"text": [f"test {i}" for i in range(10)], "label": [0, 1] * 5}))
    monkeypatch.setattr(data, "load_dataset", lambda path, **kwargs: DatasetDict(dict(rows)))
    args = ZooArguments(teacher="t", dataset="mine", dev_fraction=0.2, dev_seed=7)
    first, again = load_splits(args), load_splits(args)
    assert len(first["validation"]) == 10 and len(first["train"]) == 40 and len(first["test"]) == 10
    assert set(first["validation"]["text"]) == set(again["validation"]["text"])  # one dev for every run
    assert not set(first["validation"]["text"]) & set(first["train"]["text"])
    assert all(t.startswith("train") for t in first["validation"]["text"])
    other = load_splits(ZooArguments(teacher="t", dataset="mine", dev_fraction=0.2, dev_seed=8))
    assert set(other["validation"]["text"]) != set(first["validation"]["text"])
    # the record that distillation.json keeps, so that hf-distill cascade calibrates on the same rows
    assert load_splits(args, with_record=True)[1] == {"carved_from": "train", "fraction": 0.2, "seed": 7}
    rows["validation"] = rows["test"]
    assert load_splits(args, with_record=True)[1] is None


@pytest.mark.slow
def test_workers_share_the_students_and_the_report_has_them_all(tmp_path, tokenizer, data_dir):
    teacher_dir = _tiny_teacher(tmp_path, tokenizer)
    specs = [f'{n}=window:{{"embedding_dim": {d}}}@1e-2' for n, d in (("a", 8), ("b", 12), ("c", 16), ("d", 20))]
    args = ZooArguments(teacher=str(teacher_dir), data_dir=str(data_dir), output_dir=str(tmp_path / "zoo"),
                        students=specs, max_train_samples=48, max_dev_samples=24, max_eval_samples=24, epochs=2,
                        patience=1, bench_runs=2, quantize=False, augment="none", workers=2)
    out = run_zoo(args)
    assert sorted(r["name"] for r in out["students"]) == ["a", "b", "c", "d"]
    log = (tmp_path / "zoo" / "worker1.log").read_text()
    assert "results:" in log and "Traceback" not in log  # the helper ran to its end
    assert "other settings" not in log  # it keyed the students as this process did (nothing trained twice)
    assert not list((tmp_path / "zoo" / "students").glob("*.lock"))  # every claim released
    saved = json.loads((tmp_path / "zoo" / "zoo.json").read_text())
    assert sorted(r["name"] for r in saved["students"]) == ["a", "b", "c", "d"] and "--workers 2" in saved["command"]
