"""The source declaration: one YAML file per source in `<workspace>/sources/`.

See docs/sources.md for every key with a full example. A source says where its
files land, how to read them, its primary key, its updated-at column, which
columns are PII, and how its columns map to the canonical model
(cdp.model.canonical), like Data Cloud's data-stream to data-model mapping.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cdp.config.yamlio import load_yaml, parse_model
from cdp.errors import ConfigError
from cdp.model.canonical import CONTACT_POINT_OBJECTS, OBJECTS

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
COLUMN_TYPES = ("string", "integer", "double", "boolean", "date", "timestamp")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    """A declared column type. Values that fail to parse become null and are counted."""

    type: Literal["string", "integer", "double", "boolean", "date", "timestamp"] = "string"
    # strptime formats for date / timestamp, tried in order (one string or a list)
    format: list[str] | None = None
    # The decimal mark of integer / double text: "." (1,299.00) or "," (1.299,00).
    decimal: Literal[".", ","] | None = None
    required: bool = False  # a row without it is quarantined (the primary key always is)

    @field_validator("format", mode="before")
    @classmethod
    def _format_list(cls, v: Any) -> Any:
        return _format_list(v)

    @field_validator("format")
    @classmethod
    def _formats_valid(cls, v: list[str] | None) -> list[str] | None:
        for fmt in v or []:
            problem = chrono_format_problem(fmt)
            if problem:
                raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _options_fit_type(self) -> ColumnSpec:
        if self.format and self.type not in ("date", "timestamp"):
            raise ValueError(f"`format` is for date and timestamp columns, not {self.type}")
        if self.decimal and self.type not in ("integer", "double"):
            raise ValueError(f"`decimal` is for integer and double columns, not {self.type}")
        return self


class FieldMapping(_Strict):
    """How one canonical field is filled: from a column, from several columns joined
    (a street number and a street name), or with a constant value. `individual_id` may
    instead name its person by a contact point: `email` or `phone`."""

    column: str | None = None
    columns: list[str] | None = None
    separator: str = " "  # between the values of `columns`; empty values are skipped
    value: str | None = None
    # For `individual_id` only: the row names its person by an email or a phone number,
    # matched to unified individuals after identity resolution.
    email: str | None = None
    phone: str | None = None
    # strptime formats for date / timestamp fields, tried in order (a string or a list).
    format: list[str] | None = None
    # Source value -> canonical value (compared trimmed and case-insensitively). A value
    # not in the map becomes null and is counted; a key mapped to null is known but empty.
    map: dict[str, str | None] | None = None
    # For `individual_id`: the source whose person records the id refers to.
    source: str | None = None

    @field_validator("format", mode="before")
    @classmethod
    def _format_list(cls, v: Any) -> Any:
        return _format_list(v)

    @field_validator("map", mode="before")
    @classmethod
    def _map_keys(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        out: dict[str, Any] = {}
        for k, target in v.items():
            for what, x in (("key", k), ("value", target)):
                if isinstance(x, bool):
                    raise ValueError(
                        f"the {what} {str(x).lower()} was read by YAML as a boolean (unquoted "
                        'yes/no/true/false/on/off): quote it, e.g. {"yes": granted}'
                    )
            key = str(k).strip().lower() if not isinstance(k, str) else k.strip().lower()
            if key in out:
                raise ValueError(
                    f"the key {k!r} is given twice (keys are compared case-insensitively)"
                )
            out[key] = str(target) if isinstance(target, int | float) else target
        return out

    @model_validator(mode="after")
    def _one_of(self) -> FieldMapping:
        kinds = ("column", "columns", "value", "email", "phone")
        given = [k for k in kinds if getattr(self, k) is not None]
        if len(given) != 1:
            if self.email is not None or self.phone is not None:
                raise ValueError("give exactly one of `column`, `email` or `phone`")
            raise ValueError("give exactly one of `column`, `columns` or `value`")
        if self.columns is not None and not self.columns:
            raise ValueError("`columns` needs at least one column")
        if self.map is not None and self.value is not None:
            raise ValueError("`map` translates the values of a column; a `value` is a constant")
        for fmt in self.format or []:
            problem = duckdb_format_problem(fmt)
            if problem:
                raise ValueError(problem)
        return self

    @property
    def source_columns(self) -> list[str]:
        if self.columns is not None:
            return list(self.columns)
        for one in (self.column, self.email, self.phone):
            if one:
                return [one]
        return []


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
                for f, fm in m.items():
                    if f not in co.fields:
                        raise ValueError(
                            f"{where}.{f}: unknown canonical field of {obj} "
                            f"(expected one of: {', '.join(co.fields)})"
                        )
                    problem = _field_problem(co, f, fm)
                    if problem:
                        raise ValueError(f"{where}.{f}: {problem}")
                for f in co.required:
                    if f not in m:
                        raise ValueError(f"{where}: field {f!r} must be mapped")
        belongs = [o for o in self.objects if o in CONTACT_POINT_OBJECTS]
        if belongs and not self.is_person_source:
            raise ValueError(
                f"objects.{belongs[0]}: contact points and identifiers belong to the person "
                "record of each row, so this source must also map `individual`. For login "
                "events that tie a cookie to an account, map engagement_web: {anonymous_id: "
                "<cookie column>, individual_id: {column: <account column>, source: <the "
                "accounts source>}} (docs/sources.md, Login events)"
            )
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


def _format_list(v: Any) -> Any:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and not v:
        raise ValueError("`format` needs at least one format")
    return v


# strftime directives polars (chrono) reads, for formats of `columns:` (parsed at ingestion).
_CHRONO = re.compile(r"%(?:[-_0]?[YCymbBhdeaAwuUWGgVjDxFvHkIlPpMSZsntRTXrc%+]|\.?[369]?f|:?z)")


def chrono_format_problem(fmt: str) -> str | None:
    """Why a strptime format cannot be used for a declared column, or None."""
    rest = _CHRONO.sub("", fmt)
    if "%" in rest:
        bad = rest[rest.index("%") : rest.index("%") + 2]
        return f"format {fmt!r}: unknown directive {bad!r}"
    if not _CHRONO.search(fmt):
        return f"format {fmt!r} has no % directive (e.g. %Y-%m-%d)"
    return None


@functools.cache  # a fresh DuckDB per call cost about 20 ms, for each field of each source
def duckdb_format_problem(fmt: str) -> str | None:
    """Why DuckDB's strptime (used by dbt for field formats) cannot use a format, or None."""
    import duckdb

    if "%" not in fmt:
        return f"format {fmt!r} has no % directive (e.g. %Y-%m-%d)"
    try:
        duckdb.connect().execute("select try_strptime('', $1)", [fmt])
    except duckdb.Error as e:
        return f"format {fmt!r}: {str(e).splitlines()[0].split(': ', 1)[-1]}"
    return None


