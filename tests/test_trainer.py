"""DistillationTrainer: loss composition, caching, gradient accumulation, masking, errors."""

from __future__ import annotations

import copy
import json

import datasets
import numpy as np
import pytest
import torch
from conftest import CONLL_LABELS, tiny_bert

from hf_distill import (
    DistillationCollator,
    DistillationTrainer,
    DistillationTrainingArguments,
    LabelSetMismatchError,
    StaleTeacherCacheError,
    cache_teacher_outputs,
    tokenize_and_align,
)
from hf_distill.losses import cross_entropy, kl_loss


def _args(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path / "out"), report_to="none", per_device_train_batch_size=8,
                save_strategy="no", disable_tqdm=True, dataloader_pin_memory=False, use_cpu=True, seed=0)
    base.update(kw)
    return DistillationTrainingArguments(**base)


def _batch(dataset, tokenizer, n=8):
    return DistillationCollator(tokenizer)([dataset[i] for i in range(n)])


@pytest.fixture(scope="module")
def teacher(tokenizer):
    return tiny_bert(len(tokenizer), layers=2, hidden=32, seed=1).eval()


def test_cached_and_online_give_the_same_loss(tmp_path, tokenizer, tokenized, teacher):
    train = tokenized["train"].select(range(16))
    student = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=2).train()
    args = _args(tmp_path, kd_loss="kl", temperature=2.0)
    online = DistillationTrainer(model=student, args=args, teacher_model=teacher, processing_class=tokenizer)
    loss_online = online.compute_loss(student, _batch(train, tokenizer))
    for dtype, tol in (("float32", 1e-6), ("float16", 2e-3)):
        cached = cache_teacher_outputs(teacher, train, batch_size=5, dtype=dtype)
        trainer = DistillationTrainer(model=student, args=args, processing_class=tokenizer)
        loss_cached = trainer.compute_loss(student, _batch(cached, tokenizer))
        assert loss_cached.item() == pytest.approx(loss_online.item(), abs=tol), dtype


def test_loss_is_task_plus_weighted_kd(tmp_path, tokenizer, tokenized, teacher):
    train = tokenized["train"].select(range(8))
    student = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=3).train()
    args = _args(tmp_path, kd_loss="kl", temperature=3.0, kd_weight="0.5", task_weight=2.0)
    trainer = DistillationTrainer(model=student, args=args, teacher_model=teacher, processing_class=tokenizer)
    batch = _batch(train, tokenizer)
    loss = trainer.compute_loss(student, batch)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        s, t = student(**inputs).logits, teacher(**inputs).logits
    mask = batch["distill_mask"].bool()
    expected = 2.0 * cross_entropy(s, batch["labels"]) + 0.5 * kl_loss(s, t, mask, temperature=3.0)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert set(trainer._metrics) >= {"task_loss", "kd_kl_loss", "kd_weight"}


def _one_step(tmp_path, tokenizer, train, student, teacher, **kw):
    model = copy.deepcopy(student)
    args = _args(tmp_path, kd_loss="kl", optim="sgd", learning_rate=0.5, lr_scheduler_type="constant",
                 max_steps=1, warmup_steps=0, weight_decay=0.0, **kw)
    DistillationTrainer(model=model, args=args, train_dataset=train, teacher_model=teacher,
                        processing_class=tokenizer).train()
    return model


def test_gradient_accumulation_is_exact(tmp_path, tokenizer, tokenized, teacher):
    # examples 0-2 unlabeled: micro-batches then hold different numbers of labeled and KD positions
    train = tokenized["train"].select(range(8)).map(
        lambda ex, i: {"labels": [-100] * len(ex["labels"])} if i < 3 else {}, with_indices=True)
    student = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=4)
    one = _one_step(tmp_path, tokenizer, train, student, teacher, per_device_train_batch_size=8)
    acc = _one_step(tmp_path, tokenizer, train, student, teacher, per_device_train_batch_size=2,
                    gradient_accumulation_steps=4)
    moved = False
    for (name, a), b, c in zip(one.named_parameters(), acc.parameters(), student.parameters()):
        torch.testing.assert_close(a, b, atol=2e-6, rtol=1e-5, msg=name)
        moved |= not torch.equal(a, c)
    assert moved


