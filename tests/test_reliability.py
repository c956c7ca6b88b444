"""A bad-input corpus: generated files and settings a new user might hand the library, one case each,
with the error type and the words the message must hold (file, line, label, what to do).

``benchmarks/results/reliability/reliability.md`` lists these cases grouped, with their outcome.
"""

from __future__ import annotations

import json
import os
import shutil

import datasets
import pytest
import torch
from conftest import CONLL_LABELS, tiny_bert

from hf_distill import DistillationTrainer, DistillationTrainingArguments, cache_teacher_outputs, load_dataset
from hf_distill.cache import remove_abandoned_temp_folders
from hf_distill.data import DataFormatError, tokenize_and_align
from hf_distill.data.readers import open_text
from hf_distill.metrics import seqeval_scores
from hf_distill.training.collator import DistillationCollator
from hf_distill.training.signals import StaleTeacherCacheError

# ----------------------------------------------------------------------------------------- readers
# (name, files {relative path: bytes}, path passed to load_dataset, error type, message regex)
READER_CASES = [
    ("latin1_column_file", {"train.txt": "EU B-ORG\nM\xfcller B-PER\n".encode("latin-1")}, "train.txt",
     DataFormatError, r"train\.txt:2: bytes .* are not UTF-8"),
    ("latin1_jsonl", {"train.jsonl": '{"text": "ok", "label": "a"}\n{"text": "caf\xe9", "label": "b"}\n'
                      .encode("latin-1")}, "train.jsonl", DataFormatError, r"train\.jsonl:2: bytes"),
    ("empty_file", {"train.txt": b""}, "train.txt", DataFormatError, r"train\.txt: no sentences"),
    ("docstart_only", {"train.txt": b"-DOCSTART- O\n\n"}, "train.txt", DataFormatError, r"no sentences"),
    ("stray_column", {"train.txt": b"EU B-ORG\nrejects NNP O\n"}, "train.txt", DataFormatError,
     r"train\.txt:2: 3 columns, but line 1 has 2"),
    ("too_few_columns", {"train.txt": b"EU B-ORG\n\nGerman\n"}, "train.txt", DataFormatError,
     r"train\.txt:3: expected at least 2 columns"),
    ("ambiguous_split_files", {"d/train-small.txt": b"EU B-ORG\n", "d/train-big.txt": b"EU B-ORG\n"}, "d",
     DataFormatError, r"2 files could be the train split"),
    ("float_label", {"train.jsonl": b'{"text": "a", "label": 1.5}\n'}, "train.jsonl", DataFormatError,
     r"train\.jsonl:1: label 1\.5 is a float"),
    ("bool_label", {"train.jsonl": b'{"text": "a", "label": true}\n'}, "train.jsonl", DataFormatError,
     r"label True is a bool"),
    ("misspelled_label_key", {"train.jsonl": b'{"text": "a", "lable": "x"}\n{"text": "b", "lable": "y"}\n'},
     "train.jsonl", DataFormatError, r"no row has a 'label' field"),
    ("text_not_a_string", {"train.jsonl": b'{"text": ["a", "b"], "label": "x"}\n'}, "train.jsonl",
     DataFormatError, r"train\.jsonl:1: 'text' is a list"),
    ("ragged_csv_row", {"train.csv": b"text,label\nhello,pos\nno label here\n"}, "train.csv", DataFormatError,
     r"train\.csv:3: 1 fields where the header has 2"),
    ("extra_csv_field", {"train.csv": b"text,label\nhello, world,pos\n"}, "train.csv", DataFormatError,
     r"train\.csv:2: .*quote text that holds commas"),
    ("invalid_json", {"train.jsonl": b'{"text": "a", "label": "x"\n'}, "train.jsonl", DataFormatError,
     r"train\.jsonl:1: invalid JSON"),
    ("mixed_formats", {"d/train.txt": b"EU B-ORG\n", "d/test.jsonl": b'{"text": "a", "label": "x"}\n'}, "d",
     DataFormatError, r"mix formats"),
    ("unsupported_type", {"train.xml": b"<a/>"}, "train.xml", DataFormatError, r"unsupported file type"),
    ("missing_path", {}, "nope/train.txt", ValueError, r"not a registered name .* not an existing file or directory"),
    ("empty_directory", {"d/readme.md": b"x"}, "d", FileNotFoundError, r"no train\*/valid\*/dev\*/test\*"),
    ("label_outside_strict_iob2", {"train.txt": b"EU I-ORG\n"}, "train.txt", None, None),  # repaired (below)
]


