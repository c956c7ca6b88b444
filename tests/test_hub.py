"""Ship a distilled student: bench, card, push to a local Hub-protocol server, load it back elsewhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import datasets
import numpy as np
import pytest
import torch
from conftest import CONLL_LABELS, HUB_TOKEN, tiny_bert

from hf_distill import DistillationTrainer, DistillationTrainingArguments
from hf_distill.cli import main as cli
from hf_distill.shipping.bench import bench_student
from hf_distill.shipping.cards import CardError, render_card
from hf_distill.shipping.crf_decode import viterbi
from hf_distill.shipping.hub import PushError, push_student_to_hub, push_trainer_to_hub
from hf_distill.students import build_student

TOKEN = HUB_TOKEN
SENTENCES = [["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
             ["Peter", "Blackburn"], ["BRUSSELS", "1996-08-22"]]


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory, tokenizer, tokenized, conll):
    """A CRF BiLSTM distilled (a few steps) from a tiny BERT teacher, saved, benchmarked on real test rows."""
    root = tmp_path_factory.mktemp("ship")
    teacher = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=2)
    teacher.save_pretrained(root / "teacher")
    tokenizer.save_pretrained(root / "teacher")
    torch.manual_seed(0)
    student = build_student("bilstm", tokenizer, labels=CONLL_LABELS, embedding_dim=16, hidden_size=8, use_crf=True)
    args = DistillationTrainingArguments(output_dir=str(root / "run"), max_steps=4, per_device_train_batch_size=8,
                                         kd_loss="kl", report_to="none", save_strategy="no", disable_tqdm=True,
                                         use_cpu=True, dataloader_pin_memory=False, learning_rate=1e-2)
    trainer = DistillationTrainer(model=student, args=args, teacher_model=teacher, processing_class=tokenizer,
                                  train_dataset=tokenized["train"].select(range(32)))
    trainer.train()
    trainer.save_student(str(root / "student"), teacher=str(root / "teacher"), dataset="conll2003",
                         command="pytest tests/test_hub.py")
    bench_student(str(root / "student"), conll["test"].select(range(30)), runs=3, teacher_epochs=1)
    return root / "student"


def test_saved_student_records_how_it_was_distilled(student_dir):
    info = json.loads((student_dir / "distillation.json").read_text())
    assert info["kd_loss"] == "kl" and info["teacher_signal"] == "online" and info["global_step"] == 4
    assert info["teacher_fingerprint"] is not None and info["train_examples"] == 32
    eff = json.loads((student_dir / "efficiency.json").read_text())
    assert eff["examples"] == 30 and eff["onnx_max_abs_diff"] <= 1e-4
    s = eff["student"]
    # the ONNX model is the PyTorch model: same decoded tags, so the same scores
    assert s["onnx"]["f1"] == s["pytorch"]["f1"] and s["onnx"]["accuracy"] == s["pytorch"]["accuracy"]
    assert {"onnx_int8", "onnx_int8_mb", "flops"} <= set(s) and s["onnx_int8_mb"] < s["onnx_mb"]
    assert eff["teacher"]["flops"] > s["flops"] > 0
    assert eff["break_even"]["inferences"] > 0


def test_card_reports_the_measured_numbers(student_dir):
    card = render_card(student_dir, "org/tiny-student", base_model="org/tiny-teacher")
    eff = json.loads((student_dir / "efficiency.json").read_text())
    data = card.data.to_dict()
    assert data["base_model"] == "org/tiny-teacher" and "knowledge-distillation" in data["tags"]
    assert data["library_name"] == "transformers" and data["datasets"] == ["conll2003"]
    metrics = {m["type"]: m["value"] for m in data["model-index"][0]["results"][0]["metrics"]}
    assert metrics["f1"] == round(eff["student"]["pytorch"]["f1"], 4)
    text = str(card)
    assert f"{eff['student']['pytorch']['latency_ms']:.2f}" in text
    assert f"{eff['teacher']['pytorch']['latency_ms']:.2f}" in text
    assert "pytest tests/test_hub.py" in text and "trust_remote_code=True" in text
    assert "| kd_loss | kl |" in text


def test_card_refuses_without_measurements(tmp_path, tokenizer):
    build_student("window", tokenizer, labels=CONLL_LABELS).save_pretrained(tmp_path)
    with pytest.raises(CardError, match="hf-distill bench"):
        render_card(tmp_path)


def test_push_and_load_back_in_a_fresh_process(student_dir, tmp_path, tokenizer, hub):
    info = push_student_to_hub(student_dir, "org/student", token=TOKEN, endpoint=hub.endpoint,
                               base_model="org/tiny-teacher")
    commits = hub.repos["org/student"].commits
    assert len(commits) == 2 and info.oid == commits[-1][0]  # creation + one commit with everything
    files = commits[-1][1]
    assert {"config.json", "model.safetensors", "bilstm.py", "common.py", "crf.py", "tokenizer.json",
            "README.md", "onnx/model.onnx", "onnx/model_quantized.onnx", "onnx/crf.json"} <= set(files)
    assert not any(TOKEN.encode() in data for data in files.values())

    ids = [tokenizer(s, is_split_into_words=True) for s in SENTENCES]
    script = textwrap.dedent(f"""
        import importlib.util, json, os, sys
        sys.path = [p for p in sys.path if p and not os.path.isdir(os.path.join(p, "hf_distill"))]
        sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
        assert importlib.util.find_spec("hf_distill") is None, "hf_distill is importable"
        import numpy as np, onnxruntime as ort, torch
        from huggingface_hub import hf_hub_download
        from transformers import AutoModelForTokenClassification, AutoTokenizer
        model = AutoModelForTokenClassification.from_pretrained("org/student", trust_remote_code=True).eval()
        tok = AutoTokenizer.from_pretrained("org/student")
        session = ort.InferenceSession(hf_hub_download("org/student", "onnx/model.onnx"))
        crf = json.load(open(hf_hub_download("org/student", "onnx/crf.json")))
        out = []
        for words in {SENTENCES!r}:
            enc = tok(words, is_split_into_words=True, return_tensors="np")
            feeds = {{"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}}
            onnx_logits = session.run(["logits"], feeds)[0][0]
            with torch.no_grad():
                t = {{k: torch.from_numpy(v) for k, v in feeds.items()}}
                logits = model(**t).logits
                first = [i for i, w in enumerate(enc.word_ids()) if w is not None and
                         (i == 0 or enc.word_ids()[i - 1] != w)]
                pos = torch.zeros_like(t["input_ids"], dtype=torch.bool)
                pos[0, first] = True
                tags = model.decode(logits, pos)[0][first].tolist()
            out.append({{"module": type(model).__module__, "ids": enc["input_ids"][0].tolist(), "first": first,
                        "tags": tags, "logits": logits[0].tolist(), "onnx": onnx_logits.tolist()}})
        print(json.dumps({{"rows": out, "crf": crf}}))
    """)
    env = {"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_DISABLE_TELEMETRY": "1",
           "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    from hf_distill.shipping.export import load_model

    reference = load_model(str(student_dir))
    crf = {k: np.asarray(v) for k, v in got["crf"].items()}
    for row, enc in zip(got["rows"], ids):
        assert row["module"].startswith("transformers_modules.") and row["ids"] == enc["input_ids"]
        with torch.no_grad():
            t = torch.tensor([row["ids"]])
            ref_logits = reference(input_ids=t, attention_mask=torch.ones_like(t)).logits[0]
        np.testing.assert_allclose(np.asarray(row["logits"]), ref_logits.numpy(), atol=1e-6)
        np.testing.assert_allclose(np.asarray(row["onnx"]), ref_logits.numpy(), atol=1e-4)
        onnx_tags = viterbi(np.asarray(row["onnx"])[row["first"]], crf["transitions"], crf["start"], crf["end"])
        assert onnx_tags == row["tags"]
        positions = torch.zeros(1, len(row["ids"]), dtype=torch.bool)
        positions[0, row["first"]] = True
        assert reference.decode(ref_logits[None], positions)[0][row["first"]].tolist() == row["tags"]


def test_push_honours_env_settings_and_keeps_the_token_secret(student_dir, tmp_path, hub):
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "home"),
           "HF_HUB_OFFLINE": "0"}
    proc = subprocess.run([sys.executable, "-m", "hf_distill.cli", "push", str(student_dir), "org/via-cli"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "org/via-cli" in hub.repos and TOKEN not in proc.stdout + proc.stderr
    writes = [auth for method, _, auth in hub.requests if method == "POST"]
    assert writes and all(auth == f"Bearer {TOKEN}" for auth in writes)
    assert not (tmp_path / "home").exists() or not any(
        TOKEN in p.read_text(errors="ignore") for p in (tmp_path / "home").rglob("*") if p.is_file())

    with pytest.raises(PushError, match="refused the token \\(401\\)"):
        push_student_to_hub(student_dir, "org/no-token", token="hf_wrong", endpoint=hub.endpoint)
    assert "org/no-token" not in hub.repos


def test_push_refuses_an_incomplete_folder(tmp_path, tokenizer):
    build_student("window", tokenizer, labels=CONLL_LABELS).save_pretrained(tmp_path)
    with pytest.raises(PushError, match="no tokenizer"):
        push_student_to_hub(tmp_path, "org/x", token=TOKEN, endpoint="http://127.0.0.1:9")
    (tmp_path / "window.py").unlink()
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(PushError, match="window.py"):
        push_student_to_hub(tmp_path, "org/x", token=TOKEN, endpoint="http://127.0.0.1:9")


def test_cli_card_and_export(student_dir, tmp_path, capsys):
    assert cli(["card", str(student_dir), "--repo_id", "org/cli-card"]) == 0
    assert "# org/cli-card" in (student_dir / "README.md").read_text()
    assert cli(["export", str(student_dir), "--output_dir", str(tmp_path / "onnx"), "--max_eval_samples", "20"]) == 0
    report = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert report["max_abs_diff"] <= 1e-4 and (tmp_path / "onnx" / "model.onnx").is_file()


def _trained(tmp_path, tokenizer, tokenized, teacher, **hub_args):
    """A CNN student distilled for two steps with a Hub token in its arguments."""
    student = build_student("cnn", tokenizer, labels=CONLL_LABELS, embedding_dim=16)
    args = DistillationTrainingArguments(output_dir=str(tmp_path / "run"), max_steps=2, per_device_train_batch_size=8,
                                         kd_loss="mse", report_to="none", save_strategy="no", disable_tqdm=True,
                                         use_cpu=True, dataloader_pin_memory=False, hub_token=TOKEN, **hub_args)
    trainer = DistillationTrainer(model=student, args=args, teacher_model=teacher, processing_class=tokenizer,
                                  train_dataset=tokenized["train"].select(range(16)))
    trainer.train()
    return trainer


def test_trainer_push_to_hub_ships_the_same_folder_and_card(tmp_path, tokenizer, tokenized, conll, hub):
    from transformers import AutoModelForTokenClassification

    teacher_dir = tmp_path / "teacher"
    tiny_bert(len(tokenizer), layers=1, hidden=16, seed=4).save_pretrained(teacher_dir)
    tokenizer.save_pretrained(teacher_dir)
    teacher = AutoModelForTokenClassification.from_pretrained(teacher_dir)
    trainer = _trained(tmp_path, tokenizer, tokenized, teacher, hub_model_id="org/from-trainer")
    info = push_trainer_to_hub(trainer, bench_split=conll["test"].select(range(10)), bench_runs=2,
                               dataset="conll2003")
    sha, files = hub.repos["org/from-trainer"].commits[-1]
    assert info.oid == sha
    assert {"distillation.json", "efficiency.json", "cnn.py", "onnx/model.onnx", "README.md"} <= set(files)
    assert files["README.md"].decode() == (tmp_path / "run" / "README.md").read_text()
    assert "| kd_loss | mse |" in files["README.md"].decode()
    recorded = json.loads(files["distillation.json"])
    assert recorded["teacher"] == str(teacher_dir) and recorded["dataset"] == "conll2003"
    # the token is in no written file and in no uploaded one; training_args.bin is not uploaded
    assert "training_args.bin" not in files
    assert not any(TOKEN.encode() in content for content in files.values())
    leaked = [p for p in (tmp_path / "run").rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert leaked == []
    assert trainer.args.hub_token == TOKEN  # the run itself keeps it


def test_trainer_push_to_hub_keeps_its_upstream_contract(tmp_path, tokenizer, tokenized, hub):
    """args.push_to_hub=True: Trainer's own repo creation, save-and-push, and model card; no token written."""
    teacher = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=4)
    trainer = _trained(tmp_path, tokenizer, tokenized, teacher, push_to_hub=True, hub_model_id="org/upstream")
    trainer.push_to_hub(commit_message="End of training")
    files = hub.repos["org/upstream"].commits[-1][1]
    assert {"config.json", "model.safetensors", "README.md"} <= set(files)
    assert not any(TOKEN.encode() in content for content in files.values())
    assert not [p for p in (tmp_path / "run").rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]


# ------------------------------------------------------------------------------ data sets from anywhere
def _tagging_dict(conll, n=40):
    """The first ``n`` rows of each CoNLL-2003 split, tokens and NER tags only."""
    return datasets.DatasetDict({k: v.select(range(n)).select_columns(["tokens", "ner_tags"]).flatten_indices()
                                 for k, v in conll.items()})


def test_a_dataset_loads_by_hub_id_from_disk_and_from_memory_with_its_task(tmp_path, hub, conll):
    from huggingface_hub import HfApi

    from hf_distill import load_dataset
    from hf_distill.runs import TaskSpec

    data = _tagging_dict(conll)
    repo = tmp_path / "repo"
    for split, part in data.items():  # the files DatasetDict.push_to_hub writes
        part.to_parquet(str(repo / "data" / f"{split}-00000-of-00001.parquet"))
    api = HfApi(endpoint=hub.endpoint, token=HUB_TOKEN)
    api.create_repo("org/tiny-ner", repo_type="dataset")
    api.upload_folder(folder_path=str(repo), repo_id="org/tiny-ner", repo_type="dataset")
    from_hub = load_dataset("org/tiny-ner", cache_dir=str(tmp_path / "hf"))
    assert sorted(from_hub) == ["test", "train", "validation"]
    assert from_hub["train"]["tokens"] == data["train"]["tokens"]
    task = TaskSpec.of(from_hub["train"])
    assert (task.kind, task.label_column, task.labels) == ("token", "ner_tags", CONLL_LABELS)
    data.save_to_disk(str(tmp_path / "saved"))
    assert load_dataset(str(tmp_path / "saved"))["validation"]["ner_tags"] == data["validation"]["ner_tags"]
    renamed = datasets.DatasetDict({"train": data["train"], "dev": data["validation"]})
    assert sorted(load_dataset(renamed)) == ["train", "validation"]  # in memory; dev is the validation split
    with pytest.raises(FileNotFoundError, match="Hub dataset 'org/missing' could not be downloaded"):
        load_dataset("org/missing", cache_dir=str(tmp_path / "hf"))
    texts = datasets.Dataset.from_dict({"text": ["a", "b"], "label": ["x", "y"]})
    with pytest.raises(ValueError, match="label column 'label' holds Value"):
        TaskSpec.of(load_dataset(texts)["train"])


def test_zoo_runs_on_a_hub_dataset_id(tmp_path, hub, conll, tokenizer, monkeypatch):
    from huggingface_hub import HfApi

    from hf_distill.runs import cascade as command
    from hf_distill.zoo import ZooArguments, run_zoo

    repo = tmp_path / "repo"
    for split, part in _tagging_dict(conll, 24).items():
        if split != "validation":  # the zoo carves a dev split, and its cascade calibrates on the same rows
            part.to_parquet(str(repo / "data" / f"{split}-00000-of-00001.parquet"))
    api = HfApi(endpoint=hub.endpoint, token=HUB_TOKEN)
    api.create_repo("org/ner-slice", repo_type="dataset")
    api.upload_folder(folder_path=str(repo), repo_id="org/ner-slice", repo_type="dataset")
    teacher = tmp_path / "teacher"
    tiny_bert(len(tokenizer), layers=1, hidden=16, seed=3).save_pretrained(teacher)
    tokenizer.save_pretrained(teacher)
    monkeypatch.setattr(command, "throughput", lambda work, rows: (work(), 100.0)[1])  # speeds: not tested here
    out = run_zoo(ZooArguments(teacher=str(teacher), dataset="org/ner-slice", output_dir=str(tmp_path / "zoo"),
                               students=['w=window:{"embedding_dim": 8}@1e-2'], epochs=1, bench_runs=1,
                               quantize=False, augment="none", cascade=True, max_f1_drop=100.0))
    assert [r["name"] for r in out["students"]] == ["w"] and 0.0 <= out["students"][0]["f1"] <= 1.0
    record = {"carved_from": "train", "fraction": 0.1, "seed": 0}
    saved = json.loads((tmp_path / "zoo" / "students" / "w" / "model" / "distillation.json").read_text())
    assert saved["dev_split"] == record
    results = json.loads((tmp_path / "zoo" / "students" / "w" / "model" / "cascade_results.json").read_text())
    assert results["cascade"]["calibration"]["carved"] == record and out["cascade"]["student"] == "w"
