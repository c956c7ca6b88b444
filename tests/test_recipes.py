"""Recipes run end to end on their smoke settings (tiny random teacher, a few real rows)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import ROOT


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through the module
    spec.loader.exec_module(module)
    return module


def test_emotion_mlp_recipe_smoke(tmp_path, tokenizer_dir, data_dir):
    recipe = _load(ROOT / "recipes" / "emotion_mlp" / "distill_emotion.py")
    out = recipe.main(["--smoke", "true", "--teacher", str(tokenizer_dir), "--data_dir", str(data_dir),
                       "--output_dir", str(tmp_path), "--max_train_samples", "160", "--max_eval_samples", "40",
                       "--teacher_epochs", "1", "--student_epochs", "2", "--transfer_epochs", "1",
                       "--augment_copies", "2", "--temperature", "2.0"])  # a KD setting: the template's field
    assert (out["config"]["temperature"], out["config"]["kd_weight"]) == (2.0, "auto")
    for key in ("tfidf_lr", "mlp", "teacher", "mlp_kd", "mlp_kd_transfer"):
        assert 0.0 <= out[key]["accuracy"] <= 1.0, key
    assert out["mlp"]["params"] == out["mlp_kd_transfer"]["params"]
    t = out["transfer"]
    assert t["rows_out"] > 160 and t["rows_in"] >= t["rows_out"]
    assert out["mlp_kd_transfer"]["train_rows"] == 160 + t["rows_out"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["mlp_kd"]["accuracy"] == out["mlp_kd"]["accuracy"]
    assert (Path(out["model_dir"]) / "config.json").is_file()
    assert "| MLP + KD + augmented transfer set |" in recipe.table(out)
    # a teacher fine-tuned before is reused as it is: the same test accuracy, no second fine-tuning
    checkpoint = next((tmp_path / "teacher").glob("checkpoint-*"))
    again = recipe.main(["--smoke", "true", "--finetuned_teacher", str(checkpoint), "--data_dir", str(data_dir),
                         "--output_dir", str(tmp_path / "again"), "--max_train_samples", "160",
                         "--max_eval_samples", "40", "--student_epochs", "1", "--transfer_epochs", "1",
                         "--augment_copies", "1"])
    assert again["teacher"]["accuracy"] == out["teacher"]["accuracy"]
    assert again["teacher"]["finetuned_before"] == str(checkpoint.resolve())
    assert not list((tmp_path / "again").glob("teacher/checkpoint-*"))


def test_distill_ner_with_transfer_set_and_early_stopping(tmp_path, tokenizer, data_dir):
    from conftest import tiny_bert

    teacher_dir = tmp_path / "teacher"
    tiny_bert(len(tokenizer), layers=2, hidden=32, seed=0).save_pretrained(teacher_dir)
    tokenizer.save_pretrained(teacher_dir)
    recipe = _load(ROOT / "recipes" / "distill_ner.py")
    record = recipe.main(["--teacher", str(teacher_dir), "--data_dir", str(data_dir), "--student", "char_lstm",
                          "--student_config", '{"embedding_dim": 8, "hidden_size": 8, "char_embedding_dim": 4, '
                          '"char_filters": 4}',
                          "--max_train_samples", "40", "--transfer", "conll2003:train", "--transfer_max_rows", "30",
                          "--patience", "1", "--num_train_epochs", "2", "--per_device_train_batch_size", "16",
                          "--learning_rate", "1e-2", "--output_dir", str(tmp_path / "out"), "--report_to", "none",
                          "--kd_loss", "kl", "--kd_weight", "auto", "--temperature", "1", "--use_cpu", "true"])
    assert record["transfer"]["rows_out"] == 30 and record["transfer"]["filtered"]["overlaps_excluded"] > 0
    assert 0.0 <= record["best_dev_f1"] <= 1.0
    info = json.loads((tmp_path / "out" / "model" / "distillation.json").read_text())
    assert info["labeled_examples"] == 40 and info["transfer_examples"] == 30


def test_distill_ner_hidden_matches_read_cached_teacher_states(tmp_path, tokenizer, data_dir):
    from conftest import tiny_bert

    teacher_dir = tmp_path / "teacher"
    tiny_bert(len(tokenizer), layers=2, hidden=32, seed=0).save_pretrained(teacher_dir)
    tokenizer.save_pretrained(teacher_dir)
    recipe = _load(ROOT / "recipes" / "distill_ner.py")
    argv = ["--teacher", str(teacher_dir), "--data_dir", str(data_dir), "--max_train_samples", "24",
            "--patience", "0", "--num_train_epochs", "1", "--per_device_train_batch_size", "8",
            "--output_dir", str(tmp_path / "out"), "--report_to", "none", "--kd_loss", "kl",
            "--hidden_matches", "2:0:mse", "--use_cpu", "true"]
    record = recipe.main([*argv, "--student", "bilstm", "--student_config", '{"embedding_dim": 8, "hidden_size": 4}'])
    assert 0.0 <= record["metrics"]["f1"] <= 1.0
    (meta,) = (tmp_path / "out" / "teacher_cache").glob("*/hf_distill_cache.json")
    assert json.loads(meta.read_text())["hidden_layers"] == [2]
    with pytest.raises(SystemExit, match="word-level student"):
        recipe.main([*argv, "--student", "char_lstm"])


def test_swedish_ner_recipe_smoke(tmp_path, tokenizer_dir, data_dir):
    recipe = _load(ROOT / "recipes" / "swedish_ner" / "distill_swedish.py")
    out = recipe.main(["--smoke", "true", "--teacher_base", str(tokenizer_dir), "--data_dir", str(data_dir),
                       "--output_dir", str(tmp_path), "--students", "Window", "LSTM-128-B", "--seeds", "1", "2",
                       "--max_train_samples", "40", "--max_dev_samples", "20", "--max_eval_samples", "20",
                       "--teacher_epochs", "1", "--student_epochs", "1", "--patience", "1", "--bench_runs", "2",
                       "--quantize", "false"])
    assert [m["name"] for m in out["models"]] == ["Window", "LSTM-128-B"]
    for m in out["models"]:
        assert m["seeds"] == [1, 2] and 0.0 <= m["f1_kd"] <= 1.0 and 0.0 <= m["f1_no_kd"] <= 1.0
    config = json.loads((tmp_path / "seed1" / "students" / "LSTM-128-B" / "model" / "config.json").read_text())
    assert config["embedding_dim"] == 16  # the -B student carries the (tiny) teacher's sub-word table
    saved = json.loads((tmp_path / "swedish_ner.json").read_text())
    assert saved["models"] == json.loads(json.dumps(out["models"]))
    assert "| LSTM-128-B |" in (tmp_path / "swedish_ner.md").read_text()
    # --partial tabulates what has finished (here: everything) without training anything
    partial = recipe.main(["--smoke", "true", "--teacher_base", str(tokenizer_dir), "--data_dir", str(data_dir),
                           "--output_dir", str(tmp_path), "--students", "Window", "LSTM-128-B", "--seeds", "1", "2",
                           "--partial", "true"])
    assert partial["partial"] and partial["finished"] == {1: ["LSTM-128-B", "LSTM-128-B-no-kd", "Window",
                                                              "Window-no-kd"],
                                                          2: ["LSTM-128-B", "LSTM-128-B-no-kd", "Window",
                                                              "Window-no-kd"]}
    assert [m["f1_kd"] for m in partial["models"]] == [m["f1_kd"] for m in out["models"]]
    assert "**Partial**" in (tmp_path / "swedish_ner.md").read_text()
    # --teacher_only: the teacher alone (to hand to hf-distill zoo), no student trained
    only = recipe.main(["--smoke", "true", "--teacher_base", str(tokenizer_dir), "--data_dir", str(data_dir),
                        "--output_dir", str(tmp_path / "t"), "--max_train_samples", "40", "--max_dev_samples", "20",
                        "--teacher_epochs", "1", "--teacher_only", "true"])
    assert only == {"teacher": str(tmp_path / "t" / "teacher" / "model")}
    assert (tmp_path / "t" / "teacher" / "model" / "config.json").is_file()
    assert not list((tmp_path / "t").glob("seed*"))


def test_indonlu_recipe_smoke(tmp_path, tokenizer_dir, data_dir, capsys):
    recipe = _load(ROOT / "recipes" / "indonlu" / "distill_indonlu.py")
    out = recipe.main(["--smoke", "true", "--teacher_base", str(tokenizer_dir), "--data_dir", str(data_dir),
                       "--output_dir", str(tmp_path), "--tasks", "nergrit", "emot", "--students", "bilstm",
                       "bert-tiny", "--max_train_samples", "24", "--max_dev_samples", "12", "--max_eval_samples",
                       "12", "--teacher_epochs", "1", "--student_epochs", "1", "--patience", "1", "--bench_runs",
                       "2", "--quantize", "false"])
    for task in ("nergrit", "emot"):
        t = out["tasks"][task]
        assert 0.0 <= t["teacher"] <= 1.0
        assert set(t["students"]["bilstm"]) == {"vanilla", "kd_kl", "kd_mse", "kd_ulb", "kd_ulb_emb"}
        assert set(t["students"]["bert-tiny"]) == {"vanilla", "kd_kl", "kd_mse", "kd_ulb"}  # no "-B" BERT
        assert all(0.0 <= v <= 1.0 for s in t["students"].values() for v in s.values())
    assert out["tasks"]["emot"]["metric"] == "macro-F1"
    # classification runs BiLSTM + attention, and the -B student carries the teacher's embedding width
    config = json.loads((tmp_path / "emot" / "ulb_emb" / "seed42" / "students" / "bilstm-att" / "model" /
                         "config.json").read_text())
    assert config["use_attention"] and config["embedding_dim"] == 16
    assert set(out["costs"]["emot"]) == {"bilstm", "bert-tiny", "bilstm-B"}  # -B: its own size and latency
    assert out["costs"]["emot"]["bilstm-B"]["params"] != out["costs"]["emot"]["bilstm"]["params"]
    # the unlabeled set merges the six tasks' training texts; each task's evaluation rows are removed from it
    lines = (tmp_path / "unlabeled_train_texts.txt").read_text().splitlines()
    assert len(lines) > 24 * 4
    assert "| bert-tiny |" in (tmp_path / "indonlu.md").read_text()
    assert out["claims"][0]["cells"] == 2 * (4 + 3)  # KD cells per task: the BiLSTM's 4, BERT-Tiny's 3
    assert "KD cells beat the same student's vanilla score" in (tmp_path / "indonlu.md").read_text()
    # --partial tabulates what is on disk (nothing trained): the same scores
    partial = recipe.main(["--partial", "true", "--smoke", "true", "--output_dir", str(tmp_path), "--tasks",
                           "nergrit", "emot", "--students", "bilstm", "bert-tiny"])
    assert partial["partial"] and partial["tasks"] == out["tasks"]
    assert "**Partial**" in (tmp_path / "indonlu.md").read_text()
    with pytest.raises(ValueError, match="--tasks"):
        recipe.IndoNLUArguments(tasks=["nerx"])
    per_task = recipe.IndoNLUArguments(teacher_epochs=5, teacher_epochs_per_task=["nergrit=20", "terma=7.5"])
    assert [recipe.teacher_epochs(per_task, t) for t in ("nergrit", "terma", "nerp")] == [20.0, 7.5, 5]
    for bad in ("nergrit:20", "nerx=3", "nergrit=many"):
        with pytest.raises(ValueError, match="TASK=EPOCHS"):
            recipe.IndoNLUArguments(teacher_epochs_per_task=[bad])
    # bf16 students are another setting (trained again, named in the tables); a bf16 teacher is another teacher
    small = ["--smoke", "true", "--teacher_base", str(tokenizer_dir), "--data_dir", str(data_dir), "--output_dir",
             str(tmp_path), "--tasks", "nergrit", "--students", "bilstm", "--settings", "kd_mse",
             "--max_train_samples", "24", "--max_dev_samples", "12", "--max_eval_samples", "12", "--teacher_epochs",
             "1", "--student_epochs", "1", "--patience", "1", "--bench_runs", "2", "--quantize", "false"]
    one_task = recipe.main([*small, "--bf16", "true"])
    # a run of one task and setting rewrites the tables without dropping the other tasks or settings
    assert one_task["tasks"]["emot"] == out["tasks"]["emot"]
    assert set(one_task["tasks"]["nergrit"]["students"]["bert-tiny"]) == {"vanilla", "kd_kl", "kd_mse", "kd_ulb"}
    row = json.loads((tmp_path / "nergrit" / "mse" / "seed42" / "students" / "bilstm" / "zoo_result.json").read_text())
    assert row["bf16"] is True
    assert "bfloat16 autocast (the others in float32): bilstm kd_mse." in (tmp_path / "indonlu.md").read_text()
    with pytest.raises(FileExistsError, match="other settings"):
        recipe.main([*small, "--teacher_bf16", "true"])
    # every finished student's record is archived beside the results (a later session may start on a machine
    # without output_dir): with the emot folder gone, the archive alone gives the same table
    assert (tmp_path / "runs" / "emot" / "ulb" / "seed42" / "students" / "bilstm-att" /
            "zoo_result.json").is_file()
    shutil.rmtree(tmp_path / "emot")
    again = recipe.main(["--partial", "true", "--smoke", "true", "--output_dir", str(tmp_path), "--tasks", "emot"])
    assert again["tasks"]["emot"] == out["tasks"]["emot"]
    assert again["costs"]["emot"] == partial["costs"]["emot"]
    assert again["tasks"]["emot"]["teacher_recipe"]["settings"]["teacher_epochs"] == 1.0
    assert "fine-tuned up to 1 epochs (learning rate 5e-05" in (tmp_path / "indonlu.md").read_text()
    # archived records of another teacher than the one on disk are left out, and said so
    shutil.rmtree(tmp_path / "nergrit" / "kl")
    archived = tmp_path / "runs" / "nergrit" / "kl" / "seed42" / "teacher.json"
    archived.write_text(json.dumps({**json.loads(archived.read_text()), "teacher_id": 1}))
    other = recipe.main(["--partial", "true", "--smoke", "true", "--output_dir", str(tmp_path), "--tasks", "nergrit"])
    assert set(other["tasks"]["nergrit"]["students"]["bilstm"]) == {"kd_mse", "kd_ulb", "kd_ulb_emb"}
    assert "nergrit/kl/seed42: recorded with another teacher" in capsys.readouterr().out
    # ... and the students of the teacher on disk are not archived over them (which would credit the old
    # students of a group to the new teacher)
    mse = tmp_path / "runs" / "nergrit" / "mse" / "seed42" / "teacher.json"
    mse.write_text(json.dumps({**json.loads(mse.read_text()), "teacher_id": 1}))
    recipe.main(["--partial", "true", "--smoke", "true", "--output_dir", str(tmp_path), "--tasks", "nergrit"])
    assert json.loads(mse.read_text())["teacher_id"] == 1
    assert "nergrit: not archived" in capsys.readouterr().out


def test_distilbert_recipe_smoke(tmp_path, tokenizer_dir, data_dir):
    recipe = _load(ROOT / "recipes" / "distilbert" / "distill_distilbert.py")
    argv = ["--smoke", "true", "--teacher_base", str(tokenizer_dir), "--data_dir", str(data_dir), "--output_dir",
            str(tmp_path), "--max_train_samples", "32", "--max_eval_samples", "16", "--teacher_epochs", "1",
            "--epochs", "1", "--patience", "1", "--layers", "0"]
    out = recipe.main(argv)
    for name in ("conll2003", "emotion"):
        d = out[name]
        assert {"teacher", "student", "no_cosine", "no_kl", "no_init"} <= set(d)
        assert all(0.0 <= d[k] <= 1.0 for k in ("teacher", "student", "no_cosine", "no_kl", "no_init"))
        assert {r["variant"] for r in d["runs"]} == {"student", "no_cosine", "no_kl", "no_init"}
    assert out["emotion"]["metric"] == "accuracy" and out["conll2003"]["metric"] == "F1"
    assert "| emotion | accuracy |" in (tmp_path / "distilbert.md").read_text()
    # the student starts from the chosen teacher layer; the no_init ablation does not
    import torch
    from transformers import AutoModelForTokenClassification

    from hf_distill.students import student_from_teacher

    teacher = AutoModelForTokenClassification.from_pretrained(tmp_path / "conll2003" / "teacher" / "model")
    copied = recipe.student_for("student", teacher, [0])
    key = "bert.encoder.layer.0.output.dense.weight"
    torch.testing.assert_close(copied.state_dict()[key], student_from_teacher(teacher, [0]).state_dict()[key])
    fresh = recipe.student_for("no_init", teacher, [0])
    assert fresh.config.num_hidden_layers == 1
    assert not torch.equal(fresh.state_dict()[key], teacher.state_dict()[key])
    again = recipe.main(argv)  # finished runs are skipped, their results kept
    assert again["conll2003"]["student"] == out["conll2003"]["student"]
    # another seed of one variant: the tables hold every finished run (both seeds, the other variants too)
    more = recipe.main([*argv, "--datasets", "emotion", "--variants", "student", "--seeds", "7"])
    e = more["emotion"]
    assert e["seeds"]["student"] == [7, 42] and e["seeds"]["no_kl"] == [42]
    seven = next(r["score"] for r in e["runs"] if r["variant"] == "student" and r["seed"] == 7)
    assert e["student"] == pytest.approx((seven + out["emotion"]["student"]) / 2)
    assert "(2)" in (tmp_path / "distilbert.md").read_text()
    assert recipe.paired_differences(e["runs"])["no_kl"] == [(42, out["emotion"]["no_kl"] - out["emotion"]["student"])]
    partial = recipe.main([*argv, "--partial", "true", "--datasets", "emotion"])  # tabulates, trains nothing
    assert partial["emotion"]["seeds"] == e["seeds"] and "--partial" not in partial["command"]
    # bf16 is another setting: the variant runs again, under autocast, and its key says so
    bf16 = recipe.main([*argv, "--bf16", "true", "--datasets", "emotion", "--variants", "student"])
    run = next(r for r in bf16["emotion"]["runs"] if r["variant"] == "student")
    assert '"bf16": true' in run["key"] and 0.0 <= bf16["emotion"]["student"] <= 1.0


def test_recorded_commands_drop_an_option_with_its_value_only():
    from hf_distill.runs import without_option

    argv = ["--partial", "true", "--quantize", "true", "--seeds", "42"]
    assert without_option(argv, "--partial") == ["--quantize", "true", "--seeds", "42"]
    assert without_option(argv, "--absent") == argv


def test_recipe_settings_come_from_a_config_file_or_options(tmp_path):
    from hf_distill.runs import parse_recipe_args

    recipe = _load(ROOT / "recipes" / "indonlu" / "distill_indonlu.py")
    shipped = parse_recipe_args(recipe.IndoNLUArguments, [str(ROOT / "recipes" / "indonlu" / "config.json")])
    assert shipped.tasks == list(recipe.TASKS) and shipped.ulb_kd_loss == "mse"
    (tmp_path / "c.json").write_text(json.dumps({"tasks": ["nerp", "smsa"], "seeds": [1, 2]}))
    for argv in ([str(tmp_path / "c.json")], ["--config", str(tmp_path / "c.json")],
                 ["--tasks", "nerp", "smsa", "--seeds", "1", "2"]):
        a = parse_recipe_args(recipe.IndoNLUArguments, argv)
        assert (a.tasks, a.seeds) == (["nerp", "smsa"], [1, 2])
    # options after the file override its values; the others keep the file's
    a = parse_recipe_args(recipe.IndoNLUArguments, [str(tmp_path / "c.json"), "--seeds", "43", "--smoke", "true"])
    assert (a.tasks, a.seeds, a.smoke) == (["nerp", "smsa"], [43], True)
    (tmp_path / "c.yaml").write_text("tasks: [emot]\npatience: 5\n")
    a = parse_recipe_args(recipe.IndoNLUArguments, ["--config", str(tmp_path / "c.yaml"), "--patience", "1"])
    assert (a.tasks, a.patience) == (["emot"], 1)
    (tmp_path / "bad.json").write_text(json.dumps({"taks": ["nerp"]}))
    with pytest.raises(ValueError, match=r"bad.json: unknown settings \['taks'\]"):
        parse_recipe_args(recipe.IndoNLUArguments, [str(tmp_path / "bad.json")])
    with pytest.raises(ValueError, match="--tasks"):  # the dataclass still checks values from a file
        (tmp_path / "c2.json").write_text(json.dumps({"tasks": ["nerx"]}))
        parse_recipe_args(recipe.IndoNLUArguments, [str(tmp_path / "c2.json")])


def test_efficient_kd_recipe_smoke_times_phases_through_a_callback(tmp_path, tokenizer_dir, data_dir):
    recipe = _load(ROOT / "recipes" / "efficient_kd" / "distill_efficient_kd.py")
    argv = ["--smoke", "true", "--teacher_base", str(tokenizer_dir), "--data_dir", str(data_dir), "--output_dir",
            str(tmp_path), "--crf_teacher", str(tmp_path / "crf_teacher"), "--max_train_samples", "24",
            "--max_eval_samples", "12", "--teacher_epochs", "1", "--student_epochs", "2", "--student_layers", "0",
            "1", "--seeds", "1", "2"]
    out = recipe.main(argv)
    assert out["seeds"] == [1, 2] and set(out["methods"]) == set(recipe.METHODS)
    for seed in (1, 2):
        run = json.loads((tmp_path / "runs" / f"efficient_kd_seed{seed}.json").read_text())
        for method, r in run["methods"].items():
            assert 0.0 <= r["f1"] <= 1.0 and len(r["epoch_s_all"]) == 2
            assert r["student_forward_s"] > 0 and r["student_backward_s"] > 0
            assert r["student_forward_s"] + r["teacher_forward_s"] + r["student_backward_s"] <= r["epoch_s"] + 1e-6
            online = method in ("kbest", "structural", "posterior", "substructure")
            assert (r["teacher_forward_s"] > 0) == online or method.endswith("_cached"), method
    assert "| substructure_cached |" in (tmp_path / "efficient_kd.md").read_text()
    assert out["teacher_minus_vanilla"] == pytest.approx(out["teacher"]["f1"] - out["methods"]["vanilla"]["f1"])
    assert "Teacher minus the student without KD" in (tmp_path / "efficient_kd.md").read_text()
    again = recipe.main(argv)  # every method of every seed finished before: nothing is retrained
    assert again["methods"]["vanilla"]["f1_per_seed"] == out["methods"]["vanilla"]["f1_per_seed"]


def _one_epoch_efficient_kd(tmp_path, tokenizer_dir, data_dir, *methods: str) -> list[str]:
    """Options of a one-seed, one-epoch smoke run of the efficient-KD recipe over ``methods``."""
    return ["--smoke", "true", "--teacher_base", str(tokenizer_dir), "--data_dir", str(data_dir), "--output_dir",
            str(tmp_path), "--crf_teacher", str(tmp_path / "crf_teacher"), "--max_train_samples", "16",
            "--max_eval_samples", "8", "--teacher_epochs", "1", "--student_epochs", "1", "--student_layers", "0",
            "--seeds", "1", "--methods", *methods]


def test_efficient_kd_recipe_can_freeze_the_word_embeddings(tmp_path, tokenizer_dir, data_dir):
    recipe = _load(ROOT / "recipes" / "efficient_kd" / "distill_efficient_kd.py")
    recipe.main([*_one_epoch_efficient_kd(tmp_path, tokenizer_dir, data_dir, "vanilla", "substructure_cached"),
                 "--freeze_embeddings", "true"])
    record = json.loads((tmp_path / "crf_teacher" / recipe.TEACHER_RECORD).read_text())
    teacher = recipe.BertCRFForTokenClassification.from_pretrained(tmp_path / "crf_teacher")
    table = teacher.get_input_embeddings().weight.numel()
    assert record["freeze_embeddings"] is True
    assert record["trainable_params"] == sum(p.numel() for p in teacher.parameters()) - table
    run = json.loads((tmp_path / "runs" / "efficient_kd_seed1.json").read_text())
    assert run["teacher"]["freeze_embeddings"] is True
    student = recipe.student_from_teacher(teacher, [0])
    for r in run["methods"].values():
        assert r["trainable_params"] == sum(p.numel() for p in student.parameters()) - table


def test_efficient_kd_recipe_records_bf16_and_the_crf_learning_rate(tmp_path, tokenizer_dir, data_dir):
    recipe = _load(ROOT / "recipes" / "efficient_kd" / "distill_efficient_kd.py")
    argv = _one_epoch_efficient_kd(tmp_path, tokenizer_dir, data_dir, "vanilla", "structural")
    recipe.main([*argv, "--bf16", "true", "--crf_learning_rate", "0.01"])
    record = json.loads((tmp_path / "crf_teacher" / recipe.TEACHER_RECORD).read_text())
    assert record["bf16"] is True and record["crf_learning_rate"] == 0.01
    run = json.loads((tmp_path / "runs" / "efficient_kd_seed1.json").read_text())
    assert run["teacher"]["bf16"] is True and run["settings"]["bf16"] is True
    assert run["teacher"]["crf_learning_rate"] == 0.01
    assert all(0.0 <= r["f1"] <= 1.0 for r in run["methods"].values())
    # a seed run by another invocation (fewer methods) joins the table, its missing methods named per row
    recipe.main([*argv, "--bf16", "true", "--crf_learning_rate", "0.01", "--seeds", "2", "--methods", "vanilla"])
    both = recipe.aggregate(["efficient_kd_seed1", "efficient_kd_seed2"], "both", [], str(tmp_path))
    assert both["seeds"] == [1, 2] and list(both["methods"]) == ["vanilla", "structural"]
    assert both["methods"]["vanilla"]["seeds"] == [1, 2] and both["methods"]["structural"]["seeds"] == [1]
    assert "| structural |" in (tmp_path / "both.md").read_text() and "(seed 1)" in (tmp_path / "both.md").read_text()
    assert all("structural" not in t["target"] for t in both["targets_on_means"])  # only methods of every seed
    # a later invocation of other methods adds to a seed's file and keeps what it held
    recipe.main([*argv, "--bf16", "true", "--crf_learning_rate", "0.01", "--methods", "substructure_cached"])
    run = json.loads((tmp_path / "runs" / "efficient_kd_seed1.json").read_text())
    assert set(run["methods"]) == {"vanilla", "structural", "substructure_cached"}
    # --partial trains nothing and tabulates the seeds found on disk
    again = recipe.main([*argv, "--bf16", "true", "--crf_learning_rate", "0.01", "--seeds", "1", "2", "3",
                         "--partial", "true"])
    assert again["seeds"] == [1, 2] and again["methods"]["vanilla"]["f1_per_seed"] == both["methods"]["vanilla"][
        "f1_per_seed"]
    with pytest.raises(FileNotFoundError, match="efficient_kd_seed9.json"):  # nothing to tabulate: said so
        recipe.main([*argv, "--seeds", "9", "--partial", "true"])
    other = json.loads((tmp_path / "runs" / "efficient_kd_seed2.json").read_text())
    other["settings"]["student_lr"] = 1.0
    (tmp_path / "runs" / "efficient_kd_seed2.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="its settings or teacher differ"):
        recipe.aggregate(["efficient_kd_seed1", "efficient_kd_seed2"], "both", [], str(tmp_path))
    with pytest.raises(ValueError, match="holds a teacher trained with"):  # other settings refuse that teacher
        recipe.main(argv)


def test_constant_prediction_score_is_the_floor_of_each_task_kind():
    from hf_distill.runs import TaskSpec, constant_prediction_score

    def rows(labels):
        return {"labels": labels}

    ner = TaskSpec("token", "ner_tags", ["O", "B-PER", "I-PER"])
    assert constant_prediction_score(ner, rows([[0, 0, 1, -100]]), rows([[-100, 1, 2, 0]])) == 0.0
    # every tag is B-X (POS): the constant tag is right on 2 of 3 tokens, and each token is its own chunk
    pos = TaskSpec("token", "pos_tags", ["B-NN", "B-VB"])
    assert constant_prediction_score(pos, rows([[0, 0, 1]]), rows([[0, 1, 0]])) == pytest.approx(2 / 3)
    # classification: class 0 everywhere scores F1 2 * (1/4 * 1) / (1/4 + 1) = 0.4 on class 0, 0 on 1 and 2
    cls = TaskSpec("sequence", "label", ["a", "b", "c"])
    assert constant_prediction_score(cls, rows([0, 0, 1]), rows([0, 1, 1, 2])) == pytest.approx(0.4 / 3)


def test_fine_tune_teacher_refuses_a_teacher_no_better_than_a_constant(tmp_path, tokenizer_dir, data_dir):
    # e5-small fine-tuned 5 epochs (265 steps) on NERGrit predicted O everywhere: dev F1 0, distilled from anyway
    from hf_distill import load_dataset
    from hf_distill.runs import TaskSpec, TeacherDidNotLearnError, fine_tune_teacher

    raw = load_dataset("conll2003", data_dir=str(data_dir))
    dev = raw["validation"].select(range(8))
    dev = dev.map(lambda r: {"ner_tags": [0] * len(r["ner_tags"])}, features=dev.features)  # no entity to find
    raw = {"train": raw["train"].select(range(8)), "validation": dev}
    # one step per epoch; epochs at the floor do not use up the patience of 1, so all 3 epochs run
    with pytest.raises(TeacherDidNotLearnError, match=r"dev f1 0\.0 after 3 steps .*most frequent label"):
        fine_tune_teacher(str(tokenizer_dir), raw, TaskSpec.of(raw["train"]), str(tmp_path / "t"), epochs=3,
                          learning_rate=1e-3, patience=1, settings={}, smoke=True, require_progress=True)
    assert not (tmp_path / "t" / "model").exists()


def test_early_stopping_patience_starts_above_the_floor():
    from types import SimpleNamespace

    from transformers import TrainerControl

    from hf_distill.runs import EarlyStoppingAboveFloor

    def stops_after(scores, floor=0.0, patience=2, greater_is_better=True):
        callback = EarlyStoppingAboveFloor(patience, floor)
        args = SimpleNamespace(metric_for_best_model="f1", greater_is_better=greater_is_better)
        state = SimpleNamespace(best_metric=None)
        better = max if greater_is_better else min
        for epoch, score in enumerate(scores, 1):
            control = TrainerControl()
            callback.on_evaluate(args, state, control, metrics={"eval_f1": score})
            if control.should_training_stop:
                return epoch
            state.best_metric = score if state.best_metric is None else better(state.best_metric, score)
        return None

    assert stops_after([0, 0, 0, 0, 0]) is None  # a slow start: never counted
    assert stops_after([0, 0, 0, 0.3, 0.2, 0.25]) == 6  # counted from the first epoch above the floor
    assert stops_after([0.3, 0.2, 0.25]) == 3  # as transformers' EarlyStoppingCallback above the floor
    assert stops_after([0.5, 0.5, 0.6, 0.55, 0.5], floor=0.5) == 5  # back at the floor after a gain counts
    assert stops_after([2.0, 2.0, 1.0, 1.5, 1.2], floor=2.0, greater_is_better=False) == 5  # a loss
    # a checkpoint stores the callback so that Trainer can rebuild it on resume (type(callback)(**args))
    saved = EarlyStoppingAboveFloor(3, 0.25)
    saved.early_stopping_patience_counter = 2
    rebuilt = EarlyStoppingAboveFloor(**saved.state()["args"])
    assert (rebuilt.early_stopping_patience, rebuilt.floor) == (3, 0.25)
    assert saved.state()["attributes"] == {"early_stopping_patience_counter": 2}


def test_fine_tune_teacher_refuses_a_run_folder_of_other_settings(tmp_path, tokenizer_dir, data_dir):
    from hf_distill import load_dataset
    from hf_distill.runs import TaskSpec, fine_tune_teacher

    raw = load_dataset("conll2003", data_dir=str(data_dir))
    raw = {k: raw[k].select(range(8)) for k in ("train", "validation")}
    (tmp_path / "t" / "run").mkdir(parents=True)
    (tmp_path / "t" / "run" / "teacher_settings.json").write_text(json.dumps({"lr": 1.0}))
    with pytest.raises(FileExistsError, match="other settings"):
        fine_tune_teacher(str(tokenizer_dir), raw, TaskSpec.of(raw["train"]), str(tmp_path / "t"), epochs=1,
                          learning_rate=1e-3, patience=1, settings={"lr": 2.0}, smoke=True)
    model_dir = fine_tune_teacher(str(tokenizer_dir), raw, TaskSpec.of(raw["train"]), str(tmp_path / "u"),
                                  epochs=1, learning_rate=1e-3, patience=1, settings={"lr": 2.0}, smoke=True)
    assert (tmp_path / "u" / "run" / "teacher_settings.json").is_file()
    assert list((tmp_path / "u" / "run").glob("checkpoint-*/optimizer.pt"))  # resumable if killed
    assert fine_tune_teacher(str(tokenizer_dir), raw, TaskSpec.of(raw["train"]), str(tmp_path / "u"), epochs=1,
                             learning_rate=1e-3, patience=1, settings={"lr": 2.0}, smoke=True) == model_dir


def test_indonlu_claims_are_counted_from_the_table():
    recipe = _load(ROOT / "recipes" / "indonlu" / "distill_indonlu.py")
    tasks = {"nerp": {"teacher": 0.80, "teacher_latency_ms": 20.0, "students": {
                 "cnn": {"vanilla": 0.70, "kd_kl": 0.72, "kd_mse": 0.71, "kd_ulb": 0.75, "kd_ulb_emb": 0.77},
                 "bert-tiny": {"vanilla": 0.60, "kd_kl": 0.59}}},
             "smsa": {"teacher": 0.90, "teacher_latency_ms": 30.0, "students": {
                 "bilstm": {"vanilla": 0.80, "kd_kl": 0.82, "kd_mse": 0.84, "kd_ulb": 0.83}}}}
    costs = {"nerp": {"cnn": {"latency_ms_onnx": 0.5}, "cnn-B": {"latency_ms_onnx": 1.0}},
             "smsa": {"bilstm": {"latency_ms_onnx": 3.0}}}
    gains, mse, ulb, near = recipe.check_claims(tasks, costs, "mse")
    # KD cells: cnn 4 (all ahead), bert-tiny kd_kl (behind), bilstm 3 (ahead)
    assert (gains["cells"], gains["ahead"], gains["holds"]) == (8, 7, False)
    assert gains["exceptions"] == [["nerp", "bert-tiny", "kd_kl", pytest.approx(-0.01)]]
    assert "not: nerp bert-tiny kd_kl -1.00" in gains["text"]
    # MSE - KL: cnn -0.01, bilstm +0.02 -> mean +0.005, 1 of 2 ahead
    assert (mse["pairs"], mse["ahead"], mse["holds"]) == (2, 1, True)
    assert mse["mean"] == pytest.approx(0.005)
    # unlabeled over KD with MSE: cnn +0.04 (tagging), bilstm -0.01 (classification)
    assert ulb["mean"] == pytest.approx(0.015) and ulb["holds"]
    assert ulb["by_kind"] == {"sequence labelling": pytest.approx(0.04), "classification": pytest.approx(-0.01)}
    # best BiLSTM/CNN: nerp cnn-B (0.03 under, its own ONNX latency), smsa bilstm kd_mse (0.06 under)
    assert [(b["task"], b["setting"]) for b in near["best"]] == [("nerp", "kd_ulb_emb"), ("smsa", "kd_mse")]
    assert near["best"][0]["speedup"] == pytest.approx(20.0) and near["best"][1]["gap"] == pytest.approx(0.06)
    assert near["holds"] is False and "on 1 of 2 tasks" in near["text"]
    # nothing to compare yet: said so, not counted as held
    empty = recipe.check_claims({"emot": {"teacher": 0.7, "teacher_latency_ms": 9.0,
                                          "students": {"bert-tiny": {"vanilla": 0.6}}}}, {})
    assert [c["holds"] for c in empty] == [None, None, None, None]


def test_progress_prints_the_epochs_mean_training_loss():
    """Trainer logs the mean loss of the steps since its last log; the epoch line weighs those by their steps
    (the last window alone, 10 steps at 3.0 here, once read as a rising loss)."""
    import io
    from types import SimpleNamespace

    from hf_distill.runs import Progress

    out = io.StringIO()
    progress = Progress("student", stream=out)
    args = SimpleNamespace(metric_for_best_model="f1", num_train_epochs=2)
    state = SimpleNamespace(global_step=0, epoch=0, log_history=[], max_steps=120)
    progress.on_train_begin(args, state, None)
    progress.on_epoch_begin(args, state, None)
    for step, loss in ((50, 1.0), (60, 3.0)):
        state.global_step = step
        progress.on_log(args, state, None, logs={"loss": loss})
    progress.on_log(args, state, None, logs={"eval_loss": 9.0})  # evaluation logs are not training loss
    state.epoch = 1
    progress.on_evaluate(args, state, None, metrics={"eval_f1": 0.5})
    assert "epoch 1/2  loss 1.3333  dev F1 50.00" in out.getvalue()
    progress.on_epoch_begin(args, state, None)  # the next epoch starts its own mean
    state.global_step = 110
    progress.on_log(args, state, None, logs={"loss": 0.5})
    state.epoch = 2
    progress.on_evaluate(args, state, None, metrics={"eval_f1": 0.6})
    assert "epoch 2/2  loss 0.5000  dev F1 60.00  (best 60.00)" in out.getvalue()