def _write(tmp_path, files):
    for rel, data in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


@pytest.mark.parametrize("name,files,target,error,message", READER_CASES, ids=[c[0] for c in READER_CASES])
def test_bad_data_files_are_named(tmp_path, name, files, target, error, message):
    _write(tmp_path, files)
    if error is None:
        assert load_dataset(str(tmp_path / target))["train"]
        return
    with pytest.raises(error, match=message):
        load_dataset(str(tmp_path / target))


def test_utf8_bom_is_accepted_in_column_and_csv_files(tmp_path):
    (tmp_path / "train.txt").write_bytes("\ufeff-DOCSTART- O\n\nEU B-ORG\nrejects O\n".encode())
    ds = load_dataset(str(tmp_path / "train.txt"))["train"]
    assert ds["tokens"] == [["EU", "rejects"]]  # the DOCSTART line is not a sentence
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "train.csv").write_bytes("\ufefftext,label\nhello,pos\n".encode())  # Excel's CSV
    assert load_dataset(str(tmp_path / "c"))["train"]["text"] == ["hello"]


def test_tab_separated_tokens_keep_their_spaces(tmp_path):
    (tmp_path / "train.txt").write_text("New York\tB-LOC\nis\tO\n", encoding="utf-8")
    assert load_dataset(str(tmp_path / "train.txt"))["train"]["tokens"] == [["New York", "is"]]


def test_exact_split_name_wins_over_variants(tmp_path):
    (tmp_path / "train.txt").write_text("EU B-ORG\nx O\n", encoding="utf-8")
    (tmp_path / "train-small.txt").write_text("EU B-ORG\n", encoding="utf-8")
    assert len(load_dataset(str(tmp_path))["train"][0]["tokens"]) == 2


def test_integer_labels_keep_numeric_order(tmp_path):
    rows = [{"text": f"t{i}", "label": i} for i in (10, 2, 1, 0)]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    ds = load_dataset(str(tmp_path / "train.jsonl"))["train"]
    names = ds.features["label"].names
    assert names == ["0", "1", "2", "10"] and [names[i] for i in ds["label"]] == ["10", "2", "1", "0"]


def test_i_after_o_is_read_as_b_so_strict_metrics_count_it(tmp_path, caplog):
    (tmp_path / "train.txt").write_text("EU O\nrejects I-ORG\nplans O\n", encoding="utf-8")
    with caplog.at_level("WARNING"):
        ds = load_dataset(str(tmp_path / "train.txt"))["train"]
    names = ds.features["ner_tags"].feature.names
    gold = [[names[i] for i in ds["ner_tags"][0]]]
    assert gold == [["O", "B-ORG", "O"]] and "read as B-X" in caplog.text
    # a prediction that misses the entity no longer scores 1.0
    assert seqeval_scores(gold, [["O", "O", "O"]])["f1"] == 0.0
    with pytest.raises(DataFormatError, match="strict IOB2"):
        load_dataset(str(tmp_path / "train.txt"), strict=True)


