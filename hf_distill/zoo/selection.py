"""Choosing among benched models: the zoo's score, the Pareto front, the recommendation, and the fastest
backend of a model (the teacher's: the fastest that keeps its F1 within a tolerance of PyTorch's)."""

from __future__ import annotations

BACKENDS = ("pytorch", "onnx", "onnx_int8")


def score(measured: dict) -> float | None:
    """The zoo's quality number of a benched backend: F1 (tagging) or macro-F1 (classification)."""
    return measured.get("f1", measured.get("macro_f1"))


# ------------------------------------------------------------------------------- Pareto and advice
def pareto_front(rows: list[dict], x: str = "latency_ms", y: str = "f1") -> list[str]:
    """Names of the rows no other row beats on both ``x`` (lower is better) and ``y`` (higher is better)."""
    front = []
    for r in rows:
        dominated = any(o is not r and o[x] <= r[x] and o[y] >= r[y] and (o[x] < r[x] or o[y] > r[y]) for o in rows)
        if not dominated:
            front.append(r["name"])
    return sorted(front, key=lambda n: next(r[x] for r in rows if r["name"] == n))


def recommend(rows: list[dict], teacher_f1: float, max_f1_drop: float | None,
              latency_budget_ms: float | None) -> dict:
    """The fastest row within ``max_f1_drop`` F1 points of the teacher and the most accurate row under
    ``latency_budget_ms``, each with the numbers behind it, or a sentence saying that no row qualifies."""
    out = {}
    if max_f1_drop is not None:
        ok = [r for r in rows if 100 * (teacher_f1 - r["f1"]) <= max_f1_drop + 1e-9]
        closest = max(rows, key=lambda r: r["f1"]) if rows else None
        out["within_f1_drop"] = _choice(
            ok, lambda rs: min(rs, key=lambda r: r["latency_ms"]),
            lambda b: f"fastest within {max_f1_drop:g} F1 of the teacher: {b['name']} ({100 * b['f1']:.2f} F1, "
                      f"{100 * (b['f1'] - teacher_f1):+.2f} vs the teacher, {b['latency_ms']:.2f} ms per sentence, "
                      f"{b['backend']})",
            f"no student is within {max_f1_drop:g} F1 of the teacher ({100 * teacher_f1:.2f})"
            + (f"; the closest is {closest['name']} at {100 * closest['f1']:.2f}" if closest else ""))
    if latency_budget_ms is not None:
        ok = [r for r in rows if r["latency_ms"] <= latency_budget_ms]
        fastest = min(rows, key=lambda r: r["latency_ms"]) if rows else None
        out["under_latency_budget"] = _choice(
            ok, lambda rs: max(rs, key=lambda r: r["f1"]),
            lambda b: f"most accurate under {latency_budget_ms:g} ms: {b['name']} ({100 * b['f1']:.2f} F1, "
                      f"{b['latency_ms']:.2f} ms, {b['backend']})",
            f"no student runs under {latency_budget_ms:g} ms per sentence"
            + (f"; the fastest is {fastest['name']} at {fastest['latency_ms']:.2f} ms" if fastest else ""))
    return out


def _choice(candidates: list[dict], pick, describe, none_text: str) -> dict:
    if not candidates:
        return {"name": None, "text": none_text}
    best = pick(candidates)
    return {"name": best["name"], "f1": best["f1"], "latency_ms": best["latency_ms"], "text": describe(best)}


def deployment_point(eff: dict) -> dict:
    """A benched student's fastest backend, its latency and the F1 measured with that backend."""
    s = eff["student"]
    options = [(k, s[k]) for k in ("onnx_int8", "onnx", "pytorch") if k in s and "latency_ms" in s[k]]
    backend, m = min(options, key=lambda kv: kv[1]["latency_ms"])
    return {"backend": backend, "latency_ms": m["latency_ms"], "f1": score(m) if score(m) is not None
            else score(s["pytorch"])}


def fastest_backend(measured: dict, tolerance: float = 0.005) -> dict:
    """The fastest backend of a benched model (``measure_model``'s dict) whose score stays within ``tolerance``
    (a fraction: 0.005 is 0.5 F1) of its PyTorch score: ``{"backend", "latency_ms", "f1"}``."""
    reference = score(measured["pytorch"])
    options = []
    for name in BACKENDS:
        m = measured.get(name)
        if not m or "latency_ms" not in m:
            continue
        f1 = score(m)
        if name == "pytorch" or reference is None or (f1 is not None and f1 >= reference - tolerance - 1e-12):
            options.append((m["latency_ms"], name, f1))
    latency, name, f1 = min(options)
    return {"backend": name, "latency_ms": latency, "f1": f1 if f1 is not None else reference}
