"""The HL7 connector's configuration: how fields map (``config/hl7/mapping.yaml``) and what each ward is
(``config/hl7/wards.yaml``).

What varies by trust lives here, not in code: which facility codes mean which organisation, which Z-segment field
carries the discharge ready date, which codes mean an emergency admission, and which ward is an adult G&A bed base.
Errors name the file, the line and the field, as the ICB configuration does (:mod:`schemas.config`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.hl7.timestamps import LocalTimePolicy
from schemas.config import CONFIG_DIR, Icb, load_yaml_model
from schemas.events import AdmissionMethod, ArrivalMode, BedCategory, DepartmentType, Disposal, OdsCode

HL7_CONFIG_DIR = CONFIG_DIR / "hl7"
DEFAULT_MAPPING_FILE = HL7_CONFIG_DIR / "mapping.yaml"
DEFAULT_WARDS_FILE = HL7_CONFIG_DIR / "wards.yaml"

_FIELD_REF = re.compile(r"^(?P<seg>[A-Z][A-Z0-9]{2})-(?P<field>[1-9]\d*)(?:\.(?P<comp>[1-9]\d*))?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldRef(_Strict):
    """A field of a segment, ``SEG-N`` or ``SEG-N.C`` (1-based; the first repetition)."""

    segment: str
    field: int
    component: int = 1

    @classmethod
    def parse(cls, text: str) -> FieldRef:
        match = _FIELD_REF.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a field reference like PV1-19 or ZDS-2.1")
        return cls(segment=match["seg"], field=int(match["field"]), component=int(match["comp"] or 1))

    def __str__(self) -> str:
        return f"{self.segment}-{self.field}" + (f".{self.component}" if self.component != 1 else "")


def _ref(value: Any) -> Any:
    return FieldRef.parse(value) if isinstance(value, str) else value


Ref = Annotated[FieldRef, Field(description="SEG-N[.C]")]


class CodeMap(_Strict):
    """A coded field and what its codes mean; ``default`` for a valued code not in the table (None: reject)."""

    field: Ref
    codes: dict[str, Any]
    default: Any | None = None

    parse_field_ref = field_validator("field", mode="before")(_ref)


class AdmissionMethodMap(CodeMap):
    codes: dict[str, AdmissionMethod]
    default: AdmissionMethod | None = "other"


class ArrivalModeMap(CodeMap):
    codes: dict[str, ArrivalMode]
    default: ArrivalMode | None = "other"


class DisposalMap(CodeMap):
    codes: dict[str, Disposal]
    default: Disposal | None = "discharged"


class NhsNumberRule(_Strict):
    """Which PID-3 repetitions are NHS numbers: CX.4 assigning authority and CX.5 identifier type code."""

    authorities: list[str] = ["NHS"]
    type_codes: list[str] = ["NH"]


class MrnRule(_Strict):
    """Which PID-3 repetitions are local MRNs (CX.5); CX.4 is the trust's ODS code (the hash's namespace)."""

    type_codes: list[str] = ["MR"]


class Identifiers(_Strict):
    nhs_number: NhsNumberRule = NhsNumberRule()
    mrn: MrnRule = MrnRule()


class Accept(_Strict):
    versions: list[str] = ["2.3", "2.3.1", "2.4", "2.5", "2.5.1"]
    processing_ids: list[str] = ["P"]


class DischargeFields(_Strict):
    """Where the feed carries discharge readiness; any may be null when the feed does not carry it."""

    destination: Ref | None = None
    pathway: Ref | None = None
    pathway_codes: dict[str, Annotated[int, Field(ge=0, le=3)]] = {"0": 0, "1": 1, "2": 2, "3": 3}
    ready_date: Ref | None = None
    ready_date_recorded_at: Ref | None = None

    parse_field_refs = field_validator("destination", "pathway", "ready_date", "ready_date_recorded_at", mode="before")(
        _ref
    )


class EdFields(_Strict):
    """ED attendances carried on ADT (A04 registration at an ED location, A03 departure, A11 cancel)."""

    patient_classes: list[str] = ["E"]
    arrival_mode: ArrivalModeMap | None = None
    disposal: DisposalMap | None = None
    ambulance_incident_id: Ref | None = None

    parse_field_ref = field_validator("ambulance_incident_id", mode="before")(_ref)


class Mapping(_Strict):
    """``config/hl7/mapping.yaml``."""

    source: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    default_source: Annotated[str, Field(min_length=1, max_length=64)] = "HL7-ADT"
    organisations: dict[str, OdsCode] = Field(default_factory=dict)
    accept: Accept = Accept()
    ignore_events: list[str] = Field(default_factory=list)
    ignore_patient_classes: list[str] = Field(
        default_factory=lambda: ["O", "R", "P"],
        description="PV1-2 classes whose messages give no event: outpatient, recurring, preadmit visits hold no bed",
    )
    local_time: LocalTimePolicy = LocalTimePolicy()
    spell_id: str = "{visit}"
    identifiers: Identifiers = Identifiers()
    admission_method: AdmissionMethodMap | None = None
    discharge: DischargeFields = DischargeFields()
    ed: EdFields = EdFields()

    @field_validator("spell_id")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            value.format(visit="V", org="ORG")
        except (KeyError, IndexError, ValueError):
            raise ValueError("spell_id may use only {visit} and {org}") from None
        if "{visit}" not in value:
            raise ValueError("spell_id must contain {visit}")
        return value

    @field_validator("ignore_events")
    @classmethod
    def _not_mapped(cls, value: list[str]) -> list[str]:
        clash = sorted(set(value) & {"A01", "A02", "A03", "A08", "A11", "A12", "A13"})
        if clash:
            raise ValueError(f"{', '.join(clash)} are mapped to events and cannot be ignored")
        return value


class Ward(_Strict):
    """A location code in PV1-3.1 and what it is."""

    site: OdsCode
    bed_category: BedCategory
    escalation: bool = False
    name: str | None = None
    ed_department_type: DepartmentType | None = Field(
        None, description="set for an emergency department location: ED attendances are registered here"
    )


class Wards(_Strict):
    """``config/hl7/wards.yaml``: organisation ODS code -> ward code -> ward."""

    synthetic: bool = Field(description="true where the wards are made up for demonstration")
    organisations: dict[OdsCode, dict[str, Ward]]

    def lookup(self, org: str, ward: str) -> Ward | None:
        return self.organisations.get(org, {}).get(ward)


class Hl7Config(_Strict):
    mapping: Mapping
    wards: Wards

    def check_against(self, icb: Icb) -> list[str]:
        """Codes in these files that the ICB configuration does not know (the engine would reject their events)."""
        problems = []
        for facility, org in self.mapping.organisations.items():
            if org not in icb.orgs:
                problems.append(f"mapping organisations.{facility}: {org!r} is not an organisation of {icb.code}")
        for org, wards in self.wards.organisations.items():
            if org not in icb.orgs:
                problems.append(f"wards organisations.{org}: not an organisation of {icb.code}")
            for code, ward in wards.items():
                if icb.org_of_site.get(ward.site) != org:
                    problems.append(f"wards organisations.{org}.{code}: site {ward.site!r} is not a site of {org}")
        return problems


def load_hl7_config(mapping_file: Path | None = None, wards_file: Path | None = None) -> Hl7Config:
    """Load and validate both files; raise :class:`schemas.config.ConfigError` saying where."""
    return Hl7Config(
        mapping=load_yaml_model(Path(mapping_file or DEFAULT_MAPPING_FILE), Mapping),
        wards=load_yaml_model(Path(wards_file or DEFAULT_WARDS_FILE), Wards),
    )