def test_unlabeled_examples_contribute_kd_only(tmp_path, tokenizer, tokenized, teacher):
    train = tokenized["train"].select(range(4)).map(lambda ex: {"labels": [-100] * len(ex["labels"])})
    student = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=5).train()
    trainer = DistillationTrainer(model=student, args=_args(tmp_path, kd_loss="mse"), teacher_model=teacher,
                                  processing_class=tokenizer)
    loss = trainer.compute_loss(student, _batch(train, tokenizer, 4))
    assert trainer._metrics["task_loss"][-1] == 0.0
    assert trainer._metrics["kd_mse_loss"][-1] > 0.0
    loss.backward()
    assert student.classifier.weight.grad.abs().sum() > 0


def test_cache_columns_survive_remove_unused_columns(tmp_path, tokenizer, tokenized, teacher):
    cached = cache_teacher_outputs(teacher, tokenized["train"].select(range(8)))
    student = tiny_bert(len(tokenizer), layers=1, hidden=16)
    trainer = DistillationTrainer(model=student, args=_args(tmp_path), train_dataset=cached,
                                  processing_class=tokenizer)
    batch = next(iter(trainer.get_train_dataloader()))
    assert {"teacher_logits", "teacher_input_hash", "teacher_id", "distill_mask"} <= set(batch)
    assert batch["teacher_logits"].shape[:2] == batch["input_ids"].shape


def test_stale_cache_is_refused(tmp_path, tokenizer, tokenized, teacher, conll):
    train = tokenized["train"].select(range(8))
    cached = cache_teacher_outputs(teacher, train)
    student = tiny_bert(len(tokenizer), layers=1, hidden=16).train()
    other_teacher = tiny_bert(len(tokenizer), layers=2, hidden=32, seed=99)
    trainer = DistillationTrainer(model=student, args=_args(tmp_path), teacher_model=other_teacher,
                                  processing_class=tokenizer)
    with pytest.raises(StaleTeacherCacheError, match="another teacher"):
        trainer.compute_loss(student, _batch(cached, tokenizer))
    # same rows re-tokenized with a shorter max_length, cache columns carried over: other inputs
    short = tokenize_and_align(conll["train"].select(range(8)), tokenizer, max_length=8)
    cols = ["teacher_logits", "teacher_id", "teacher_input_hash"]
    moved = datasets.concatenate_datasets([short, cached.select_columns(cols)], axis=1)
    fresh = DistillationTrainer(model=student, args=_args(tmp_path), processing_class=tokenizer)
    with pytest.raises(StaleTeacherCacheError, match="other tokenizer"):
        fresh.compute_loss(student, _batch(moved, tokenizer))
    # other rows of the same length: only the token-id hash can tell
    shuffled = datasets.concatenate_datasets(
        [train.select(range(1, 2)).remove_columns([]), cached.select(range(0, 1)).select_columns(cols)], axis=1)
    if len(train[1]["input_ids"]) >= len(train[0]["input_ids"]):
        with pytest.raises(StaleTeacherCacheError, match="other data"):
            fresh.compute_loss(student, _batch(shuffled, tokenizer, 1))


