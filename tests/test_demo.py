"""The README's main job, end to end on a tiny teacher folder and a slice of the real data; and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import tiny_bert

from hf_distill.cli import main
from hf_distill.demo import DemoArguments, format_table, run_demo


def test_demo_pipeline_end_to_end(tmp_path, tokenizer, data_dir):
    teacher_dir = tmp_path / "teacher"
    tiny_bert(len(tokenizer), layers=3, hidden=32, seed=0).save_pretrained(teacher_dir)
    tokenizer.save_pretrained(teacher_dir)
    args = DemoArguments(data_dir=str(data_dir), teacher=str(teacher_dir), output_dir=str(tmp_path / "out"),
                         max_train_samples=96, max_eval_samples=48, teacher_epochs=1, student_epochs=1,
                         kd_losses=["kl", "mse"], measure_online_epoch=True, batch_size=16,
                         results_file=str(tmp_path / "results.json"))
    r = run_demo(args)
    for name in ("teacher", "student_no_kd", "student_kd_kl", "student_kd_mse"):
        assert 0.0 <= r[name]["f1"] <= 1.0 and r[name]["params"] > 0
        assert len(r[name]["epoch_s"]) == 1
    assert r["student_no_kd"]["params"] < r["teacher"]["params"]
    assert "f1" not in r["student_kd_kl_online"]  # timing run only
    assert json.loads((tmp_path / "results.json").read_text())["train_sentences"] == 96
    assert (tmp_path / "out" / "student_kd_kl" / "model" / "config.json").is_file()
    assert json.loads((tmp_path / "out" / "student_kd_kl" / "model" / "config.json").read_text())[
        "num_hidden_layers"] == 2
    assert any((tmp_path / "out" / "teacher_cache").iterdir())
    table = format_table(r)
    assert table.count("\n") == 5 and "student_kd_mse" in table


def test_cli_usage_and_help():
    assert main(["nope"]) == 2
    out = subprocess.run([sys.executable, "-m", "hf_distill.cli", "demo", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--max_train_samples" in out.stdout
