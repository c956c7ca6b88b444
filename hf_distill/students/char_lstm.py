"""CharCNN + word BiLSTM student (Ma & Hovy 2016; Yang & Zhang 2018, without the CRF) over words.

Inputs are word ids from a word-level tokenizer (``hf_distill.data.words.build_word_tokenizer``) and
character ids per word (``char_ids``, (batch, words, max_word_length)) built with ``config.char_vocab``. With a
``config.piece_vocab``, also sub-word piece ids per word (``piece_ids``, (batch, words, max_word_pieces), from
``hf_distill.data.words.PieceSegmenter``): a word the table does not hold reads the mean of its pieces' vectors
instead of the unknown word's, as a sub-word teacher reads it.
"""

from __future__ import annotations

import torch
from torch import nn

from .common import (
    BiLSTMEncoder,
    StudentConfig,
    StudentPreTrainedModel,
    make_crf,
    make_embeddings,
    tagging_output,
    word_dropout,
)
from .crf import LinearChainCRF  # noqa: F401  (trust_remote_code copies only direct relative imports)

CHAR_PAD, CHAR_UNK = "<pad>", "<unk>"


class CharLSTMConfig(StudentConfig):
    """Hyper-parameters of :class:`CharCNNWordLSTMForTokenClassification` (shared fields:
    :class:`StudentConfig`).

    Args:
        char_vocab: the characters, ``char_vocab[0]`` padding and ``char_vocab[1]`` unknown.
        char_embedding_dim: width of the character embeddings.
        char_filters: convolution filters over each word's characters.
        char_kernel_size: width of that convolution (odd).
        max_word_length: characters kept per word.
        hidden_size: word BiLSTM width per direction.
        num_layers: stacked word BiLSTM layers.
        output_dropout: dropout before the head.
        word_dropout: probability of replacing a word's id by ``unk_token_id`` while training (its characters stay),
            so the model learns to tag words its table does not hold, as it meets them in test text.
        unk_token_id: the word tokenizer's unknown id (``[UNK]`` = 1 in ``build_word_tokenizer``).
        piece_vocab: sub-word pieces (``<pad>``, ``<unk>``, then ``"\u2581" + text`` for word starts and bare
            continuations), or None for no piece input.
        max_word_pieces: pieces kept per word.
        piece_lowercase: words are lowercased before they are split into pieces (a lowercasing teacher's).
    """

    model_type = "hfd_char_lstm"

    def __init__(self, vocab_size: int = 20000, char_vocab: list[str] | None = None, embedding_dim: int = 100,
                 char_embedding_dim: int = 30, char_filters: int = 50, char_kernel_size: int = 3,
                 max_word_length: int = 15, hidden_size: int = 200, num_layers: int = 1, output_dropout: float = 0.0,
                 word_dropout: float = 0.0, unk_token_id: int = 1, piece_vocab: list[str] | None = None,
                 max_word_pieces: int = 6, piece_lowercase: bool = False, **kwargs):
        self.char_vocab = list(char_vocab) if char_vocab is not None else [CHAR_PAD, CHAR_UNK]
        self.char_embedding_dim = char_embedding_dim
        self.char_filters = char_filters
        self.char_kernel_size = char_kernel_size
        self.max_word_length = max_word_length
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.output_dropout = output_dropout
        self.word_dropout = word_dropout
        self.unk_token_id = unk_token_id
        self.piece_vocab = list(piece_vocab) if piece_vocab else None
        self.max_word_pieces = max_word_pieces
        self.piece_lowercase = piece_lowercase
        super().__init__(vocab_size=vocab_size, embedding_dim=embedding_dim, **kwargs)
        self.require_positive("char_embedding_dim", "char_filters", "char_kernel_size", "max_word_length",
                              "hidden_size", "num_layers", "max_word_pieces")
        self.require_probability("output_dropout", "word_dropout")
        if not 0 <= unk_token_id < vocab_size:
            raise ValueError(f"CharLSTMConfig: unk_token_id={unk_token_id} outside the vocabulary ({vocab_size})")
        for name in ("char_vocab", "piece_vocab"):
            vocab = getattr(self, name)
            if vocab is not None and vocab[:2] != [CHAR_PAD, CHAR_UNK]:
                raise ValueError(f"CharLSTMConfig: {name} must start with {[CHAR_PAD, CHAR_UNK]}")
        self.require_odd("char_kernel_size", "to keep characters aligned")