def test_disk_cache_is_reused_only_when_everything_matches(tmp_path, tokenizer, tokenized, teacher):
    train = tokenized["train"].select(range(6))
    first = cache_teacher_outputs(teacher, train, cache_dir=str(tmp_path / "c"))
    again = cache_teacher_outputs(teacher, train, cache_dir=str(tmp_path / "c"))
    assert len(list((tmp_path / "c").iterdir())) == 1
    assert again["teacher_logits"][0] == first["teacher_logits"][0]
    other = tiny_bert(len(tokenizer), layers=2, hidden=32, seed=7)
    cache_teacher_outputs(other, train, cache_dir=str(tmp_path / "c"))
    cache_teacher_outputs(teacher, tokenized["train"].select(range(7)), cache_dir=str(tmp_path / "c"))
    assert len([p for p in (tmp_path / "c").iterdir() if not p.name.startswith(".")]) == 3
    # the same rows built another way (another dataset fingerprint) reuse the cache ...
    rebuilt = datasets.Dataset.from_dict(train.to_dict(), features=train.features)
    assert rebuilt._fingerprint != train._fingerprint
    cache_teacher_outputs(teacher, rebuilt, cache_dir=str(tmp_path / "c"))
    assert len([p for p in (tmp_path / "c").iterdir() if not p.name.startswith(".")]) == 3
    # ... while other labels on the same inputs do not (the cache stores every column)
    relabeled = train.map(lambda ex: {"labels": [0 if x != -100 else x for x in ex["labels"]]})
    assert cache_teacher_outputs(teacher, relabeled, cache_dir=str(tmp_path / "c"))["labels"] == relabeled["labels"]
    assert len([p for p in (tmp_path / "c").iterdir() if not p.name.startswith(".")]) == 4


def test_top_k_cache_rebuilds_the_label_axis(tmp_path, tokenizer, tokenized, teacher):
    train = tokenized["train"].select(range(8))
    full = cache_teacher_outputs(teacher, train, dtype="float32")
    top = cache_teacher_outputs(teacher, train, dtype="float32", top_k=9)
    student = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=8).train()
    trainer = DistillationTrainer(model=student, args=_args(tmp_path), processing_class=tokenizer)
    a = trainer.compute_loss(student, _batch(full, tokenizer))
    b = trainer.compute_loss(student, _batch(top, tokenizer))
    assert a.item() == pytest.approx(b.item(), rel=1e-5)
    top3 = cache_teacher_outputs(teacher, train, top_k=3)
    assert torch.isfinite(trainer.compute_loss(student, _batch(top3, tokenizer)))


def test_label_sets_must_match(tmp_path, tokenizer, teacher):
    five = tiny_bert(len(tokenizer), layers=1, hidden=16, labels=CONLL_LABELS[:5])
    with pytest.raises(LabelSetMismatchError, match="9 labels"):
        DistillationTrainer(model=five, args=_args(tmp_path), teacher_model=teacher)
    renamed = tiny_bert(len(tokenizer), layers=1, hidden=16, labels=[f"X{i}" for i in range(9)])
    with pytest.raises(LabelSetMismatchError, match="differ"):
        DistillationTrainer(model=renamed, args=_args(tmp_path), teacher_model=teacher)


