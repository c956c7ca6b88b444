"""Readers, label schemes, the dataset registry and sub-word alignment."""

from .align import DISTILL_MASK, IGNORE_INDEX, TruncationReport, tokenize_and_align, tokenize_text, word_level
from .readers import DataFormatError, build_text_dataset, build_token_dataset, read_column_file
from .registry import DATA_DIR_ENV, REGISTRY, load_dataset, load_local
from .schemes import (
    SUC_TO_CONLL,
    TagSchemeError,
    convert_scheme,
    io_to_iob2,
    iob1_to_iob2,
    map_entity_types,
    validate_iob2,
)

__all__ = [
    "DATA_DIR_ENV", "DISTILL_MASK", "IGNORE_INDEX", "REGISTRY", "SUC_TO_CONLL", "DataFormatError",
    "TagSchemeError", "TruncationReport", "build_text_dataset", "build_token_dataset", "convert_scheme",
    "io_to_iob2", "iob1_to_iob2", "load_dataset", "load_local", "map_entity_types", "read_column_file",
    "tokenize_and_align", "tokenize_text", "validate_iob2", "word_level",
]
