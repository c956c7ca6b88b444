"""Tagging schemes: IOB1/IO to IOB2 conversion, IOB2 validation and entity-type maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

OUTSIDE = "O"
_OUTSIDE_SPELLINGS = frozenset({"O", "0"})

#: SUC 3.0 name types mapped to the CoNLL types (Hagström & Johansson 2021).
SUC_TO_CONLL: dict[str, str] = {
    "person": "PER", "animal": "PER", "myth": "PER",
    "place": "LOC",
    "inst": "ORG", "institution": "ORG",
    "product": "MISC", "work": "MISC", "event": "MISC", "other": "MISC",
}


class TagSchemeError(ValueError):
    """A tag sequence that breaks the declared scheme."""


def iob_shaped(tag: str) -> bool:
    """Whether ``tag`` is ``O`` (or ``0``), ``B-X`` or ``I-X``."""
    return tag in _OUTSIDE_SPELLINGS or (len(tag) > 2 and tag[1] == "-" and tag[0] in "BI")


def split_tag(tag: str) -> tuple[str, str | None]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", None)``; a bare type ``"PER"`` -> ``("I", "PER")``."""
    if tag in _OUTSIDE_SPELLINGS:
        return OUTSIDE, None
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BI":
        return tag[0], tag[2:]
    return "I", tag


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 (``I-`` opens an entity, ``B-`` only between adjacent same-type entities) to IOB2."""
    out: list[str] = []
    prev_type: str | None = None
    for tag in tags:
        prefix, typ = split_tag(tag)
        if typ is None:
            out.append(OUTSIDE)
        elif prefix == "B" or typ != prev_type:
            out.append(f"B-{typ}")
        else:
            out.append(f"I-{typ}")
        prev_type = typ
    return out


def io_to_iob2(tags: Sequence[str]) -> list[str]:
    """IO tags (bare types, ``0`` or ``O`` outside) to IOB2. Adjacent same-type entities merge (IO cannot tell)."""
    return iob1_to_iob2(tags)


def validate_iob2(tags: Sequence[str], where: str = "", strict: bool = True) -> None:
    """Raise :class:`TagSchemeError` for an ``I-X`` that follows ``O`` or another type (only if ``strict``)."""
    if not strict:
        return
    prev_type: str | None = None
    for i, tag in enumerate(tags):
        prefix, typ = split_tag(tag)
        if not iob_shaped(tag):
            raise TagSchemeError(f"{where}tag {tag!r} at token {i} is not IOB2 (expected O, B-X or I-X)")
        if prefix == "I" and typ != prev_type:
            before = "O" if prev_type is None else f"a {prev_type} tag"
            raise TagSchemeError(f"{where}tag {tag!r} at token {i} follows {before} (invalid in strict IOB2)")
        prev_type = typ


def repair_iob2(tags: Sequence[str]) -> tuple[list[str], int]:
    """Read tags as conlleval does: an ``I-X`` that follows ``O`` or another type opens an entity, so it
    becomes ``B-X``. Returns the repaired tags and how many were changed."""
    out, changed, prev_type = [], 0, None
    for tag in tags:
        prefix, typ = split_tag(tag)
        if prefix == "I" and typ is not None and typ != prev_type and tag[:2] == "I-":
            out.append(f"B-{typ}")
            changed += 1
        else:
            out.append(tag)
        prev_type = typ
    return out, changed


def map_entity_types(tags: Sequence[str], type_map: Mapping[str, str], drop_unknown: bool = False) -> list[str]:
    """Rename entity types (``B-person`` -> ``B-PER``); unknown types raise unless ``drop_unknown`` makes them ``O``."""
    out = []
    for tag in tags:
        prefix, typ = split_tag(tag)
        if typ is None:
            out.append(OUTSIDE)
        elif typ in type_map:
            out.append(f"{prefix}-{type_map[typ]}")
        elif drop_unknown:
            out.append(OUTSIDE)
        else:
            raise KeyError(f"entity type {typ!r} has no entry in the type map (known: {sorted(type_map)})")
    return out


def convert_scheme(tags: Sequence[str], scheme: str) -> list[str]:
    """Convert ``tags`` written in ``scheme`` (``iob2``, ``iob1``, ``io``) to IOB2."""
    if scheme == "iob2":
        return [OUTSIDE if t in _OUTSIDE_SPELLINGS else t for t in tags]
    if scheme == "iob1":
        return iob1_to_iob2(tags)
    if scheme == "io":
        return io_to_iob2(tags)
    raise ValueError(f"unknown tagging scheme {scheme!r}; use 'iob2', 'iob1' or 'io'")
