"""Corpus loaders, registered through the ``xlbench.corpora`` entry-point group."""

from __future__ import annotations

from xlbench.corpora.base import Corpus, Entry, Excluded, ParsedFile, ScanResult, Unknown
from xlbench.registry import Registry

CORPORA: Registry[type[Corpus]] = Registry("xlbench.corpora", "corpus")


def get_corpus(name: str) -> Corpus:
    """An instance of the loader registered as ``name``."""
    return CORPORA.get(name.strip().lower())()


__all__ = ["CORPORA", "Corpus", "Entry", "Excluded", "ParsedFile", "ScanResult", "Unknown", "get_corpus"]