def test_training_lowers_the_loss_and_leaves_the_teacher_alone(tmp_path, tokenizer, tokenized, teacher):
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = tiny_bert(len(tokenizer), layers=1, hidden=32, seed=9)
    args = _args(tmp_path, kd_loss="kl", num_train_epochs=6, learning_rate=3e-3, logging_steps=5,
                 hidden_matches=["2:1:mse"])
    trainer = DistillationTrainer(model=student, args=args, train_dataset=tokenized["train"],
                                  teacher_model=teacher, processing_class=tokenizer)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss" in h]
    assert logs[-1]["task_loss"] < 0.6 * logs[0]["task_loss"]
    assert logs[-1]["hidden_2_1_mse_loss"] < logs[0]["hidden_2_1_mse_loss"]
    assert not teacher.training
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_cached_hidden_states_give_the_online_loss_and_training(tmp_path, tokenizer, tokenized, teacher):
    train = tokenized["train"].select(range(16))
    student = tiny_bert(len(tokenizer), layers=2, hidden=16, seed=12).train()
    args = _args(tmp_path, kd_loss="kl", hidden_matches=["1:1:cosine", "2:2:mse"], max_steps=2)
    online = DistillationTrainer(model=student, args=args, teacher_model=teacher, processing_class=tokenizer)
    batch = _batch(train, tokenizer)
    want = online.compute_loss(student, batch)
    cached = cache_teacher_outputs(teacher, train, batch_size=5, dtype="float32", hidden_layers=[2, 1])
    assert {"teacher_hidden_1", "teacher_hidden_2"} <= set(cached.column_names)
    assert "teacher_hidden_0" not in cached.column_names
    # one row's stored states are the teacher's own, on its real tokens only
    row = cached[3]
    ids = torch.tensor([row["input_ids"]])
    with torch.no_grad():
        states = teacher(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True).hidden_states
    assert torch.allclose(torch.tensor(row["teacher_hidden_2"]), states[2][0], atol=1e-5)
    trainer = DistillationTrainer(model=student, args=args, teacher_model=teacher, processing_class=tokenizer,
                                  train_dataset=cached)
    trainer.projections.load_state_dict(online.projections.state_dict())
    assert trainer.signal.kind == "cached"
    assert isinstance(trainer.train_dataset[0]["teacher_hidden_1"], np.ndarray)  # read fast, as arrays
    assert isinstance(trainer.train_dataset[0]["input_ids"], list)  # the other columns as they were
    got = trainer.compute_loss(student, _batch(cached, tokenizer))
    assert got.item() == pytest.approx(want.item(), abs=1e-5)
    trainer.train()  # the teacher is never run: a broken forward would raise
    assert trainer.state.global_step == 2
    missing = _args(tmp_path, kd_loss="kl", hidden_matches=["0:1:mse"])
    with pytest.raises(ValueError, match=r"needs teacher layer 0; the cache holds layers \[1, 2\]"):
        DistillationTrainer(model=student, args=missing, teacher_model=teacher, processing_class=tokenizer
                            ).compute_loss(student, _batch(cached, tokenizer))
    logits_only = cache_teacher_outputs(teacher, train)
    with pytest.raises(ValueError, match="hidden_layers"):
        DistillationTrainer(model=student, args=args, teacher_model=teacher, processing_class=tokenizer,
                            train_dataset=logits_only).compute_loss(student, _batch(logits_only, tokenizer))


def test_hidden_layer_caches_refuse_what_they_cannot_hold(tmp_path, tokenizer, tokenized, teacher):
    train = tokenized["train"].select(range(4))
    with pytest.raises(ValueError, match=r"layers \[3\] do not exist \(0 = embeddings, 1..2"):
        cache_teacher_outputs(teacher, train, hidden_layers=[1, 3])
    with pytest.raises(ValueError, match="only the torch backend caches hidden states"):
        cache_teacher_outputs(teacher, train, hidden_layers=[1], backend="onnxruntime")
    # the layers are part of the key: a logits-only cache is not reused for a hidden-state one
    plain = cache_teacher_outputs(teacher, train, cache_dir=str(tmp_path / "c"))
    with_hidden = cache_teacher_outputs(teacher, train, cache_dir=str(tmp_path / "c"), hidden_layers=[1])
    assert "teacher_hidden_1" not in plain.column_names and "teacher_hidden_1" in with_hidden.column_names
    assert len([p for p in (tmp_path / "c").iterdir() if not p.name.startswith(".")]) == 2


def test_cached_hidden_states_of_a_sequence_classifier_are_padded(tmp_path, tokenizer):
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    teacher_cls = BertForSequenceClassification(config).eval()
    rows = datasets.Dataset.from_dict(dict(tokenizer(["a short one", "a somewhat longer text than that", "mid size"]),
                                           labels=[0, 1, 2]))
    cached = cache_teacher_outputs(teacher_cls, rows, hidden_layers=[2], dtype="float32")
    student = BertForSequenceClassification(BertConfig(**{**config.to_dict(), "num_hidden_layers": 1})).train()
    args = _args(tmp_path, kd_loss="kl", hidden_matches=["2:1:cosine"])
    trainer = DistillationTrainer(model=student, args=args, teacher_model=teacher_cls, processing_class=tokenizer,
                                  train_dataset=cached)
    batch = DistillationCollator(tokenizer)([cached[i] for i in range(3)])
    assert batch["teacher_hidden_2"].shape == (3, batch["input_ids"].shape[1], 16)
    online = DistillationTrainer(model=student, args=args, teacher_model=teacher_cls, processing_class=tokenizer)
    online.projections.load_state_dict(trainer.projections.state_dict())
    plain = DistillationCollator(tokenizer)([rows[i] for i in range(3)])
    assert trainer.compute_loss(student, batch).item() == pytest.approx(
        online.compute_loss(student, plain).item(), abs=1e-5)


