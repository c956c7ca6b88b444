"""Recipes run end to end on their smoke settings (tiny random teacher, a few real rows)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

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
                       "--augment_copies", "2"])
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
