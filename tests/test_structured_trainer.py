"""Structured KD in DistillationTrainer: CRF students and teachers, online and cached, Viterbi evaluation."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import CONLL_LABELS, tiny_bert

from hf_distill import (
    DistillationCollator,
    DistillationTrainer,
    DistillationTrainingArguments,
    TokenClassificationMetrics,
    cache_teacher_outputs,
)
from hf_distill.losses import KD_LOSSES
from hf_distill.students import BertCRFForTokenClassification, build_student


def _args(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path / "out"), report_to="none", per_device_train_batch_size=8, save_strategy="no",
                disable_tqdm=True, dataloader_pin_memory=False, use_cpu=True, seed=0, logging_steps=5,
                learning_rate=5e-3, lr_scheduler_type="constant")
    base.update(kw)
    return DistillationTrainingArguments(**base)


@pytest.fixture(scope="module")
def crf_teacher(tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("bert")
    tiny_bert(len(tokenizer), layers=2, hidden=32, seed=1).save_pretrained(path)
    teacher = BertCRFForTokenClassification.from_pretrained(path, crf_constraints=True)
    with torch.no_grad():
        teacher.crf.transitions.normal_(0, 1)
    return teacher.eval()


def _student(tokenizer, seed=3):
    torch.manual_seed(seed)
    return build_student("bilstm", tokenizer, labels=CONLL_LABELS, embedding_dim=32, hidden_size=16, use_crf=True)


@pytest.mark.parametrize("kind", [name for name, loss in KD_LOSSES.items() if loss.structured])
def test_structured_kd_online_equals_cached_and_learns(kind, tmp_path, tokenizer, tokenized, crf_teacher):
    train = tokenized["train"].select(range(64))
    student = _student(tokenizer).train()
    batch = DistillationCollator(tokenizer)([train[i] for i in range(8)])
    online = DistillationTrainer(model=student, args=_args(tmp_path, kd_loss=kind), teacher_model=crf_teacher,
                                 processing_class=tokenizer)
    a = online.compute_loss(student, batch)
    cached = cache_teacher_outputs(crf_teacher, train.select(range(8)), dtype="float32")
    assert "teacher_crf" in cached.column_names
    offline = DistillationTrainer(model=student, args=_args(tmp_path, kd_loss=kind), teacher_model=crf_teacher,
                                  processing_class=tokenizer)
    b = offline.compute_loss(student, DistillationCollator(tokenizer)([cached[i] for i in range(8)]))
    assert a.item() == pytest.approx(b.item(), rel=1e-5)
    assert online._metrics[f"kd_{kind}_loss"][-1] > 0

    trainer = DistillationTrainer(model=student, args=_args(tmp_path, kd_loss=kind, max_steps=24, task_weight=0.0),
                                  train_dataset=cache_teacher_outputs(crf_teacher, train), processing_class=tokenizer)
    trainer.train()
    logs = [h[f"kd_{kind}_loss"] for h in trainer.state.log_history if f"kd_{kind}_loss" in h]
    assert sum(logs[-2:]) < sum(logs[:2]), logs


def test_gradient_accumulation_is_exact_for_substructure_kd(tmp_path, tokenizer, tokenized, crf_teacher):
    train = cache_teacher_outputs(crf_teacher, tokenized["train"].select(range(8)), dtype="float32")
    base = _student(tokenizer, seed=5)
    models = []
    for bs, ga in ((8, 1), (2, 4)):
        model = copy.deepcopy(base)
        args = _args(tmp_path, kd_loss="substructure", optim="sgd", learning_rate=0.5, max_steps=1,
                     per_device_train_batch_size=bs, gradient_accumulation_steps=ga)
        DistillationTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer).train()
        models.append(model)
    moved = [n for (n, p), q in zip(models[0].named_parameters(), base.parameters()) if not torch.equal(p, q)]
    assert "crf.transitions" in moved and any(n.startswith("classifier") for n in moved)  # the step changed them
    for (name, p), q in zip(models[0].named_parameters(), models[1].parameters()):
        torch.testing.assert_close(p, q, atol=2e-6, rtol=1e-5, msg=name)


def test_crf_students_are_evaluated_with_viterbi(tmp_path, tokenizer, tokenized):
    student = _student(tokenizer, seed=7)
    trainer = DistillationTrainer(model=student, args=_args(tmp_path, kd_loss="none"), processing_class=tokenizer,
                                  compute_metrics=TokenClassificationMetrics(CONLL_LABELS))
    out = trainer.predict(tokenized["test"].select(range(16)))
    assert out.predictions.ndim == 2  # label ids, not emissions
    batch = DistillationCollator(tokenizer)([tokenized["test"][i] for i in range(2)])
    with torch.no_grad():
        em = student.eval()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    positions = batch["labels"] != -100
    paths = student.crf.viterbi(*_packed(em[:1], positions[:1]))
    width = positions.shape[1]
    assert out.predictions[0][:width][positions[0].numpy()].tolist() == paths[0]
    assert len(paths[0]) == int(positions[0].sum())
    assert 0.0 <= out.metrics["test_f1"] <= 1.0


def _packed(em, positions):
    from hf_distill.students.crf import select_positions

    packed, mask, _ = select_positions(em, positions)
    return packed, mask


def test_structured_kd_needs_crfs(tmp_path, tokenizer, crf_teacher):
    plain = build_student("bilstm", tokenizer, labels=CONLL_LABELS, embedding_dim=16, hidden_size=8)
    with pytest.raises(ValueError, match="needs a student with a CRF head"):
        DistillationTrainer(model=plain, args=_args(tmp_path, kd_loss="kbest"), teacher_model=crf_teacher)


def test_kd_only_until_last_epoch_schedule(tmp_path, tokenizer, crf_teacher):
    trainer = DistillationTrainer(model=_student(tokenizer), teacher_model=crf_teacher,
                                  args=_args(tmp_path, kd_loss="substructure", num_train_epochs=3,
                                             kd_weight_schedule="kd_only_until_last_epoch"))
    trainer.state.num_train_epochs, trainer.state.epoch = 3, 1.2
    assert (trainer.task_weight_now(), trainer.kd_weight_now()) == (0.0, 1.0)
    trainer.state.epoch = 2.1
    assert (trainer.task_weight_now(), trainer.kd_weight_now()) == (1.0, 0.0)


def _two_epoch_schedule(tmp_path, tokenizer, tokenized, crf_teacher, kd_loss):
    """A student, a batch and a trainer under kd_only_until_last_epoch, in its first (KD-only) epoch."""
    student = _student(tokenizer).train()
    batch = DistillationCollator(tokenizer)([tokenized["train"][i] for i in range(8)])
    trainer = DistillationTrainer(model=student, teacher_model=crf_teacher,
                                  args=_args(tmp_path, kd_loss=kd_loss, num_train_epochs=2,
                                             kd_weight_schedule="kd_only_until_last_epoch"))
    trainer.state.num_train_epochs, trainer.state.epoch = 2, 0.5
    return student, batch, trainer


def test_zero_weight_task_term_is_skipped(tmp_path, tokenizer, tokenized, crf_teacher, monkeypatch):
    student, batch, trainer = _two_epoch_schedule(tmp_path, tokenizer, tokenized, crf_teacher, "substructure")
    calls = []
    task_loss = trainer._task_loss
    monkeypatch.setattr(trainer, "_task_loss", lambda *a: calls.append(1) or task_loss(*a))
    kd_only = trainer.compute_loss(student, batch)
    assert calls == [] and "task_loss" not in trainer._metrics
    kd_only.backward()
    assert student.crf.transitions.grad.abs().sum() > 0
    trainer.state.epoch = 1.5
    trainer.compute_loss(student, batch)
    assert calls == [1] and trainer._metrics["task_loss"][-1] > 0


def test_zero_weight_kd_term_skips_the_teacher(tmp_path, tokenizer, tokenized, crf_teacher):
    student, batch, trainer = _two_epoch_schedule(tmp_path, tokenizer, tokenized, crf_teacher, "structural")
    calls = []
    online = trainer.signal.online
    trainer.signal.online = lambda *a: calls.append(1) or online(*a)
    trainer.compute_loss(student, batch)
    assert calls == [1] and trainer._metrics["kd_structural_loss"][-1] > 0
    trainer.state.epoch = 1.5  # the NLL-only epoch: no teacher forward, no KD term
    loss = trainer.compute_loss(student, batch)
    assert calls == [1] and len(trainer._metrics["kd_structural_loss"]) == 1
    assert trainer._metrics["kd_weight"] == [1.0, 0.0]
    assert loss.item() == pytest.approx(trainer._metrics["task_loss"][-1])


def test_crf_learning_rate_gives_the_crf_head_its_own_group(tmp_path, tokenizer, tokenized):
    train = tokenized["train"].select(range(16))
    student = _student(tokenizer)
    before = {n: p.detach().clone() for n, p in student.named_parameters()}
    trainer = DistillationTrainer(model=student, args=_args(tmp_path, kd_loss="none", learning_rate=1e-6,
                                                            crf_learning_rate=1e-1, max_steps=2),
                                  train_dataset=train, processing_class=tokenizer)
    trainer.train()
    crf_ids = {id(p) for p in student.crf.parameters()}
    (group,) = [g for g in trainer.optimizer.param_groups if g.get("crf")]
    assert {id(p) for p in group["params"]} == crf_ids and group["weight_decay"] == 0.0
    assert all(id(p) not in crf_ids for g in trainer.optimizer.param_groups if not g.get("crf") for p in g["params"])
    moved = {n: (p.detach() - before[n]).abs().max().item() for n, p in student.named_parameters()}
    # Adam moves each weight by about its group's learning rate per step
    assert moved["crf.transitions"] > 1e-2 and max(v for n, v in moved.items() if not n.startswith("crf.")) < 1e-4
    with pytest.raises(ValueError, match="crf_learning_rate"):
        _args(tmp_path, crf_learning_rate=0.0)