def test_labels_are_checked_against_their_scheme(tmp_path, caplog):
    rows = "".join("Ann B-PER\nsaid O\nhi O\n\n" for _ in range(3)) + "Bob B-PRE\nleft O\n"
    (tmp_path / "train.txt").write_text(rows, encoding="utf-8")
    with caplog.at_level("WARNING"):
        load_dataset(str(tmp_path / "train.txt"))
    assert "train.txt:13: entity type 'PRE' occurs in one token only ('B-PRE') (a typo of 'PER'?)" in caplog.text
    (tmp_path / "io.txt").write_text("Ann PERSON\nsaid O\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"io\.txt:1: label 'PERSON' in column 'ner_tags' is not IOB2.*'io'"):
        load_dataset(str(tmp_path / "io.txt"))
    caplog.clear()
    (tmp_path / "iob1.txt").write_text("Ann I-PER\nBob I-PER\nsaid O\n", encoding="utf-8")
    with caplog.at_level("WARNING"):
        load_dataset(str(tmp_path / "iob1.txt"))
    assert "iob1.txt:1: entity type 'PER' never opens with B- (2 I- tags): is the file IOB1?" in caplog.text


def test_metrics_score_labels_of_any_shape():
    scores = seqeval_scores([["PERSON", "PERSON", "O", "LOC"]], [["PERSON", "O", "O", "LOC"]])
    assert scores["f1"] == 0.5 and scores["accuracy"] == 0.75 and scores["PERSON_f1"] == 0.0


def test_open_text_names_file_line_and_bytes(tmp_path):
    (tmp_path / "f.txt").write_bytes(b"ok\nok\nbad \xff here\n")
    with pytest.raises(DataFormatError, match=r"f\.txt:3: bytes b'\\xff"):
        open_text(str(tmp_path / "f.txt"))


# ----------------------------------------------------------------------------------------- caches
@pytest.fixture(scope="module")
def teacher(tokenizer):
    return tiny_bert(len(tokenizer), layers=1, hidden=16, seed=3).eval()


def _args(tmp_path, **kw):
    return DistillationTrainingArguments(output_dir=str(tmp_path / "out"), report_to="none", use_cpu=True,
                                         per_device_train_batch_size=4, save_strategy="no", disable_tqdm=True,
                                         **{"kd_loss": "kl", **kw})


def _loss(trainer, rows, tokenizer):
    return trainer.compute_loss(trainer.model, DistillationCollator(tokenizer)([rows[i] for i in range(4)]))


def test_cache_from_a_teacher_with_another_label_order_is_refused(tmp_path, tokenizer, tokenized, teacher):
    train = tokenized["train"].select(range(4))
    permuted = [CONLL_LABELS[i] for i in (0, 2, 1, 4, 3, 6, 5, 8, 7)]
    other = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=3, labels=permuted).eval()
    cached = cache_teacher_outputs(other, train, tokenizer=tokenizer)
    student = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=4).train()
    trainer = DistillationTrainer(model=student, args=_args(tmp_path), processing_class=tokenizer)
    with pytest.raises(StaleTeacherCacheError, match="label order differ from the student's id2label"):
        _loss(trainer, cached, tokenizer)
    assert torch.isfinite(_loss(trainer, cache_teacher_outputs(teacher, train, tokenizer=tokenizer), tokenizer))


def test_cache_built_with_another_tokenizer_is_refused(tmp_path, tokenizer, tokenized, teacher, tokenizer_dir):
    from transformers import BertTokenizerFast

    cased = BertTokenizerFast(vocab_file=str(tokenizer_dir / "vocab.txt"), do_lower_case=False)
    cached = cache_teacher_outputs(teacher, tokenized["train"].select(range(4)), tokenizer=cased)
    student = tiny_bert(len(tokenizer), layers=1, hidden=16, seed=4).train()
    trainer = DistillationTrainer(model=student, args=_args(tmp_path), processing_class=tokenizer)
    with pytest.raises(StaleTeacherCacheError, match="another tokenizer"):
        _loss(trainer, cached, tokenizer)


