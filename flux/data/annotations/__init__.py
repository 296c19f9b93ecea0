"""Annotation parsers, one per published format; importing the package registers them all."""

from flux.data.annotations import chat, classification, kinetics, retrieval  # noqa: F401  (registration)
from flux.data.annotations.base import (
    PARSERS,
    AnnotationFiles,
    AnnotationRecord,
    ParsedAnnotations,
    parse,
)

__all__ = ["PARSERS", "AnnotationFiles", "AnnotationRecord", "ParsedAnnotations", "parse"]