def _field_problem(co, fname: str, fm: FieldMapping) -> str | None:
    """What is wrong with a field mapping given the canonical field it fills, or None."""
    ctype = co.fields[fname]
    if fname == "individual_id":
        if fm.value is not None or fm.columns is not None:
            return "give exactly one of `column`, `email` or `phone`"
        if fm.source is not None and fm.column is None:
            return (
                "`source` goes with `column`: an email or phone names the person "
                "whichever source holds it"
            )
    elif fm.email is not None or fm.phone is not None:
        return "`email` and `phone` name a person: they are for `individual_id` only"
    elif fm.source is not None:
        return "`source` is for `individual_id` only"
    if fm.format and ctype not in ("date", "timestamp"):
        return f"`format` is for date and timestamp fields; {fname} is {ctype}"
    if fm.map is not None and ctype != "varchar":
        return f"`map` is for text fields; {fname} is {ctype}"
    allowed = co.enums.get(fname)
    if allowed:
        given = list((fm.map or {}).values()) + ([fm.value] if fm.value is not None else [])
        wrong = sorted({v for v in given if v is not None and v.strip().lower() not in allowed})
        if wrong:
            return f"{', '.join(map(repr, wrong))} is not one of {', '.join(allowed)}"
    return None


def _field_short_form(obj: str, fname: str, spec: Any) -> Any:
    """`first_name: fname` means column fname; party_identification's `type` is a constant."""
    if isinstance(spec, str):
        if obj == "party_identification" and fname == "type":
            return {"value": spec}
        return {"column": spec}
    return spec


def load_source(path: Path) -> SourceSpec:
    data = load_yaml(path)
    try:
        spec = parse_model(SourceSpec, data, path)
    except ConfigError as e:
        raise ConfigError(path, _yaml_keys(e.detail, data)) from None
    if spec.name != Path(path).stem:
        raise ConfigError(path, f"name: {spec.name!r} must equal the file name {Path(path).stem!r}")
    return spec


def _yaml_keys(message: str, data: dict) -> str:
    """pydantic's `objects.x.0.field` as the YAML reads: `objects.x.field` for a single
    mapping, `objects.x[1].field` in a list."""
    objects = data.get("objects") if isinstance(data, dict) else None

    def key(m: re.Match) -> str:
        single = isinstance(objects, dict) and isinstance(objects.get(m[1]), dict)
        return f"objects.{m[1]}." if single else f"objects.{m[1]}[{m[2]}]."

    return re.sub(r"objects\.(\w+)\.(\d+)\.", key, message)


def load_sources(sources_dir: Path) -> list[SourceSpec]:
    """Every `*.yml` / `*.yaml` in the folder, sorted by name, with cross-source checks."""
    files = sorted([*Path(sources_dir).glob("*.yml"), *Path(sources_dir).glob("*.yaml")])
    specs = [load_source(p) for p in files]
    problems = reference_problems(specs, files)
    if problems:
        raise problems[0]
    return specs


def reference_problems(specs: list[SourceSpec], files: list[Path]) -> list[ConfigError]:
    """`individual_id` names a person record: of a declared source that maps `individual`."""
    problems: list[ConfigError] = []
    names = {s.name for s in specs}
    persons = sorted(s.name for s in specs if s.is_person_source)
    for s, p in zip(specs, files, strict=True):
        for obj, mappings in s.objects.items():
            for m in mappings:
                ref = m.get("individual_id")
                if not ref or ref.column is None:
                    continue
                key = f"objects.{obj}.individual_id"
                target = ref.source or s.name
                if ref.source and ref.source not in names:
                    problems.append(
                        ConfigError(
                            p,
                            f"{key}.source: unknown source {ref.source!r} "
                            f"(declared: {', '.join(sorted(names))})",
                        )
                    )
                elif target not in persons:
                    where = f"{key}.source" if ref.source else key
                    problems.append(
                        ConfigError(
                            p,
                            f"{where}: {target} maps no `individual`, so its rows are not person "
                            f"records; name the person source the id belongs to with `source:` "
                            f"(person sources: {', '.join(persons) or 'none declared'}), or name "
                            "the person by a contact point: {email: <column>} or {phone: <column>}",
                        )
                    )
    return problems