class CharCNN(nn.Module):
    """Character embeddings, 1-D convolution and max-pooling over each word's real characters."""

    def __init__(self, num_chars: int, dim: int, filters: int, kernel_size: int):
        super().__init__()
        self.embeddings = nn.Embedding(num_chars, dim, padding_idx=0)
        self.conv = nn.Conv1d(dim, filters, kernel_size, padding=kernel_size // 2)

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        b, w, c = char_ids.shape
        x = self.embeddings(char_ids.reshape(b * w, c)).transpose(1, 2)
        y = self.conv(x)  # (b*w, filters, c)
        real = char_ids.reshape(b * w, 1, c) != 0
        y = y.masked_fill(~real, float("-inf")).amax(-1)
        y = torch.where(torch.isfinite(y), y, torch.zeros_like(y))  # words without characters (padding)
        return y.reshape(b, w, -1)


class CharCNNWordLSTMForTokenClassification(StudentPreTrainedModel):
    config_class = CharLSTMConfig

    def __init__(self, config: CharLSTMConfig):
        super().__init__(config)
        self.embeddings = make_embeddings(config)
        self.chars = CharCNN(
            len(config.char_vocab), config.char_embedding_dim, config.char_filters, config.char_kernel_size
        )
        self.encoder = BiLSTMEncoder(
            config.embedding_dim + config.char_filters, config.hidden_size, config.num_layers, config.dropout
        )
        self.dropout = nn.Dropout(config.output_dropout)
        self.classifier = nn.Linear(2 * config.hidden_size, config.num_labels)
        self.crf = make_crf(config)
        self.pieces = (nn.Embedding(len(config.piece_vocab), config.embedding_dim, padding_idx=0)
                       if config.piece_vocab else None)
        self.post_init_with_embeddings()
        if self.pieces is not None:
            self.pieces.weight.requires_grad_(not config.freeze_embeddings)

    def load_piece_embeddings(self, matrix: torch.Tensor, freeze: bool = False) -> None:
        """Copy a (pieces, embedding_dim) matrix into the piece table (e.g. the teacher's sub-word embeddings,
        the space of word vectors pooled from them)."""
        if self.pieces is None:
            raise ValueError("this student reads no sub-word pieces (config.piece_vocab is None)")
        if tuple(matrix.shape) != tuple(self.pieces.weight.shape):
            raise ValueError(f"piece matrix {tuple(matrix.shape)} does not fit the student's "
                             f"{tuple(self.pieces.weight.shape)}")
        with torch.no_grad():
            self.pieces.weight.copy_(matrix)
            self.pieces.weight[0] = 0.0
        self.pieces.weight.requires_grad_(not freeze)

    def _word_vectors(self, words: torch.Tensor, piece_ids: torch.Tensor | None) -> torch.Tensor:
        x = self.embeddings(words)
        if self.pieces is None:
            return x
        if piece_ids is None or piece_ids.shape[:2] != words.shape:
            raise ValueError(f"piece_ids {None if piece_ids is None else tuple(piece_ids.shape)} must be "
                             f"(batch, words, pieces) matching input_ids {tuple(words.shape)}: this student reads "
                             "sub-word pieces (config.piece_vocab)")
        real = (piece_ids != 0).unsqueeze(-1).to(x.dtype)
        bag = (self.pieces(piece_ids) * real).sum(2) / real.sum(2).clamp(min=1.0)
        return torch.where((words == self.config.unk_token_id).unsqueeze(-1), bag, x)

    def forward(
        self,
        input_ids: torch.Tensor,
        char_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        piece_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if char_ids.shape[:2] != input_ids.shape:
            raise ValueError(
                f"char_ids {tuple(char_ids.shape)} must be (batch, words, chars) matching input_ids "
                f"{tuple(input_ids.shape)}"
            )
        words = input_ids
        if self.training:
            words = word_dropout(input_ids, self.config.word_dropout, self.config.unk_token_id, attention_mask)
        x = torch.cat([self._word_vectors(words, piece_ids), self.chars(char_ids)], dim=-1)
        h = self.encoder(x, attention_mask)
        logits = self.classifier(self.dropout(h))
        return tagging_output(self.crf, logits, labels, (h,) if output_hidden_states else None)
