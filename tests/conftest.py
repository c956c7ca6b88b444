"""Shared fixtures: the real data root, a tiny WordPiece tokenizer built from CoNLL words, tiny random BERTs."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

import torch  # noqa: E402
from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("HF_DISTILL_DATA_DIR", ROOT.parent / "shared" / "data")).resolve()
CONLL_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def pytest_configure(config):
    torch.set_num_threads(1)  # tiny models; and no OpenMP oversubscription beside other jobs


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "conll2003").is_dir():
        pytest.fail(f"real data not found at {DATA_DIR}: put shared/ beside the repo or set HF_DISTILL_DATA_DIR")
    return DATA_DIR


@pytest.fixture(scope="session")
def conll(data_dir):
    from hf_distill import load_dataset

    return load_dataset("conll2003", data_dir=str(data_dir))


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory, data_dir) -> Path:
    """A lowercase WordPiece vocabulary: specials, characters, '##' characters and 400 frequent words."""
    counts = collections.Counter()
    with open(data_dir / "conll2003" / "neuroner" / "train.txt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i > 40000:
                break
            if line.strip() and not line.startswith("-DOCSTART-"):
                counts[line.split()[0].lower()] += 1
    chars = sorted({c for w in counts for c in w})
    words = [w for w, _ in counts.most_common(400) if len(w) > 1]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *[f"##{c}" for c in chars], *words]
    vocab = list(dict.fromkeys(vocab))
    path = tmp_path_factory.mktemp("tok")
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir):
    return BertTokenizerFast.from_pretrained(tokenizer_dir)


def tiny_bert(vocab_size: int, layers: int = 2, hidden: int = 32, seed: int = 0, labels=CONLL_LABELS):
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=128, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)},
    )
    return BertForTokenClassification(config)


def save_emotion_teacher(folder, tokenizer, data_dir) -> str:
    """A tiny random text classifier over emotion's six labels, saved with ``tokenizer`` in ``folder``."""
    from transformers import BertForSequenceClassification

    from hf_distill import load_dataset

    names = load_dataset("emotion", data_dir=str(data_dir))["train"].features["label"].names
    torch.manual_seed(0)
    teacher = BertForSequenceClassification(BertConfig(
        vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}))
    teacher.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tokenized(conll, tokenizer):
    """200 training and 100 test sentences of real CoNLL-2003, tokenized and aligned."""
    from hf_distill import tokenize_and_align

    small = {"train": conll["train"].select(range(200)), "test": conll["test"].select(range(100))}
    return {k: tokenize_and_align(v, tokenizer, max_length=128) for k, v in small.items()}


HUB_TOKEN = "hf_secret_test_token_0123456789"


@pytest.fixture
def hub(monkeypatch):
    """A local Hub-protocol server, as if HF_ENDPOINT named it; the client may reach 127.0.0.1 only."""
    import requests
    from hub_server import LocalHub
    from huggingface_hub import configure_http_backend, constants, file_download, hf_api

    class NoNetwork(requests.adapters.HTTPAdapter):
        def send(self, request, *args, **kwargs):
            raise requests.ConnectionError(f"tests never reach the network: {request.url}")

    def factory():
        session = requests.Session()
        session.mount("http://", NoNetwork())
        session.mount("https://", NoNetwork())
        session.mount("http://127.0.0.1:", requests.adapters.HTTPAdapter())
        return session

    configure_http_backend(backend_factory=factory)
    try:
        with LocalHub(token=HUB_TOKEN) as local:
            monkeypatch.setattr(constants, "ENDPOINT", local.endpoint)  # what HF_ENDPOINT sets at import
            monkeypatch.setattr(hf_api.api, "endpoint", local.endpoint)  # the module-level client create_repo uses
            template = local.endpoint + "/{repo_id}/resolve/{revision}/{filename}"  # downloads (hf_hub_url)
            monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
            monkeypatch.setattr(file_download, "HUGGINGFACE_CO_URL_TEMPLATE", template)
            yield local
    finally:
        configure_http_backend()
