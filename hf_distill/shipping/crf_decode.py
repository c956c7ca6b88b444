"""Numpy inference for a served CRF student: Viterbi paths and path probabilities, for one row or a batch.

A batch holds rows of different lengths padded to the longest: ``emissions`` is (rows, positions, labels) and
``lengths`` says how many positions of each row are real. Padded steps carry a row's state through unchanged,
so each row's answer equals the one-row function's on its own positions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def viterbi(emissions: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray) -> list[int]:
    """Best tag sequence for one (length, labels) emission matrix (numpy, for ONNX inference)."""
    score = start + emissions[0]
    back = []
    for t in range(1, len(emissions)):
        cand = score[:, None] + transitions
        back.append(cand.argmax(0))
        score = cand.max(0) + emissions[t]
    best = [int((score + end).argmax())]
    for ptr in reversed(back):
        best.append(int(ptr[best[-1]]))
    return best[::-1]


def _by_length(lengths: Sequence[int], steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows' order from longest to shortest, and for each position how many rows still have it: a step then
    works on a prefix of the sorted rows."""
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    return order, (lengths[:, None] > np.arange(steps)[None]).sum(0)


def viterbi_batch(emissions: np.ndarray, lengths: Sequence[int], transitions: np.ndarray, start: np.ndarray,
                  end: np.ndarray) -> list[list[int]]:
    """:func:`viterbi` for each row of a padded (rows, positions, labels) batch, in one recursion over positions.

    Args:
        emissions: the rows' emissions, padded along positions (the padding's values are never read).
        lengths: each row's number of real positions (0 gives an empty path).
        transitions, start, end: the CRF potentials.
    """
    rows, steps, _ = emissions.shape
    if steps == 0:
        return [[] for _ in range(rows)]
    if rows == 1:  # one row: the one-row recursion has less to do per position
        return [viterbi(emissions[0, : lengths[0]], transitions, start, end) if lengths[0] else []]
    order, live = _by_length(lengths, steps)
    em = emissions[order]
    score = start + em[:, 0]
    back = []
    for t in range(1, steps):
        k = live[t]
        cand = score[:k, :, None] + transitions
        back.append(cand.argmax(1))
        score[:k] = cand.max(1) + em[:k, t]
    tag = (score + end).argmax(-1)
    tags = np.empty((rows, steps), dtype=np.int64)
    for t in range(steps - 1, 0, -1):  # a row past its end keeps its last tag until its own positions begin
        tags[:, t] = tag
        k = live[t]
        tag[:k] = back[t - 1][np.arange(k), tag[:k]]
    tags[:, 0] = tag
    paths = [None] * rows
    for i, row in enumerate(order):
        paths[row] = tags[i, : lengths[row]].tolist()
    return paths


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = x.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(x - top).sum(axis=axis, keepdims=True))).squeeze(axis)


def crf_path_probability_log(emissions: np.ndarray, crf: dict, path: Sequence[int]) -> float:
    """The probability of one tag ``path`` of one row, in log space (float64): the forward recursion for log Z,
    then the path's score. Slower than the rescaled recursion; used where that one under- or overflows."""
    em = np.asarray(emissions, dtype=np.float64)
    trans, start, end = (np.asarray(crf[k], dtype=np.float64) for k in ("transitions", "start", "end"))
    alpha = start + em[0]
    for t in range(1, len(em)):
        alpha = _logsumexp(alpha[:, None] + trans, axis=0) + em[t]
    log_z = _logsumexp(alpha + end, axis=0)
    p = list(path)
    score = start[p[0]] + em[0, p[0]] + end[p[-1]]
    score += sum(trans[a, b] + em[t + 1, b] for t, (a, b) in enumerate(zip(p, p[1:])))
    return float(np.exp(score - log_z))