def test_cache_built_without_tokenizer_records_the_teachers_own(tmp_path, tokenizer, tokenized, teacher,
                                                                 tokenizer_dir, caplog):
    from transformers import AutoModelForTokenClassification, BertTokenizerFast

    teacher.save_pretrained(tmp_path / "teacher")
    tokenizer.save_pretrained(tmp_path / "teacher")
    loaded = AutoModelForTokenClassification.from_pretrained(tmp_path / "teacher").eval()
    rows = tokenized["train"].select(range(4))
    cached = cache_teacher_outputs(loaded, rows)  # as in the README's example: no tokenizer=
    cased = BertTokenizerFast(vocab_file=str(tokenizer_dir / "vocab.txt"), do_lower_case=False)  # same size
    trainer = DistillationTrainer(model=tiny_bert(len(tokenizer), layers=1, hidden=16, seed=4).train(),
                                  args=_args(tmp_path), processing_class=cased)
    with pytest.raises(StaleTeacherCacheError, match="another tokenizer"):
        _loss(trainer, cached, tokenizer)
    teacher.save_pretrained(tmp_path / "bare")  # no tokenizer files: said in a warning
    with caplog.at_level("WARNING"):
        cache_teacher_outputs(AutoModelForTokenClassification.from_pretrained(tmp_path / "bare"), rows)
    assert "records no tokenizer" in caplog.text and "bare" in caplog.text


def test_rows_longer_than_the_teachers_positions_are_refused_before_compute(tokenizer, tokenized, teacher):
    from hf_distill.training.validate import check_max_length

    long_rows = tokenize_and_align(tokenized["train"].select(range(3)).map(
        lambda ex: {"tokens": ex["tokens"] * 20, "ner_tags": ex["ner_tags"] * 20}), tokenizer, max_length=600)
    with pytest.raises(ValueError, match=r"up to \d+ tokens long but the teacher has 128 position embeddings: "
                                         r"tokenize with max_length<=128"):
        cache_teacher_outputs(teacher, long_rows, tokenizer=tokenizer)
    with pytest.raises(ValueError, match=r"max_length=600 is above the teacher's 128 position embeddings"):
        check_max_length(600, teacher.config)


@pytest.mark.parametrize("loss", ["mse", "substructure"])
def test_a_top_k_cache_with_a_loss_that_needs_every_logit_is_refused_when_the_trainer_is_built(
        tmp_path, tokenizer, tokenized, teacher, loss):
    from hf_distill.students import build_student

    cached = cache_teacher_outputs(teacher, tokenized["train"].select(range(4)), tokenizer=tokenizer, top_k=3)
    student = build_student("bilstm", tokenizer, labels=CONLL_LABELS, hidden_size=8, use_crf=True)
    with pytest.raises(ValueError, match=rf"kd_loss='{loss}' needs every label's teacher logit.*top 3 only"):
        DistillationTrainer(model=student, args=_args(tmp_path, kd_loss=loss), train_dataset=cached,
                            processing_class=tokenizer)


def _disk_cache(tmp_path, teacher, tokenized, tokenizer):
    train = tokenized["train"].select(range(40))
    cache_teacher_outputs(teacher, train, cache_dir=str(tmp_path / "c"), tokenizer=tokenizer)
    (folder,) = [p for p in (tmp_path / "c").iterdir() if not p.name.startswith(".")]
    return train, folder


