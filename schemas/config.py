"""ICB configuration and versioned targets: models and loading with errors that say where.

What changes by place and year lives in YAML under ``config/``, never in code (DESIGN.md): the ICB's organisations,
sites, ED department types and adult G&A bed bases (``config/icb/*.yaml``) and the targets by financial year
(``config/targets/*.yaml``, national) merged with the ICB's own local targets.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.events import DepartmentType, OdsCode
from schemas.opel import OpelFramework

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
DEFAULT_ICB_FILE = CONFIG_DIR / "icb" / "llr.yaml"
TARGETS_DIR = CONFIG_DIR / "targets"
DEFAULT_OPEL_FILE = CONFIG_DIR / "opel" / "default-2024-26.yaml"


class ConfigError(ValueError):
    """A configuration file that does not validate; the message names the file, the field and the line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Site(_Strict):
    code: OdsCode
    name: str
    ed_department_types: list[DepartmentType] = Field(default_factory=list)
    adult_ga_beds: Annotated[int, Field(ge=0)] = 0


class Organisation(_Strict):
    code: OdsCode
    name: str
    kind: Literal["acute", "ambulance", "community", "mental_health", "other"]
    sites: list[Site] = Field(default_factory=list)


Comparison = Literal[">=", ">", "<=", "<"]


class Target(_Strict):
    """A threshold for one indicator: ``value OP target`` is green; within ``amber_within`` of it, amber; else red.

    ``alert_margin`` is the hysteresis: an alert raised on crossing is resolved only once the value is back past the
    target by this margin.
    """

    op: Comparison
    value: float
    amber_within: Annotated[float, Field(ge=0)] = 0.0
    alert_margin: Annotated[float, Field(ge=0)] = 0.0
    effective_from: dt.date | None = None
    source: str

    @property
    def higher_is_better(self) -> bool:
        return self.op in (">=", ">")


class TargetYear(_Strict):
    """Targets for one financial year (1 April to 31 March, local dates)."""

    financial_year: Annotated[str, Field(pattern=r"^\d{4}/\d{2}$")]
    provisional: bool = Field(False, description="true where the values are carried forward without a source")
    targets: dict[str, Target]

    @property
    def starts(self) -> dt.date:
        return dt.date(int(self.financial_year[:4]), 4, 1)


class Icb(_Strict):
    code: OdsCode
    name: str
    synthetic_figures: bool = Field(description="true where bed bases and the like are made up for demonstration")
    organisations: list[Organisation]
    opel_file: Path | None = Field(
        None, description="the ICB's OPEL framework file; default config/opel/default-2024-26.yaml"
    )
    local_targets: dict[str, dict[str, Target]] = Field(
        default_factory=dict, description="financial year -> indicator -> target; overrides the national file"
    )

    @model_validator(mode="after")
    def _unique_codes(self) -> Icb:
        seen: set[str] = set()
        for org in self.organisations:
            for code in (org.code, *(s.code for s in org.sites)):
                if code in seen:
                    raise ValueError(f"organisation/site code {code!r} appears twice")
                seen.add(code)
        return self

    @cached_property
    def org_of_site(self) -> dict[str, str]:
        return {s.code: o.code for o in self.organisations for s in o.sites}

    @cached_property
    def orgs(self) -> dict[str, Organisation]:
        return {o.code: o for o in self.organisations}

    @cached_property
    def sites(self) -> dict[str, Site]:
        return {s.code: s for o in self.organisations for s in o.sites}


class PlatformConfig(_Strict):
    """Everything the indicator engine needs: the ICB, the targets by financial year and the OPEL framework."""

    icb: Icb
    target_years: dict[str, TargetYear]
    opel: OpelFramework

    def target_for(self, indicator: str, local_date: dt.date) -> Target | None:
        """The target in force for ``indicator`` on ``local_date`` (financial year, then its effective date)."""
        fy = financial_year(local_date)
        local = self.icb.local_targets.get(fy, {})
        year = self.target_years.get(fy)
        target = local.get(indicator) or (year.targets.get(indicator) if year else None)
        if target is None or (target.effective_from and local_date < target.effective_from):
            return None
        return target


def financial_year(day: dt.date) -> str:
    """NHS financial year of a local date, e.g. 2026-03-31 -> '2025/26'."""
    start = day.year if day.month >= 4 else day.year - 1
    return f"{start}/{(start + 1) % 100:02d}"


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree and return the 1-based line."""
    line = node.start_mark.line + 1 if node else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def load_yaml_model(path: Path, model: type[BaseModel]) -> Any:
    """Validate a YAML file against a model; ConfigError lines say file:line: field: problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            line = _line_of(root, err["loc"])
            lines.append(f"{path}:{line or '?'}: {where}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None


def load_icb(path: Path = DEFAULT_ICB_FILE) -> Icb:
    return load_yaml_model(Path(path), Icb)


def load_target_years(directory: Path = TARGETS_DIR) -> dict[str, TargetYear]:
    years: dict[str, TargetYear] = {}
    for file in sorted(Path(directory).glob("*.yaml")):
        year = load_yaml_model(file, TargetYear)
        years[year.financial_year] = year
    return years


def load_config(icb_file: Path | None = None, targets_dir: Path | None = None) -> PlatformConfig:
    """Load and validate the ICB file and the national target years; raise :class:`ConfigError` saying where."""
    icb_path = Path(icb_file or DEFAULT_ICB_FILE)
    icb = load_icb(icb_path)
    opel_path = DEFAULT_OPEL_FILE if icb.opel_file is None else (icb_path.parent / icb.opel_file)
    return PlatformConfig(
        icb=icb,
        target_years=load_target_years(targets_dir or TARGETS_DIR),
        opel=load_yaml_model(opel_path, OpelFramework),
    )