def crf_path_probability(emissions: np.ndarray, crf: dict, path: Sequence[int]) -> float:
    """``exp(score(path) - log Z)`` for one row's (length, labels) emissions and tag ``path``: a forward recursion
    in probability space, rescaled at every position (float64), or :func:`crf_path_probability_log` where that
    under- or overflows."""
    em = np.asarray(emissions, dtype=np.float64)
    trans, start, end = (np.asarray(crf[k], dtype=np.float64) for k in ("transitions", "start", "end"))
    shift = em.max(-1)
    scaled = np.exp(em - shift[:, None])
    e_trans = np.exp(trans)
    alpha = np.exp(start) * scaled[0]
    log_z = shift.sum()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for t in range(1, len(em)):
            total = alpha.sum()
            log_z += np.log(total)
            alpha = (alpha / total) @ e_trans * scaled[t]
        log_z += np.log(alpha @ np.exp(end))
    if not np.isfinite(log_z):
        return crf_path_probability_log(em, crf, path)
    p = np.asarray(path)
    score = start[p[0]] + end[p[-1]] + em[np.arange(len(p)), p].sum() + trans[p[:-1], p[1:]].sum()
    return float(np.exp(score - log_z))


def path_probabilities(emissions: np.ndarray, lengths: Sequence[int], paths: Sequence[Sequence[int]],
                       crf: dict) -> np.ndarray:
    """``exp(score(path) - log Z)`` for each row of a padded batch, by a rescaled forward recursion in probability
    space (float64); a row whose rescaled sum under- or overflows is computed again in log space.

    Args:
        emissions: (rows, positions, labels), padded along positions.
        lengths: each row's number of real positions; a row of length 0 has probability 1.
        paths: each row's tag ids (e.g. its Viterbi path), ``lengths[i]`` of them.
        crf: ``transitions`` (labels, labels), ``start`` and ``end`` (labels,) potentials.
    """
    em = np.asarray(emissions, dtype=np.float64)
    rows, steps, _ = em.shape
    lengths = np.asarray(lengths)
    if steps == 0:
        return np.ones(rows)
    if rows == 1:  # one row: the one-row recursion has less to do per position
        return np.asarray([crf_path_probability(em[0, : lengths[0]], crf, paths[0]) if lengths[0] else 1.0])
    trans, start, end = (np.asarray(crf[k], dtype=np.float64) for k in ("transitions", "start", "end"))
    real = np.arange(steps)[None] < lengths[:, None]
    shift = np.where(real, em.max(-1), 0.0)
    order, live = _by_length(lengths, steps)
    scaled = np.exp(em[order] - shift[order][:, :, None])
    e_trans = np.exp(trans)
    alpha = np.exp(start) * scaled[:, 0]
    sorted_log_z = np.zeros(rows)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # such rows are redone in log space
        for t in range(1, steps):
            k = live[t]
            total = alpha[:k].sum(-1, keepdims=True)
            sorted_log_z[:k] += np.log(total[:, 0])
            alpha[:k] = (alpha[:k] / total) @ e_trans * scaled[:k, t]
        sorted_log_z += np.log(alpha @ np.exp(end))
    log_z = np.empty(rows)
    log_z[order] = sorted_log_z
    log_z += shift.sum(-1)
    tags = np.zeros((rows, steps), dtype=np.int64)
    for i, path in enumerate(paths):
        tags[i, : len(path)] = path
    every = np.arange(rows)
    last = tags[every, np.maximum(lengths - 1, 0)]
    score = start[tags[:, 0]] + end[last]
    score += np.where(real, np.take_along_axis(em, tags[:, :, None], -1)[:, :, 0], 0.0).sum(-1)
    score += np.where(real[:, 1:], trans[tags[:, :-1], tags[:, 1:]], 0.0).sum(-1)
    out = np.where(lengths > 0, np.exp(score - log_z), 1.0)
    for i in np.flatnonzero((lengths > 0) & ~np.isfinite(log_z)):
        out[i] = crf_path_probability_log(em[i, : lengths[i]], crf, paths[i])
    return out