def test_an_fp32_run_after_a_bf16_one_in_the_same_process_stays_fp32(tmp_path, monkeypatch):
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    student = tiny_bert(50, layers=1, hidden=16)
    bf16 = DistillationTrainer(model=student, args=_args(tmp_path, bf16=True))
    assert bf16.accelerator.mixed_precision == "bf16"
    fp32 = DistillationTrainer(model=student, args=_args(tmp_path))  # transformers left "bf16" in os.environ
    assert fp32.accelerator.mixed_precision == "no"
    if not torch.cuda.is_available():  # bf16 on a CPU-only machine needs no use_cpu=True from the caller
        args = DistillationTrainingArguments(output_dir=str(tmp_path / "cpu"), report_to="none", bf16=True)
        assert args.use_cpu and args.bf16


def test_hidden_match_projection_is_trained(tmp_path, tokenizer, tokenized, teacher):
    student = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=10)
    args = _args(tmp_path, kd_loss="none", hidden_matches=["1:1:cosine"], max_steps=3, learning_rate=1e-2)
    trainer = DistillationTrainer(model=student, args=args, train_dataset=tokenized["train"],
                                  teacher_model=teacher, processing_class=tokenizer)
    proj = trainer.projections["1_1"]
    w0 = proj.weight.detach().clone()
    assert proj.weight.shape == (32, 16)
    trainer.train()
    assert not torch.equal(w0, proj.weight.detach())
    with pytest.raises(ValueError, match="hidden states 0..2 only"):
        DistillationTrainer(model=student, args=_args(tmp_path, hidden_matches=["5:1"]), teacher_model=teacher)


def test_hidden_match_into_a_bilstm_student(tmp_path, tokenizer, tokenized, teacher):
    from hf_distill.students import build_student

    student = build_student("bilstm", tokenizer, labels=CONLL_LABELS, embedding_dim=16, hidden_size=8)
    args = _args(tmp_path, kd_loss="kl", hidden_matches=["2:0:mse"], max_steps=2)
    trainer = DistillationTrainer(model=student, args=args, train_dataset=tokenized["train"], teacher_model=teacher,
                                  processing_class=tokenizer)
    assert trainer.projections["2_0"].weight.shape == (32, 16)  # BiLSTM states are 2 x 8 wide
    trainer.train()
    assert trainer.state.log_history[-1]["train_loss"] > 0
    with pytest.raises(ValueError, match="hidden states 0..0 only"):
        DistillationTrainer(model=student, args=_args(tmp_path, hidden_matches=["2:1"]), teacher_model=teacher)


def test_kd_weight_auto_and_schedules(tmp_path, tokenizer, tokenized, teacher):
    train = tokenized["train"].select(range(8))
    student = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=11).train()
    trainer = DistillationTrainer(model=student, args=_args(tmp_path, kd_weight="auto", kd_loss="mse"),
                                  teacher_model=teacher, processing_class=tokenizer)
    trainer.compute_loss(student, _batch(train, tokenizer))
    task, kd = trainer._metrics["task_loss"][0], trainer._metrics["kd_mse_loss"][0]
    assert trainer._auto_kd_weight * kd == pytest.approx(task, rel=1e-4)

    args = _args(tmp_path, kd_weight="2.0", kd_weight_schedule="linear_decay")
    trainer = DistillationTrainer(model=student, args=args, teacher_model=teacher)
    trainer.state.max_steps, trainer.state.global_step = 10, 5
    assert trainer.kd_weight_now() == pytest.approx(1.0)
    args = _args(tmp_path, kd_weight_schedule="zero_last_epoch", num_train_epochs=3)
    trainer = DistillationTrainer(model=student, args=args, teacher_model=teacher)
    trainer.state.num_train_epochs = 3
    trainer.state.epoch = 1.5
    assert trainer.kd_weight_now() == 1.0
    trainer.state.epoch = 2.2
    assert trainer.kd_weight_now() == 0.0


