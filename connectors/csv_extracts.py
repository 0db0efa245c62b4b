"""CSV extracts (ambulance CAD incident logs, ECDS-like ED extracts) to canonical events, by a column mapping.

An extract has one row per incident or attendance, with one column per milestone time. The mapping
(``config/extracts/<kind>.yaml``) lists the canonical events a row can give: each names the column holding its time
(no time, no event) and where each of its fields comes from (a column, optionally through a code table, or a
constant). A row is all or nothing: any error rejects the row with ``file:line: column: reason`` and the good rows
are kept.

Event ids are ``{source}:{incident or attendance id}:{event name}``, so importing the same extract twice, or
overlapping extracts, changes nothing downstream (a redelivered id is a duplicate).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from connectors.hl7.config import load_yaml_model
from connectors.hl7.timestamps import LocalTimeError, LocalTimePolicy
from schemas.config import CONFIG_DIR, ConfigError, Icb
from schemas.events import EVENT_MODELS, Envelope, describe_error

EXTRACTS_DIR = CONFIG_DIR / "extracts"
KINDS = ("ambulance", "ed")
ID_FIELD = {"ambulance": "incident_id", "ed": "attendance_id"}
TRUE_WORDS = frozenset({"y", "yes", "true", "t", "1"})
FALSE_WORDS = frozenset({"n", "no", "false", "f", "0"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Strict):
    """Where one canonical field comes from: a ``column`` (through ``map`` when given) or a ``const``."""

    column: str | None = None
    const: Any = None
    map: dict[str, Any] | None = None
    type: Literal["str", "int", "bool"] = "str"
    optional: bool = False
    default: Any = None
    """Used for an empty optional cell, or for a code missing from ``map``."""

    @model_validator(mode="after")
    def _one_source(self) -> ColumnSpec:
        if (self.column is None) == (self.const is None):
            raise ValueError("give exactly one of column or const")
        return self


def _spec(value: Any) -> Any:
    return {"column": value} if isinstance(value, str) else value


class Condition(_Strict):
    """Produce the event only when ``column`` holds one of ``values`` (e.g. a record status of "deleted")."""

    column: str
    values: list[str]


class EventSpec(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    event_type: str
    time: str
    only_if: Condition | None = None
    fields: dict[str, ColumnSpec] = Field(default_factory=dict)

    @field_validator("fields", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {k: _spec(v) for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("event_type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in EVENT_MODELS:
            raise ValueError(f"unknown event type {value!r}")
        return value


class ExtractMapping(_Strict):
    """``config/extracts/<kind>.yaml``."""

    kind: Literal["ambulance", "ed"]
    source: Annotated[str, Field(min_length=1, max_length=64)]
    id: str
    org_code: ColumnSpec
    site_code: ColumnSpec | None = None
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    encoding: str = "utf-8-sig"
    timestamp_formats: list[str] = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M"]
    local_time: LocalTimePolicy = LocalTimePolicy()
    events: list[EventSpec]

    parse_specs = field_validator("org_code", "site_code", mode="before")(_spec)

    @model_validator(mode="after")
    def _family(self) -> ExtractMapping:
        names = [e.name for e in self.events]
        if len(set(names)) != len(names):
            raise ValueError("event names must be unique (they make the event ids)")
        for spec in self.events:
            if not spec.event_type.startswith(self.kind + "."):
                raise ValueError(f"event {spec.name}: {spec.event_type} is not an {self.kind} event")
        return self

    def columns(self, *, required_only: bool) -> set[str]:
        """Columns the mapping reads (only those it cannot do without, when ``required_only``)."""
        specs: list[ColumnSpec] = [self.org_code, *([self.site_code] if self.site_code else [])]
        cols = {self.id}
        for event in self.events:
            cols.add(event.time)
            if event.only_if:
                cols.add(event.only_if.column)
            specs.extend(event.fields.values())
        cols |= {s.column for s in specs if s.column and not (required_only and s.optional)}
        return cols


def load_extract_mapping(kind: str, path: Path | None = None) -> ExtractMapping:
    """The mapping for ``kind`` (``config/extracts/<kind>.yaml`` unless ``path``); ConfigError saying where."""
    mapping = load_yaml_model(Path(path or EXTRACTS_DIR / f"{kind}.yaml"), ExtractMapping)
    if mapping.kind != kind:
        raise ConfigError(f"{path}: kind is {mapping.kind!r}, not {kind!r}")
    return mapping


@dataclass(frozen=True, slots=True)
class RowError:
    path: Path
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.column}: {self.reason}"


@dataclass
class ExtractResult:
    events: list[Envelope] = field(default_factory=list)
    rows: int = 0
    rows_rejected: int = 0
    errors: list[RowError] = field(default_factory=list)


class _RowFailed(Exception):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column, self.reason = column, reason


class ExtractReader:
    """Reads extracts with one mapping; :meth:`read` gives the events of the good rows and an error per bad one."""

    def __init__(self, mapping: ExtractMapping, icb: Icb | None = None) -> None:
        self.mapping = mapping
        self.icb = icb

    def read(self, paths: list[Path]) -> ExtractResult:
        result = ExtractResult()
        for path in paths:
            for item in self._rows(Path(path)):
                if isinstance(item, RowError):
                    result.errors.append(item)
                    if item.line > 1:
                        result.rows += 1
                        result.rows_rejected += 1
                    continue
                result.rows += 1
                result.events.extend(item)
        return result

    def _rows(self, path: Path) -> Iterator[list[Envelope] | RowError]:
        m = self.mapping
        try:
            handle = open(path, encoding=m.encoding, newline="")  # noqa: SIM115 - closed below
        except OSError as exc:
            yield RowError(path, 0, "-", f"cannot read ({exc.strerror})")
            return
        with handle:
            reader = csv.DictReader(handle, delimiter=m.delimiter)
            try:
                header = set(reader.fieldnames or [])
            except (csv.Error, UnicodeDecodeError) as exc:
                yield RowError(path, 1, "-", f"header unreadable ({exc})")
                return
            missing = sorted(m.columns(required_only=True) - header)
            if missing:
                yield RowError(path, 1, ", ".join(missing), "column(s) missing from the header: no row can be read")
                return
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except (csv.Error, UnicodeDecodeError) as exc:
                    yield RowError(path, reader.line_num, "-", f"not readable as CSV ({exc})")
                    break
                line = reader.line_num
                if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                    continue  # blank line
                try:
                    yield self._row(row)
                except _RowFailed as exc:
                    yield RowError(path, line, exc.column, exc.reason)

    def _cell(self, row: dict[str, Any], column: str) -> str:
        value = row.get(column)
        return value.strip() if isinstance(value, str) else ""

    def _value(self, row: dict[str, Any], spec: ColumnSpec, name: str) -> Any:
        if spec.const is not None:
            return spec.const
        column = spec.column or ""
        text = self._cell(row, column)
        if not text:
            if spec.optional:
                return spec.default
            raise _RowFailed(column, f"{name}: empty")
        if spec.map is not None:
            if text in spec.map:
                return spec.map[text]
            if spec.default is not None:
                return spec.default
            raise _RowFailed(column, f"{name}: code {text!r} is not in the mapping")
        if spec.type == "int":
            try:
                return int(text)
            except ValueError:
                raise _RowFailed(column, f"{name}: {text!r} is not a whole number") from None
        if spec.type == "bool":
            if text.lower() in TRUE_WORDS:
                return True
            if text.lower() in FALSE_WORDS:
                return False
            raise _RowFailed(column, f"{name}: {text!r} is not yes/no")
        return text

    def _time(self, text: str, column: str) -> dt.datetime:
        parsed: dt.datetime | None = None
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            for fmt in self.mapping.timestamp_formats:
                try:
                    parsed = dt.datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
        if parsed is None:
            raise _RowFailed(
                column, f"{text!r} is not a timestamp (ISO 8601 or {', '.join(self.mapping.timestamp_formats)})"
            )
        if parsed.tzinfo is None:
            try:
                parsed = self.mapping.local_time.localise(parsed)
            except LocalTimeError as exc:
                raise _RowFailed(column, str(exc)) from None
        return parsed.astimezone(dt.UTC)

    def _row(self, row: dict[str, Any]) -> list[Envelope]:
        m = self.mapping
        entity = self._cell(row, m.id)
        if not entity:
            raise _RowFailed(m.id, f"{ID_FIELD[m.kind]}: empty")
        envelope = {
            "source": m.source,
            "org_code": self._value(row, m.org_code, "org_code"),
            ID_FIELD[m.kind]: entity,
        }
        site = self._value(row, m.site_code, "site_code") if m.site_code else None
        if site is not None:
            envelope["site_code"] = site
        events = []
        for spec in m.events:
            if spec.only_if and self._cell(row, spec.only_if.column) not in spec.only_if.values:
                continue
            text = self._cell(row, spec.time)
            if not text:
                continue
            data: dict[str, Any] = {
                **envelope,
                "event_type": spec.event_type,
                "event_id": f"{m.source}:{entity}:{spec.name}",
                "occurred_at": self._time(text, spec.time),
            }
            columns = {"occurred_at": spec.time, ID_FIELD[m.kind]: m.id, "org_code": m.org_code.column or "org_code"}
            for name, field_spec in spec.fields.items():
                value = self._value(row, field_spec, name)
                columns[name] = field_spec.column or name
                if value is not None:
                    data[name] = value
            try:
                events.append(EVENT_MODELS[spec.event_type].model_validate(data))
            except ValidationError as exc:
                first = exc.errors(include_url=False)[0]
                loc = [p for p in first["loc"] if p not in EVENT_MODELS]
                column = columns.get(str(loc[0]) if loc else "", spec.time)
                raise _RowFailed(column, f"{spec.event_type}: {describe_error(exc)}") from None
            self._check_known(events[-1], columns)
        return events

    def _check_known(self, event: Envelope, columns: dict[str, str]) -> None:
        """Codes the ICB does not know fail the row here (the engine would reject those events one by one)."""
        if self.icb is None:
            return
        if event.org_code not in self.icb.orgs:
            raise _RowFailed(
                columns["org_code"], f"org_code: {event.org_code!r} is not an organisation of {self.icb.code}"
            )
        if event.site_code is not None and event.site_code not in self.icb.sites:
            column = columns.get("site_code") or (self.mapping.site_code.column if self.mapping.site_code else None)
            raise _RowFailed(column or "site_code", f"site_code: {event.site_code!r} is not a site of {self.icb.code}")
