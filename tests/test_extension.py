"""Extending the library the one way the design says: a new KD loss is one class plus one registry line, a new
student family is its module plus one ``register_family`` record; every command then accepts them."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import CONLL_LABELS
from torch import nn

from hf_distill import DistillationTrainer, DistillationTrainingArguments, cache_teacher_outputs
from hf_distill.losses import KD_LOSSES, KDLoss, reduce_positions, register_kd_loss
from hf_distill.students import FAMILIES, StudentFamily, build_student, register_family
from hf_distill.students.common import StudentConfig, StudentPreTrainedModel, make_embeddings, tagging_output


class ToyConfig(StudentConfig):
    model_type = "hfd_toy_test"


class ToyForTokenClassification(StudentPreTrainedModel):
    """Embeddings and a linear head: the smallest tagging student."""

    config_class = ToyConfig

    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.embeddings = make_embeddings(config)
        self.classifier = nn.Linear(config.embedding_dim, config.num_labels)
        self.crf = None
        self.post_init_with_embeddings()

    def forward(self, input_ids, attention_mask=None, labels=None, **kwargs):
        x = self.embeddings(input_ids)
        if attention_mask is not None:
            x = x * attention_mask.unsqueeze(-1).to(x.dtype)
        return tagging_output(None, self.classifier(x), labels)


@dataclasses.dataclass
class WithToySetting(DistillationTrainingArguments):
    """DistillationTrainingArguments with one more field: what adding a KD setting to hf_distill/args.py does."""

    toy_setting: float = dataclasses.field(default=0.0, metadata={"help": "a new KD setting"})


def test_a_toy_kd_loss_is_one_class_and_one_registry_line(tmp_path, tokenizer, tokenized):
    from conftest import tiny_bert

    @register_kd_loss("cosine_logits_test")
    class CosineLogits(KDLoss):
        def __call__(self, batch, **hp):
            per = 1 - torch.cosine_similarity(batch.student_logits, batch.teacher_logits, dim=-1)
            return reduce_positions(per, batch.mask, batch.counts.get("kd"))

    try:
        teacher = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=3)
        train = cache_teacher_outputs(teacher, tokenized["train"].select(range(16)), dtype="float32")
        student = build_student("bilstm", tokenizer, labels=CONLL_LABELS, embedding_dim=8, hidden_size=8)
        args = DistillationTrainingArguments(output_dir=str(tmp_path), kd_loss="cosine_logits_test", max_steps=2,
                                             per_device_train_batch_size=8, report_to="none", logging_steps=1,
                                             save_strategy="no", disable_tqdm=True)
        trainer = DistillationTrainer(model=student, args=args, train_dataset=train, processing_class=tokenizer)
        trainer.train()
        logged = [e for e in trainer.state.log_history if "loss" in e]
        assert logged and all(torch.isfinite(torch.tensor(e["loss"])) for e in logged)
        # every command's parser takes the new setting: the field's choices are read from the registry
        from transformers import HfArgumentParser

        (parsed,) = HfArgumentParser(DistillationTrainingArguments).parse_args_into_dataclasses(
            ["--output_dir", str(tmp_path), "--kd_loss", "cosine_logits_test"])
        assert parsed.kd_loss == "cosine_logits_test"
    finally:
        KD_LOSSES.pop("cosine_logits_test", None)


def test_a_toy_student_family_is_one_module_and_one_record(tmp_path, tokenizer, tokenized):
    from transformers import AutoModelForTokenClassification

    from hf_distill.shipping.export import export_onnx
    from hf_distill.zoo import StudentSpec, tagging_only

    register_family(StudentFamily("toy", ToyConfig, {"token": ToyForTokenClassification},
                                  presets={"toy-8": ({"embedding_dim": 8}, 1e-2)}))
    try:
        student = build_student("toy", tokenizer, labels=CONLL_LABELS, embedding_dim=8)
        assert isinstance(student, ToyForTokenClassification)
        spec = StudentSpec.parse("toy-8")  # the zoo reads the record's presets ...
        assert (spec.family, spec.config, spec.learning_rate) == ("toy", {"embedding_dim": 8}, 1e-2)
        assert tagging_only("toy") and not spec.word_level  # ... and its tasks
        student.save_pretrained(tmp_path / "toy")
        again = AutoModelForTokenClassification.from_pretrained(tmp_path / "toy")  # the Auto classes know it
        assert isinstance(again, ToyForTokenClassification)
        rows = [{k: tokenized["test"][i][k] for k in ("input_ids", "attention_mask")} for i in range(3)]
        report = export_onnx(student.eval(), str(tmp_path / "onnx"), examples=rows)  # export reads the record
        assert report["inputs"] == ["input_ids", "attention_mask"] and report["max_abs_diff"] < 1e-4
        assert dataclasses.replace(FAMILIES["toy"], name="toy") == FAMILIES["toy"]
    finally:
        FAMILIES.pop("toy", None)


def test_a_new_training_field_reaches_the_zoo_without_editing_it(tmp_path, tokenizer, data_dir, monkeypatch):
    """KD settings live in DistillationTrainingArguments only: a field added there (a subclass stands for the
    edit) is parsed by ``hf-distill zoo`` and reaches every student's training arguments."""
    from conftest import tiny_bert

    from hf_distill.cli import parse_with_training
    from hf_distill.training import args as args_module
    from hf_distill.zoo import ZooArguments, run_zoo

    monkeypatch.setattr(args_module, "DistillationTrainingArguments", WithToySetting)
    teacher = tmp_path / "teacher"
    tiny_bert(len(tokenizer), layers=1, hidden=16, seed=3, labels=CONLL_LABELS).save_pretrained(teacher)
    tokenizer.save_pretrained(teacher)
    zoo, template = parse_with_training(
        ZooArguments, ["--teacher", str(teacher), "--data_dir", str(data_dir), "--output_dir", str(tmp_path / "zoo"),
                       "--students", 'l=bilstm:{"embedding_dim": 8, "hidden_size": 8}@1e-2', "--augment", "none",
                       "--max_train_samples", "16", "--max_dev_samples", "8", "--max_eval_samples", "8",
                       "--epochs", "1", "--bench_runs", "1", "--quantize", "false",
                       "--toy_setting", "3.5", "--kd_loss", "mse"],
        "hf-distill zoo", per_run={"num_train_epochs": "--epochs"})
    assert isinstance(template, WithToySetting) and template.toy_setting == 3.5 and template.kd_loss == "mse"
    out = run_zoo(zoo, template)
    used = torch.load(tmp_path / "zoo" / "students" / "l" / "model" / "training_args.bin", weights_only=False)
    assert used.toy_setting == 3.5 and used.kd_loss == "mse" and used.num_train_epochs == 1
    assert "--toy_setting 3.5" in out["command"] and "--kd_loss mse" in out["command"]