def test_each_fresh_train_call_resolves_the_auto_kd_weight_again(tmp_path, tokenizer, tokenized, teacher):
    # a hyper-parameter search trains one trainer per trial: a weight resolved under trial 1's temperature
    # must not be reused by trial 2
    train = tokenized["train"].select(range(8))
    student = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=11)

    def trainer_at(temperature):
        args = _args(tmp_path, kd_weight="auto", kd_loss="kl", max_steps=1, learning_rate=0.0, temperature=temperature)
        return DistillationTrainer(model=student, args=args, train_dataset=train, teacher_model=teacher,
                                   processing_class=tokenizer)

    fresh = trainer_at(4.0)
    fresh.train()
    trainer = trainer_at(1.0)
    trainer.train()
    first = trainer._auto_kd_weight
    trainer.args.temperature = 4.0  # what the search does between trials
    trainer.train()
    assert first is not None and first != fresh._auto_kd_weight
    assert trainer._auto_kd_weight == pytest.approx(fresh._auto_kd_weight, rel=1e-6)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="kd_loss"):
        DistillationTrainingArguments(output_dir="x", kd_loss="kld")
    with pytest.raises(ValueError, match="kd_weight"):
        DistillationTrainingArguments(output_dir="x", kd_weight="lots")
    with pytest.raises(ValueError, match="hidden match"):
        DistillationTrainingArguments(output_dir="x", hidden_matches=["a:b"])


def test_fingerprint_ignores_where_the_teacher_was_loaded_from(tmp_path, tokenizer, teacher):
    import shutil

    from transformers import AutoModelForTokenClassification

    from hf_distill.training.signals import teacher_fingerprint

    teacher.save_pretrained(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "copy")
    a = AutoModelForTokenClassification.from_pretrained(tmp_path / "a")
    b = AutoModelForTokenClassification.from_pretrained(tmp_path / "copy")
    assert a.config._name_or_path != b.config._name_or_path
    assert teacher_fingerprint(a) == teacher_fingerprint(b) == teacher_fingerprint(teacher)
    relabeled = copy.deepcopy(a)
    relabeled.config.id2label = {i: n for i, n in enumerate(reversed(CONLL_LABELS))}
    assert teacher_fingerprint(relabeled) != teacher_fingerprint(a)  # the label map is part of what it computes
    changed = copy.deepcopy(a)
    with torch.no_grad():
        changed.classifier.bias[0] += 1e-3
    assert teacher_fingerprint(changed) != teacher_fingerprint(a)


@pytest.mark.parametrize("bad", [dict(temperature=float("nan")), dict(temperature=float("inf")),
                                 dict(kd_weight="nan"), dict(kd_weight="inf"), dict(task_weight=-1.0),
                                 dict(hidden_weight=float("nan")), dict(kbest_k=0)])
def test_non_finite_or_negative_settings_are_refused(tmp_path, bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        _args(tmp_path, **bad)


def test_a_non_finite_loss_term_stops_training_and_names_it(tmp_path, tokenizer, tokenized, teacher):
    train = cache_teacher_outputs(teacher, tokenized["train"].select(range(8)), dtype="float32")
    train = train.map(lambda ex: {"teacher_logits": [[float("nan")] * len(r) for r in ex["teacher_logits"]]})
    student = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=2).train()
    trainer = DistillationTrainer(model=student, args=_args(tmp_path, kd_loss="kl"), processing_class=tokenizer)
    with pytest.raises(StaleTeacherCacheError, match="NaN"):
        trainer.compute_loss(student, _batch(train, tokenizer))
    good = cache_teacher_outputs(teacher, tokenized["train"].select(range(8)), dtype="float32")
    with torch.no_grad():
        student.classifier.bias[0] = float("nan")  # a diverged student
    with pytest.raises(FloatingPointError, match="task_loss is nan"):
        trainer.compute_loss(student, _batch(good, tokenizer))
    with pytest.raises(ValueError, match="top_k"):
        cache_teacher_outputs(teacher, tokenized["train"].select(range(2)), top_k=0)


