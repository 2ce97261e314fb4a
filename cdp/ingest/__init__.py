"""Declarative ingestion: landed files into the typed, partitioned raw zone of the lake."""

from cdp.ingest.ingest import (
    FileResult,
    IngestResult,
    ingest_source,
    landed_files,
    pending_files,
    raw_glob,
)
from cdp.ingest.manifest import read_manifest

__all__ = [
    "FileResult",
    "IngestResult",
    "ingest_source",
    "landed_files",
    "pending_files",
    "raw_glob",
    "read_manifest",
]