def test_a_new_training_field_reaches_the_recipes_without_editing_them(tmp_path, monkeypatch):
    """A recipe parses (its settings, a DistillationTrainingArguments template), from its config file and its
    command line, and derives every run's arguments from the template: a new field reaches each run."""
    import json
    from dataclasses import dataclass

    from hf_distill.runs import parse_recipe_args
    from hf_distill.training import args as args_module

    @dataclass
    class Recipe:
        output_dir: str = "out"
        epochs: float = 2.0

    monkeypatch.setattr(args_module, "DistillationTrainingArguments", WithToySetting)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"epochs": 3.0, "toy_setting": 1.5, "temperature": 2.0}))
    settings, template = parse_recipe_args(Recipe, [str(config), "--kd_weight", "auto"], training={"kd_weight": "1.0"})
    assert settings == Recipe(epochs=3.0) and isinstance(template, WithToySetting)
    assert (template.toy_setting, template.temperature, template.kd_weight) == (1.5, 2.0, "auto")
    run = args_module.derive(template, output_dir=str(tmp_path / "run"), num_train_epochs=settings.epochs)
    assert isinstance(run, WithToySetting) and run.toy_setting == 1.5 and run.num_train_epochs == 3.0
    assert args_module.kd_settings(run)["toy_setting"] == 1.5
    config.write_text(json.dumps({"epochs": 3.0, "no_such_setting": 1}))
    with pytest.raises(ValueError, match=r"unknown settings \['no_such_setting'\]"):
        parse_recipe_args(Recipe, [str(config)], training={})


def test_a_new_training_field_reaches_the_demo_without_editing_it(tmp_path, monkeypatch, capsys):
    """``hf-distill demo`` parses (DemoArguments, template): KD settings and a new field reach each run's
    arguments; a field the demo sets per run is refused, naming the demo option that sets it."""
    from hf_distill import demo
    from hf_distill.cli import main
    from hf_distill.training import args as args_module

    monkeypatch.setattr(args_module, "DistillationTrainingArguments", WithToySetting)
    seen = {}

    def fake_run(args, template):
        seen["args"], seen["template"] = args, template
        raise SystemExit(0)  # stop before any training

    monkeypatch.setattr(demo, "run_demo", fake_run)
    with pytest.raises(SystemExit):
        main(["demo", "--output_dir", str(tmp_path), "--student_epochs", "3", "--toy_setting", "2.5",
              "--temperature", "3", "--kd_loss", "mse"])
    args, template = seen["args"], seen["template"]
    assert isinstance(template, WithToySetting) and (template.toy_setting, template.temperature) == (2.5, 3.0)
    assert template.kd_weight == "auto" and template.warmup_ratio == 0.1  # the demo's own template values
    run = demo._training_args(args, template, "student_kd", args.student_epochs, args.student_learning_rate)
    assert (run.toy_setting, run.kd_loss, run.num_train_epochs) == (2.5, "mse", 3.0)
    assert run.output_dir == str(tmp_path / "student_kd")
    words = " ".join(demo.demo_argv(args, template))  # the command recorded in the students' cards
    assert words.endswith("--kd_loss mse --temperature 3.0 --toy_setting 2.5"), words
    assert main(["demo", "--output_dir", str(tmp_path), "--learning_rate", "0.1"]) == 1
    assert "--learning_rate is set per run; use --teacher_learning_rate" in capsys.readouterr().err


def test_commands_take_a_settings_file_like_the_recipes(tmp_path):
    """``hf-distill zoo``/``demo`` parse through the recipes' one path: a JSON file of settings (the command's own
    and the template's) first, options after it override; a field the command sets per run is refused."""
    import json

    from hf_distill.cli import CommandError, parse_with_training
    from hf_distill.zoo import ZooArguments

    config = tmp_path / "zoo.json"
    config.write_text(json.dumps({"teacher": "t", "epochs": 2, "temperature": 3.0, "kd_loss": "mse"}))
    per_run = {"num_train_epochs": "--epochs"}
    zoo, template = parse_with_training(ZooArguments, [str(config), "--seed", "7"], "hf-distill zoo", per_run)
    assert (zoo.teacher, zoo.epochs, zoo.seed) == ("t", 2.0, 7)
    assert (template.temperature, template.kd_loss) == (3.0, "mse")
    with pytest.raises(CommandError, match="hf-distill zoo: --num_train_epochs is set per run; use --epochs"):
        parse_with_training(ZooArguments, ["--teacher", "t", "--num_train_epochs", "3"], "hf-distill zoo", per_run)