def test_resume_restores_the_auto_kd_weight_exactly(tmp_path, tokenizer, tokenized, teacher):
    train = cache_teacher_outputs(teacher, tokenized["train"].select(range(32)), dtype="float32")
    student = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=5)

    def run(out, **kw):
        model = copy.deepcopy(student)
        args = _args(tmp_path / out, kd_loss="kl", kd_weight="auto", max_steps=4, save_strategy="steps",
                     save_steps=2, learning_rate=1e-2, lr_scheduler_type="constant", warmup_steps=0,
                     dataloader_num_workers=0)
        trainer = DistillationTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
        trainer.train(**kw)
        return model, trainer

    full, first = run("a")
    assert first._auto_kd_weight is not None and first._auto_kd_weight != 1.0
    checkpoint = tmp_path / "a" / "out" / "checkpoint-2"
    assert json.loads((checkpoint / "hf_distill_state.json").read_text())["auto_kd_weight"] == first._auto_kd_weight
    resumed, second = run("a", resume_from_checkpoint=str(checkpoint))
    assert second._auto_kd_weight == first._auto_kd_weight
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    (checkpoint / "optimizer.pt").unlink()
    with pytest.raises(ValueError, match="optimizer.pt"):
        run("a", resume_from_checkpoint=str(checkpoint))


def test_a_new_kd_loss_is_one_class_and_one_registry_line(tmp_path, tokenizer, tokenized, teacher):
    from hf_distill.losses import KD_LOSSES, KDLoss, register_kd_loss

    @register_kd_loss("abs_logits")
    class AbsLogits(KDLoss):
        hparams = ("temperature",)

        def __call__(self, batch, temperature):
            diff = (batch.student_logits - batch.teacher_logits).abs().sum(-1) / temperature
            return diff[batch.mask].sum() / batch.counts.get("kd", batch.mask.sum())

    try:
        train = tokenized["train"].select(range(8))
        student = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=2).train()
        args = _args(tmp_path, kd_loss="abs_logits", temperature=4.0, task_weight=0.0)
        trainer = DistillationTrainer(model=student, args=args, teacher_model=teacher, processing_class=tokenizer)
        batch = _batch(train, tokenizer)
        loss = trainer.compute_loss(student, dict(batch))
        with torch.no_grad():  # the same term written out by hand
            inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
            s, t = student(**inputs).logits, teacher(**inputs).logits
            mask = batch["distill_mask"].bool()
            expected = ((s - t).abs().sum(-1) / 4.0)[mask].sum() / mask.sum()
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    finally:
        KD_LOSSES.pop("abs_logits")
    with pytest.raises(ValueError, match="kd_loss='abs_logits'"):
        _args(tmp_path, kd_loss="abs_logits")


def test_resume_with_hidden_projections_is_exact_and_saved_students_leave_them_out(tmp_path, tokenizer, tokenized,
                                                                                  teacher):
    train = tokenized["train"].select(range(32))
    student = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=6)

    def run(**kw):
        model = copy.deepcopy(student)
        args = _args(tmp_path, kd_loss="kl", hidden_matches=["1:1:mse"], max_steps=4, save_strategy="steps",
                     save_steps=2, learning_rate=1e-2, lr_scheduler_type="constant", warmup_steps=0,
                     max_grad_norm=0.5)
        trainer = DistillationTrainer(model=model, args=args, train_dataset=train, teacher_model=teacher,
                                      processing_class=tokenizer)
        trainer.train(**kw)
        return model, trainer

    full, trainer = run()
    assert "distill_projections.1_1.weight" in full.state_dict()  # trained, clipped and saved with the student
    checkpoint = tmp_path / "out" / "checkpoint-2"
    resumed, _ = run(resume_from_checkpoint=str(checkpoint))
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    trainer.save_student(str(tmp_path / "student"))
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "student" / "model.safetensors"))
    assert not any(k.startswith("distill_projections") for k in saved)
    assert "distill_projections" in dict(full.named_children())  # still attached for further training
