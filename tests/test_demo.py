"""The README's main job, end to end on a tiny teacher folder and a slice of the real data; and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from conftest import tiny_bert
from transformers import AutoModelForTokenClassification

from hf_distill.cli import load_demo, main
from hf_distill.training.args import fast_bf16_available

_demo = load_demo()  # hf_distill.demo
DemoArguments, format_table, next_steps, run_demo = _demo.DemoArguments, _demo.format_table, _demo.next_steps, \
    _demo.run_demo


def test_demo_pipeline_end_to_end(tmp_path, tokenizer, data_dir, capsys):
    teacher_dir = tmp_path / "teacher"
    tiny_bert(len(tokenizer), layers=3, hidden=32, seed=0).save_pretrained(teacher_dir)
    tokenizer.save_pretrained(teacher_dir)
    args = DemoArguments(data_dir=str(data_dir), teacher=str(teacher_dir), output_dir=str(tmp_path / "out"),
                         max_train_samples=64, transfer_samples=48, max_dev_samples=32, max_eval_samples=32,
                         teacher_epochs=2, student_epochs=2, transfer_epochs=1, patience=1, batch_size=16,
                         measure_online_epoch=True, latency_runs=3, results_file=str(tmp_path / "results.json"),
                         bf16=False)
    assert DemoArguments().bf16 is fast_bf16_available()  # default: bf16 where the hardware runs it natively
    r = run_demo(args)
    for name in ("teacher", "student_no_kd", "student_kd", "student_kd_transfer"):
        assert 0.0 <= r[name]["f1"] <= 1.0 and r[name]["params"] > 0 and r[name]["latency_ms"] > 0
        assert 1 <= r[name]["epochs_run"] and r[name]["best_epoch"] in range(1, r[name]["epochs_run"] + 1)
    assert r["student_no_kd"]["params"] < r["teacher"]["params"]
    # the students' word embeddings stay the teacher's (frozen by default)
    assert r["student_kd"]["trainable_params"] == r["student_kd"]["params"] - len(tokenizer) * 32
    student = AutoModelForTokenClassification.from_pretrained(r["student_kd_transfer"]["model_dir"])
    teacher = AutoModelForTokenClassification.from_pretrained(r["teacher"]["model_dir"])
    assert torch.equal(student.get_input_embeddings().weight, teacher.get_input_embeddings().weight)
    # labeled-only KD at labeled_temperature (default 2), KD + transfer at temperature (default 1)
    assert (r["student_kd"]["temperature"], r["student_kd_transfer"]["temperature"]) == (2.0, 1.0)
    assert r["student_no_kd"]["temperature"] is None
    assert r["student_kd"]["train_rows"] == 64 and r["student_kd_transfer"]["train_rows"] == 64 + 48
    assert r["transfer"]["rows_out"] == 48 and r["transfer"]["filtered"]["max_rows"] > 0
    assert "f1" not in r["student_kd_online"]  # timing run only
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["labeled_sentences"] == 64 and saved["transfer_sentences"] == 48
    config = json.loads((tmp_path / "out" / "student_kd_transfer" / "model" / "config.json").read_text())
    assert config["num_hidden_layers"] == 2
    assert any((tmp_path / "out" / "teacher_cache").iterdir())
    out = capsys.readouterr().out
    assert "loss nan" not in out  # each epoch line shows that epoch's training loss
    assert "[teacher] epoch 1/2" in out and "[student_kd_transfer]" in out and "dev F1" in out
    table = format_table(r)
    assert table.count("\n") == 5 and "student_kd_transfer" in table
    assert "hf-distill bench" in next_steps(r)
    # the printed next steps work as printed: bench (a table per backend), then card (a full record)
    import shlex

    from hf_distill.cli import main

    (line,) = [x for x in next_steps(r).splitlines() if x.startswith("Next: ")]
    words = shlex.split(line.removeprefix("Next: "))
    assert words[:2] == ["hf-distill", "bench"]
    capsys.readouterr()
    assert main(words[1:]) == 0
    printed = capsys.readouterr().out
    assert "| onnx_int8 |" in printed and "speed-up" in printed and "Quantization parameters" not in printed
    assert main(["card", words[2]]) == 0
    card = (Path(words[2]) / "README.md").read_text()
    for missing in ("not recorded", "unrecorded", "not trained by an hf-distill recipe"):
        assert missing not in card, missing
    assert "fine-tuned on conll2003" in card and "hf-distill demo" in card
    assert "{'test_loss'" not in out  # evaluation prints no raw metric dicts
    gain = 100 * (r["student_kd_transfer"]["f1"] - r["student_no_kd"]["f1"])
    assert f"KD + transfer - no KD: {gain:+.2f} F1" in _demo.comparison(r)
    assert _demo.comparison({"teacher": r["teacher"]}) == ""  # no student run: nothing to compare

    # a second run reuses the saved teacher; other teacher settings in the same folder are refused
    args.runs, args.measure_online_epoch = ["no_kd"], False
    again = run_demo(args)
    assert again["teacher"]["f1"] == r["teacher"]["f1"]
    assert "reusing" in capsys.readouterr().out
    # bf16 autocast: a teacher of other settings (trained apart), students trained under autocast
    bf16 = DemoArguments(**{**vars(args), "bf16": True, "output_dir": str(tmp_path / "bf16"), "teacher_epochs": 1})
    r16 = run_demo(bf16)
    assert 0.0 <= r16["student_no_kd"]["f1"] <= 1.0
    saved = json.loads((tmp_path / "bf16" / "teacher" / "model" / "demo_teacher.json").read_text())
    assert saved["settings"]["bf16"] is True and "bf16" not in _demo._teacher_record(args, str(teacher_dir))
    assert r16["student_no_kd"]["bf16"] is True and r["student_no_kd"]["bf16"] is False
    args.teacher_epochs = 3
    try:
        run_demo(args)
    except FileExistsError as e:
        assert "other settings" in str(e)
    else:
        raise AssertionError("a teacher trained with other settings was reused")


def test_cli_usage_and_help():
    assert main(["nope"]) == 2
    out = subprocess.run([sys.executable, "-m", "hf_distill.cli", "demo", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--max_train_samples" in out.stdout and "--transfer_samples" in out.stdout