def test_truncated_cache_file_is_named_and_can_be_rebuilt(tmp_path, tokenizer, tokenized, teacher):
    train, folder = _disk_cache(tmp_path, teacher, tokenized, tokenizer)
    arrow = next(folder.rglob("*.arrow"))
    data = arrow.read_bytes()
    arrow.write_bytes(data[: len(data) // 2])
    rel = arrow.relative_to(folder).as_posix()
    with pytest.raises(StaleTeacherCacheError, match=rf"{folder.name}: damaged cache, {rel}.*rebuild=True"):
        cache_teacher_outputs(teacher, train, cache_dir=str(tmp_path / "c"), tokenizer=tokenizer)
    again = cache_teacher_outputs(teacher, train, cache_dir=str(tmp_path / "c"), tokenizer=tokenizer, rebuild=True)
    assert len(again) == 40


def test_unreadable_cache_metadata_is_named(tmp_path, tokenizer, tokenized, teacher):
    train, folder = _disk_cache(tmp_path, teacher, tokenized, tokenizer)
    (folder / "hf_distill_cache.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(StaleTeacherCacheError, match=r"hf_distill_cache\.json: unreadable cache metadata"):
        cache_teacher_outputs(teacher, train, cache_dir=str(tmp_path / "c"), tokenizer=tokenizer)


def test_cache_with_a_missing_data_file_is_named(tmp_path, tokenizer, tokenized, teacher):
    train, folder = _disk_cache(tmp_path, teacher, tokenized, tokenizer)
    next(folder.rglob("*.arrow")).unlink()
    with pytest.raises(StaleTeacherCacheError, match="missing or changed"):
        cache_teacher_outputs(teacher, train, cache_dir=str(tmp_path / "c"), tokenizer=tokenizer)


def test_temp_folders_of_killed_writers_are_removed(tmp_path):
    dead = tmp_path / ".abc.999999999.x1.tmp"
    alive = tmp_path / f".abc.{os.getpid()}.x2.tmp"
    dead.mkdir()
    alive.mkdir()
    assert remove_abandoned_temp_folders(str(tmp_path)) == [dead.name]
    assert alive.exists() and not dead.exists()


# ------------------------------------------------------------------------------ rows against models
def test_atomic_writes_from_two_processes_at_once_leave_one_whole_file(tmp_path):
    # two runs sharing an output folder wrote one fixed ".tmp" name: the second rename found it gone
    import multiprocessing

    target = tmp_path / "texts.txt"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.starmap(_write_many, [(str(target), "a"), (str(target), "b")])
    assert target.read_text() in ("a" * 10000 + "\n", "b" * 10000 + "\n")
    assert [p.name for p in tmp_path.iterdir()] == ["texts.txt"]


def _write_many(path: str, char: str) -> None:
    from hf_distill.base import write_text_atomic

    for _ in range(200):
        write_text_atomic(path, char * 10000 + "\n")


def test_failed_atomic_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    from hf_distill import base

    target = tmp_path / "result.json"
    base.write_json_atomic(target, {"f1": 0.9})

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(base.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        base.write_json_atomic(target, {"f1": 0.5})
    assert json.loads(target.read_text()) == {"f1": 0.9}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_labels_beyond_the_label_set_are_refused_before_training(tmp_path, tokenizer, tokenized):
    bad = tokenized["train"].select(range(4)).map(lambda ex: {"labels": [9 if x == 0 else x for x in ex["labels"]]})
    student = tiny_bert(len(tokenizer), layers=1, hidden=16)
    with pytest.raises(ValueError, match=r"label ids \[9\] outside 0\.\.8"):
        DistillationTrainer(model=student, args=_args(tmp_path, kd_weight=1.0), train_dataset=bad,
                            processing_class=tokenizer)


def test_rows_longer_than_the_position_embeddings_are_refused(tmp_path, tokenizer, tokenized):
    long = datasets.Dataset.from_dict({"input_ids": [[2] + [5] * 200 + [3]], "attention_mask": [[1] * 202],
                                       "labels": [[-100] * 202]})
    student = tiny_bert(len(tokenizer), layers=1, hidden=16)  # 128 positions
    with pytest.raises(ValueError, match=r"up to 202 tokens long but the student has 128 position"):
        DistillationTrainer(model=student, args=_args(tmp_path), train_dataset=long, processing_class=tokenizer)


def test_teacher_vocabulary_smaller_than_the_tokenizer_is_refused(tmp_path, tokenizer):
    small_teacher = tiny_bert(50, layers=1, hidden=16)
    student = tiny_bert(len(tokenizer), layers=1, hidden=16)
    with pytest.raises(ValueError, match=r"the teacher embeds only 50"):
        DistillationTrainer(model=student, args=_args(tmp_path), teacher_model=small_teacher,
                            processing_class=tokenizer)


# ------------------------------------------------------------------------------------ export and card
def test_export_refuses_a_folder_that_is_not_a_classifier(tmp_path, tokenizer):
    from transformers import BertConfig, BertForMaskedLM

    from hf_distill.shipping.export import ExportError, export_onnx

    BertForMaskedLM(BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32)).save_pretrained(tmp_path / "mlm")
    with pytest.raises(ExportError, match="BertForMaskedLM, not a token or sequence classifier"):
        export_onnx(str(tmp_path / "mlm"), str(tmp_path / "onnx"))
    with pytest.raises(ExportError, match="not a model folder"):
        export_onnx(str(tmp_path), str(tmp_path / "onnx"))


def test_failed_export_leaves_the_previous_export_untouched(tmp_path, tokenizer, monkeypatch):
    from hf_distill.shipping import export as export_mod

    model = tiny_bert(len(tokenizer), layers=1, hidden=16)
    out = tmp_path / "onnx"
    export_mod.export_onnx(model, str(out))
    before = (out / "model.onnx").read_bytes()

    def broken(*a, **k):
        raise export_mod.ExportError("ONNX logits differ from PyTorch")

    monkeypatch.setattr(export_mod, "validate", broken)
    with pytest.raises(export_mod.ExportError):
        export_mod.export_onnx(tiny_bert(len(tokenizer), layers=1, hidden=16, seed=9), str(out),
                               examples=[{"input_ids": [2, 5, 3], "attention_mask": [1, 1, 1]}])
    assert (out / "model.onnx").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["onnx"]  # no temporary folder left behind


def test_card_never_replaces_a_hand_written_readme(tmp_path, monkeypatch):
    from hf_distill.shipping import cards

    monkeypatch.setattr(cards, "render_card", lambda *a, **k: "---\nlicense: mit\n---\n# generated\n")
    (tmp_path / "README.md").write_text("# my notes\n", encoding="utf-8")
    with pytest.raises(cards.CardError, match="written or edited by hand.*--overwrite"):
        cards.write_card(tmp_path)
    assert (tmp_path / "README.md").read_text() == "# my notes\n"
    cards.write_card(tmp_path, overwrite=True)
    assert (tmp_path / "README.md.bak").read_text() == "# my notes\n"
    cards.write_card(tmp_path)  # its own card is replaced freely
    text = (tmp_path / "README.md").read_text()
    (tmp_path / "README.md").write_text(text.replace("generated", "edited"), encoding="utf-8")
    with pytest.raises(cards.CardError):
        cards.write_card(tmp_path)


def test_card_keeps_notes_written_below_its_marker(tmp_path, monkeypatch):
    from hf_distill.shipping import cards

    monkeypatch.setattr(cards, "render_card", lambda *a, **k: "# generated v1\n")
    cards.write_card(tmp_path)
    path = tmp_path / "README.md"
    path.write_text(path.read_text() + "\n## Notes from the team\nUse with care.\n", encoding="utf-8")
    monkeypatch.setattr(cards, "render_card", lambda *a, **k: "# generated v2\n")
    cards.write_card(tmp_path)  # a regenerated card (as `push` renders it) carries the notes
    text = path.read_text()
    assert text.startswith("# generated v2\n") and text.endswith("\n## Notes from the team\nUse with care.\n")
    assert cards.is_generated_card(text) and not (tmp_path / "README.md.bak").exists()
    path.write_text(text.replace("v2", "v2 (edited)"), encoding="utf-8")  # an edit above the marker is refused
    with pytest.raises(cards.CardError, match="above the hf-distill marker"):
        cards.write_card(tmp_path)


@pytest.mark.parametrize("online", [True, False])
def test_push_to_an_unreachable_hub_is_one_line_and_creates_nothing(online, tmp_path, tokenizer, capsys, monkeypatch,
                                                                    request):
    from hf_distill.cli import main
    from hf_distill.students import build_student

    folder = tmp_path / "s"
    build_student("window", tokenizer, labels=CONLL_LABELS).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    if online:  # the test Hub's client settings: requests go out (to a closed port here)
        request.getfixturevalue("hub")
    code = main(["push", str(folder), "org/name", "--endpoint", "http://127.0.0.1:9", "--no_card"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "could not reach the Hub at http://127.0.0.1:9" in err and "Nothing was created" in err
    assert ("HF_ENDPOINT" if online else "offline mode is on (HF_HUB_OFFLINE=1)") in err
    assert "hf_x" not in err


# ------------------------------------------------------------------------------------------ push
def test_push_checks_repo_id_and_token_before_any_request(tmp_path, tokenizer, monkeypatch):
    from hf_distill.shipping.hub import PushError, push_student_to_hub
    from hf_distill.students import build_student

    folder = tmp_path / "s"
    build_student("window", tokenizer, labels=CONLL_LABELS).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "README.md").write_text("# mine\n", encoding="utf-8")
    with pytest.raises(PushError, match="invalid repository id 'org/bad name'"):
        push_student_to_hub(folder, "org/bad name", token="t", endpoint="http://127.0.0.1:9", card=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(PushError, match="no Hugging Face token"):
        push_student_to_hub(folder, "org/ok", endpoint="http://127.0.0.1:9", card=False)
    assert (folder / "README.md").read_text() == "# mine\n"


def test_failed_upload_deletes_the_repository_it_created(tmp_path, hub, tokenizer, monkeypatch):
    from huggingface_hub import HfApi

    from hf_distill.shipping.hub import push_student_to_hub
    from hf_distill.students import build_student

    folder = tmp_path / "s"
    build_student("window", tokenizer, labels=CONLL_LABELS).save_pretrained(folder)
    tokenizer.save_pretrained(folder)

    def fail(self, **kw):
        raise OSError("connection reset during upload")

    monkeypatch.setattr(HfApi, "upload_folder", fail)
    with pytest.raises(OSError, match="connection reset"):
        push_student_to_hub(folder, "org/fails", token=hub.token, endpoint=hub.endpoint, card=False)
    assert "org/fails" not in hub.repos


# ------------------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("argv,message", [
    (["bench", "/nonexistent/x"], "/nonexistent/x: not found"),
    (["export", "."], "not a model folder"),
    (["card", "/nonexistent/y"], "not found"),
    (["demo", "--teacher", "/nonexistent/teacher"], "no such folder"),
])
def test_cli_errors_are_one_line(argv, message, capsys):
    from hf_distill.cli import main

    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bench_on_a_bare_save_pretrained_folder_says_what_is_missing(tmp_path, tokenizer, capsys):
    from hf_distill.cli import main
    from hf_distill.students import build_student

    build_student("window", tokenizer, labels=CONLL_LABELS, embedding_dim=8).save_pretrained(tmp_path)
    assert main(["bench", str(tmp_path)]) == 1
    assert "no tokenizer beside the model" in capsys.readouterr().err
    tokenizer.save_pretrained(tmp_path)
    assert main(["bench", str(tmp_path)]) == 1
    assert "no distillation.json names the dataset to evaluate on; pass --dataset" in capsys.readouterr().err


def test_cli_help_lists_commands_and_unknown_command_says_so(capsys):
    from hf_distill.cli import COMMANDS, main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS) and "ONNX" in out
    assert main(["distil"]) == 2 and "unknown command 'distil'" in capsys.readouterr().err


def test_cli_help_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys; from hf_distill.cli import main, usage; usage(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert out.strip() == "False"


def test_shutil_left_no_partial_cache(tmp_path, tokenizer, tokenized, teacher, monkeypatch):
    """A build that fails while saving publishes nothing under the key (atomic publish)."""
    train = tokenized["train"].select(range(4))

    def boom(self, path, **kw):
        os.makedirs(path, exist_ok=True)
        raise OSError("disk full")

    monkeypatch.setattr(datasets.Dataset, "save_to_disk", boom)
    with pytest.raises(OSError, match="disk full"):
        cache_teacher_outputs(teacher, train, cache_dir=str(tmp_path / "c"), tokenizer=tokenizer)
    (partial,) = list((tmp_path / "c").iterdir())  # only the (empty) folder of finished shards, for a resume
    assert partial.name.endswith(".partial") and list(partial.iterdir()) == []
    shutil.rmtree(tmp_path / "c")
