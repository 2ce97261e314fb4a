"""The source declaration: one YAML file per source in `<workspace>/sources/`.

See docs/sources.md for every key with a full example. A source says where its
files land, how to read them, its primary key, its updated-at column, which
columns are PII, and how its columns map to the canonical model
(cdp.model.canonical), like Data Cloud's data-stream to data-model mapping.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cdp.config.yamlio import load_yaml, parse_model
from cdp.errors import ConfigError
from cdp.model.canonical import OBJECTS

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
COLUMN_TYPES = ("string", "integer", "double", "boolean", "date", "timestamp")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    """A declared column type. Values that fail to parse become null and are counted."""

    type: Literal["string", "integer", "double", "boolean", "date", "timestamp"] = "string"
    format: str | None = None  # strptime format for date / timestamp
    required: bool = False  # a row without it is quarantined (the primary key always is)


class FieldMapping(_Strict):
    """How one canonical field is filled: from a column, from several columns joined
    (a street number and a street name), or with a constant value."""

    column: str | None = None
    columns: list[str] | None = None
    separator: str = " "  # between the values of `columns`; empty values are skipped
    value: str | None = None
    format: str | None = None  # strptime format, for date / timestamp fields
    # For `individual_id`: the source whose person records the id refers to.
    source: str | None = None

    @model_validator(mode="after")
    def _one_of(self) -> FieldMapping:
        given = [k for k in ("column", "columns", "value") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `column`, `columns` or `value`")
        if self.columns is not None and not self.columns:
            raise ValueError("`columns` needs at least one column")
        return self

    @property
    def source_columns(self) -> list[str]:
        if self.columns is not None:
            return list(self.columns)
        return [self.column] if self.column else []


ObjectMapping = dict[str, FieldMapping]


class ReadOptions(_Strict):
    delimiter: str = ","
    encoding: str = "utf-8"
    quote: str = '"'
    header: bool = True
    null_values: list[str] = Field(default_factory=lambda: [""])

    @field_validator("delimiter", "quote")
    @classmethod
    def _one_char(cls, v: str) -> str:
        if len(v) != 1:
            raise ValueError(f"must be a single character, got {v!r}")
        return v


class QualitySpec(_Strict):
    max_quarantine_rate: float = Field(0.05, ge=0, le=1)


class SourceSpec(_Strict):
    name: str
    description: str | None = None
    landing: str  # glob relative to the workspace
    format: Literal["csv", "jsonl", "parquet"]
    options: ReadOptions = Field(default_factory=ReadOptions)
    primary_key: Annotated[list[str], Field(min_length=1)]
    updated_at: str | None = None
    # append: every file adds rows (events, changes). snapshot: every file is a full
    # extract, so a key missing from the newest file has been deleted at the source and
    # is deleted downstream too.
    mode: Literal["append", "snapshot"] = "append"
    pii: list[str] = Field(default_factory=list)
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    quality: QualitySpec = Field(default_factory=QualitySpec)
    objects: dict[str, list[ObjectMapping]] = Field(default_factory=dict)

    # --- normalising the short forms of the YAML -----------------------------------
    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(
                f"{v!r} is not a valid source name (lowercase letters, digits and _; "
                "starting with a letter)"
            )
        return v

    @field_validator("landing")
    @classmethod
    def _landing_inside(cls, v: str) -> str:
        # Ingestion reads whatever the glob matches and keeps it in the lake, so a
        # glob reaching out of the workspace (/etc/*, ../../home/*) would copy any
        # file the user can read into the lake, the catalog and the logs.
        if _escapes_workspace(v):
            raise ValueError(
                f"must stay inside the workspace (a glob relative to it, without `..` "
                f"leading out), got {v!r}"
            )
        return v

    @field_validator("primary_key", mode="before")
    @classmethod
    def _pk_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("columns", mode="before")
    @classmethod
    def _column_short_form(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ({"type": t} if isinstance(t, str) else t) for k, t in v.items()}
        return v

    @field_validator("objects", mode="before")
    @classmethod
    def _objects_short_form(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        out: dict[str, Any] = {}
        for obj, mapping in v.items():
            if obj not in OBJECTS:
                raise ValueError(
                    f"unknown canonical object {obj!r} (expected one of: {', '.join(OBJECTS)})"
                )
            mappings = mapping if isinstance(mapping, list) else [mapping]
            norm = []
            for i, m in enumerate(mappings):
                if not isinstance(m, dict):
                    raise ValueError(f"{obj}[{i}]: expected a mapping of canonical field to column")
                norm.append({f: _field_short_form(obj, f, spec) for f, spec in m.items()})
            out[obj] = norm
        return out

    @model_validator(mode="after")
    def _check_objects(self) -> SourceSpec:
        for obj, mappings in self.objects.items():
            co = OBJECTS[obj]
            if len(mappings) > 1 and not co.repeatable:
                raise ValueError(f"objects.{obj}: may be mapped only once per source")
            for i, m in enumerate(mappings):
                where = f"objects.{obj}" + (f"[{i}]" if len(mappings) > 1 else "")
                for f in m:
                    if f not in co.fields:
                        raise ValueError(
                            f"{where}.{f}: unknown canonical field of {obj} "
                            f"(expected one of: {', '.join(co.fields)})"
                        )
                for f in co.required:
                    if f not in m:
                        raise ValueError(f"{where}: field {f!r} must be mapped")
        return self

    # --- what other stages ask --------------------------------------------------------
    @property
    def is_person_source(self) -> bool:
        return any(OBJECTS[o].is_person for o in self.objects)

    def referenced_columns(self) -> set[str]:
        """Every source column the declaration names: key, updated_at, mappings."""
        cols = set(self.primary_key)
        if self.updated_at:
            cols.add(self.updated_at)
        for mappings in self.objects.values():
            for m in mappings:
                for fm in m.values():
                    cols.update(fm.source_columns)
        return cols


def _escapes_workspace(glob: str) -> bool:
    """Absolute, home-relative, or more `..` than folders before them."""
    parts = PurePosixPath(glob.replace("\\", "/"))
    if parts.is_absolute() or PureWindowsPath(glob).drive or glob.startswith("~"):
        return True
    depth = 0
    for part in parts.parts:
        # `**` may match no folder at all, so it cannot pay for a later `..`.
        depth += -1 if part == ".." else 0 if part in (".", "**") else 1
        if depth < 0:
            return True
    return False


def _field_short_form(obj: str, fname: str, spec: Any) -> Any:
    """`first_name: fname` means column fname; party_identification's `type` is a constant."""
    if isinstance(spec, str):
        if obj == "party_identification" and fname == "type":
            return {"value": spec}
        return {"column": spec}
    return spec


def load_source(path: Path) -> SourceSpec:
    data = load_yaml(path)
    spec = parse_model(SourceSpec, data, path)
    if spec.name != Path(path).stem:
        raise ConfigError(path, f"name: {spec.name!r} must equal the file name {Path(path).stem!r}")
    return spec


def load_sources(sources_dir: Path) -> list[SourceSpec]:
    """Every `*.yml` / `*.yaml` in the folder, sorted by name, with cross-source checks."""
    files = sorted([*Path(sources_dir).glob("*.yml"), *Path(sources_dir).glob("*.yaml")])
    specs = [load_source(p) for p in files]
    names = {s.name for s in specs}
    for s, p in zip(specs, files, strict=True):
        for obj, mappings in s.objects.items():
            for m in mappings:
                ref = m.get("individual_id")
                if ref and ref.source and ref.source not in names:
                    raise ConfigError(
                        p,
                        f"objects.{obj}.individual_id.source: unknown source {ref.source!r} "
                        f"(declared: {', '.join(sorted(names))})",
                    )
    return specs
