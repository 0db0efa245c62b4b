"""HL7 v2 ADT messages to canonical events (docs/ingest.md has the full table and the reasons).

One message gives zero or more canonical events, all or nothing: a message that cannot be mapped completely gives
none and is answered AE/AR. Every event id is ``{org}:{source}:{MSH-10}:{n}``, so a resent message (same control id)
produces the same ids and changes nothing downstream. ``n`` is the event's position in the message's output, and
discharge-readiness events come first: at the same event time the engine applies events in (occurred_at, event_id)
order, so a ready date carried on a discharge (A03) is in place before the discharge that records it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import hl7
from pydantic import ValidationError

from connectors.hl7 import message as m
from connectors.hl7.config import CodeMap, FieldRef, Hl7Config, Ward
from connectors.hl7.message import HL7_NULL, Header, Hl7Error
from connectors.hl7.timestamps import parse_hl7_date, parse_hl7_ts
from connectors.pseudonymise import Pseudonymiser
from schemas.config import Icb
from schemas.events import EVENT_MODELS, Envelope, describe_error

ADT_TRIGGERS = ("A01", "A02", "A03", "A08", "A11", "A12", "A13")
HANDLED_TRIGGERS = (*ADT_TRIGGERS, "A04")
MAX_EVENT_ID = 128


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message: its events (possibly none), or the error that rejected it."""

    header: Header
    events: list[Envelope] = field(default_factory=list)
    error: Hl7Error | None = None
    ignored: bool = False
    """Acknowledged without events: a trigger that changes no indicator (e.g. A05 pre-admit, A31 person update)."""

    @property
    def ack_code(self) -> str:
        return "AA" if self.error is None else self.error.ack_code

    @property
    def control_id(self) -> str:
        return self.header.control_id


@dataclass(slots=True)
class _Context:
    message: hl7.Message
    header: Header
    trigger: str
    org: str
    source: str
    base_id: str
    occurred_at: dt.datetime
    events: list[dict[str, Any]] = field(default_factory=list)

    def add(self, event_type: str, **fields: Any) -> None:
        when = fields.pop("occurred_at", self.occurred_at)
        self.events.append(
            {
                "event_type": event_type,
                "event_id": f"{self.base_id}:{len(self.events)}",
                "occurred_at": when,
                "source": self.source,
                "org_code": self.org,
                **{k: v for k, v in fields.items() if v is not None},
            }
        )


class Hl7Mapper:
    """Maps raw HL7 v2 ADT messages to canonical events with the trust's configuration and the edge pseudonymiser."""

    def __init__(self, config: Hl7Config, pseudonymiser: Pseudonymiser, icb: Icb | None = None) -> None:
        self.config = config
        self.mapping = config.mapping
        self.pseudonymiser = pseudonymiser
        self.icb = icb
        self._zone = ZoneInfo(self.mapping.local_time.zone)

    # --- entry point -----------------------------------------------------------------------------------------

    def map(self, raw: bytes) -> Outcome:
        """Map one message (the bytes between MLLP frame marks, or one message of a file); never raises."""
        header = m.peek_header(raw)
        try:
            message, header = m.parse(raw)
            context = self._context(message, header)
            if context is None:
                return Outcome(header, ignored=True)
            self._map(context)
            events = self._validate(context)
            return Outcome(header, events=events, ignored=not events)
        except Hl7Error as exc:
            return Outcome(header, error=exc)
        except Exception as exc:  # noqa: BLE001 - a bug here must cost one message (dead-lettered), not the connection
            error = Hl7Error(
                f"message: internal error while mapping ({type(exc).__name__}); dead-lettered for investigation",
                code=m.APPLICATION_INTERNAL_ERROR,
            )
            return Outcome(header, error=error)

    # --- header, time, organisation ------------------------------------------------------------------------

    def _context(self, message: hl7.Message, header: Header) -> _Context | None:
        message_type = m.value(message, "MSH-9.1")
        trigger = m.value(message, "MSH-9.2") or m.value(message, "EVN-1")
        if message_type != "ADT":
            raise Hl7Error(
                f"MSH-9: message type {message_type[:10]!r} is not supported (ADT only)",
                code=m.UNSUPPORTED_MESSAGE_TYPE,
                location="MSH-9",
                ack_code="AR",
            )
        processing = m.value(message, "MSH-11")
        if processing not in self.mapping.accept.processing_ids:
            raise Hl7Error(
                f"MSH-11: processing id {processing[:5]!r} not accepted here "
                f"(accepted: {', '.join(self.mapping.accept.processing_ids)})",
                code=m.UNSUPPORTED_PROCESSING_ID,
                location="MSH-11",
                ack_code="AR",
            )
        version = m.value(message, "MSH-12")
        if version not in self.mapping.accept.versions:
            raise Hl7Error(
                f"MSH-12: HL7 version {version[:10]!r} not supported",
                code=m.UNSUPPORTED_VERSION_ID,
                location="MSH-12",
                ack_code="AR",
            )
        if trigger in self.mapping.ignore_events:
            return None
        if trigger not in HANDLED_TRIGGERS:
            raise Hl7Error(
                f"MSH-9: trigger event {trigger[:5]!r} is not mapped (mapped: {', '.join(HANDLED_TRIGGERS)}; "
                "ignored ones are listed in ignore_events)",
                code=m.UNSUPPORTED_EVENT_CODE,
                location="MSH-9",
                ack_code="AR",
            )
        control_id = m.value(message, "MSH-10")
        if not control_id:
            raise Hl7Error("MSH-10: message control id missing", code=m.REQUIRED_FIELD_MISSING, location="MSH-10")
        for segment in ("PID", "PV1"):
            if not m.has_segment(message, segment):
                raise Hl7Error(f"{segment}: segment missing", code=m.SEGMENT_SEQUENCE_ERROR, location=segment)
        org = self._organisation(m.value(message, "MSH-4"))
        source = self.mapping.source or m.value(message, "MSH-3")[:64] or self.mapping.default_source
        base_id = f"{org}:{source}:{control_id}"
        if len(base_id) + 4 > MAX_EVENT_ID:
            raise Hl7Error("MSH-10: message control id too long", code=m.DATA_TYPE_ERROR, location="MSH-10")
        return _Context(message, header, trigger, org, source, base_id, self._event_time(message))

    def _organisation(self, facility: str) -> str:
        mapped = self.mapping.organisations.get(facility)
        if mapped:
            return mapped
        if self.icb is not None:
            if facility in self.icb.orgs:
                return facility
            if facility in self.icb.org_of_site:
                return self.icb.org_of_site[facility]
        elif facility in self.config.wards.organisations:
            return facility
        raise Hl7Error(
            f"MSH-4: sending facility {facility[:20]!r} is not a known organisation "
            "(add it to organisations in config/hl7/mapping.yaml)",
            code=m.TABLE_VALUE_NOT_FOUND,
            location="MSH-4",
        )

    def _event_time(self, message: hl7.Message) -> dt.datetime:
        """EVN-6 (event occurred), else EVN-2 (recorded), else MSH-7: the first valued one, which must be valid."""
        for ref in ("EVN-6", "EVN-2", "MSH-7"):
            text = m.value(message, ref)
            if text:
                return self._ts(text, ref)
        raise Hl7Error(
            "EVN-6, EVN-2 and MSH-7 are all empty: no event time", code=m.REQUIRED_FIELD_MISSING, location="MSH-7"
        )

    def _ts(self, text: str, where: str) -> dt.datetime:
        try:
            return parse_hl7_ts(text, self.mapping.local_time)
        except ValueError as exc:
            raise Hl7Error(f"{where}: {exc}", code=m.DATA_TYPE_ERROR, location=where) from None

    # --- mapping by trigger ---------------------------------------------------------------------------------

    def _map(self, ctx: _Context) -> None:
        msg = ctx.message
        patient_class = m.value(msg, "PV1-2")
        if patient_class in self.mapping.ignore_patient_classes:
            return  # an outpatient, recurring or pre-admission visit: no bed, no ED attendance
        visit = m.value(msg, "PV1-19")
        if not visit or visit == HL7_NULL:
            raise Hl7Error(
                "PV1-19: visit number (the spell id) missing", code=m.REQUIRED_FIELD_MISSING, location="PV1-19"
            )
        spell_id = self.mapping.spell_id.format(visit=visit, org=ctx.org)
        ward_code = m.value(msg, "PV1-3")
        ward = self.config.wards.lookup(ctx.org, ward_code) if ward_code else None
        ed_ward = (
            ward if patient_class in self.mapping.ed.patient_classes and ward and ward.ed_department_type else None
        )

        if ctx.trigger == "A04":
            if patient_class not in self.mapping.ed.patient_classes:
                return  # an outpatient or other registration: no event
            ward = self._required_ward(ctx, ward_code)
            if not ward.ed_department_type:
                return  # an ED-class registration at a location that is not an ED
            self._ed_arrived(ctx, visit, ward)
            return

        if ctx.trigger in ("A01", "A02", "A03", "A08"):
            self._readiness(ctx, spell_id)

        match ctx.trigger:
            case "A01":
                ward = self._required_ward(ctx, ward_code)
                ctx.add(
                    "adt.admitted",
                    spell_id=spell_id,
                    patient_ref=self._patient_ref(ctx, required=True),
                    ward_code=ward_code,
                    bed_category=ward.bed_category,
                    escalation_bed=ward.escalation,
                    site_code=ward.site,
                    admission_method=self._admission_method(ctx, required=True),
                    age=self._age(ctx),
                )
            case "A02":
                ward = self._required_ward(ctx, ward_code)
                ctx.add(
                    "adt.transferred",
                    spell_id=spell_id,
                    ward_code=ward_code,
                    bed_category=ward.bed_category,
                    escalation_bed=ward.escalation,
                    site_code=ward.site,
                )
            case "A03":
                if ed_ward is not None:
                    ctx.add("ed.departed", attendance_id=visit, site_code=ed_ward.site, disposal=self._disposal(ctx))
                ctx.add(
                    "adt.discharged",
                    spell_id=spell_id,
                    pathway=self._pathway(ctx),
                    destination=self._destination(ctx),
                )
            case "A08":
                ward = self._ward(ctx, ward_code, required=False)
                fields: dict[str, Any] = {}
                if ward is not None:
                    fields = {
                        "ward_code": ward_code,
                        "bed_category": ward.bed_category,
                        "escalation_bed": ward.escalation,
                        "site_code": ward.site,
                    }
                ctx.add(
                    "adt.updated",
                    spell_id=spell_id,
                    patient_ref=self._patient_ref(ctx, required=False),
                    admission_method=self._admission_method(ctx, required=False),
                    age=self._age(ctx),
                    **fields,
                )
            case "A11":
                if ed_ward is not None:
                    ctx.add("ed.cancelled", attendance_id=visit, site_code=ed_ward.site)
                ctx.add("adt.admission_cancelled", spell_id=spell_id)
            case "A12":
                ctx.add("adt.transfer_cancelled", spell_id=spell_id)
            case "A13":
                ctx.add("adt.discharge_cancelled", spell_id=spell_id)

    def _ed_arrived(self, ctx: _Context, visit: str, ward: Ward) -> None:
        ed = self.mapping.ed
        incident = m.value(ctx.message, ed.ambulance_incident_id) if ed.ambulance_incident_id else ""
        ctx.add(
            "ed.arrived",
            attendance_id=visit,
            site_code=ward.site,
            department_type=ward.ed_department_type,
            arrival_mode=self._code(ctx, ed.arrival_mode, "other") if ed.arrival_mode else "other",
            ambulance_incident_id=incident if incident and incident != HL7_NULL else None,
            age=self._age(ctx),
        )

    # --- fields ---------------------------------------------------------------------------------------------

    def _ward(self, ctx: _Context, ward_code: str, *, required: bool) -> Ward:
        if not ward_code or ward_code == HL7_NULL:
            if required:
                raise Hl7Error(
                    "PV1-3: assigned location (ward) missing", code=m.REQUIRED_FIELD_MISSING, location="PV1-3"
                )
            return None  # type: ignore[return-value]
        ward = self.config.wards.lookup(ctx.org, ward_code)
        if ward is None:
            raise Hl7Error(
                f"PV1-3: unknown ward {ward_code[:20]!r} for organisation {ctx.org} (add it to config/hl7/wards.yaml)",
                code=m.TABLE_VALUE_NOT_FOUND,
                location="PV1-3",
            )
        return ward

    def _required_ward(self, ctx: _Context, ward_code: str) -> Ward:
        ward = self._ward(ctx, ward_code, required=True)
        assert ward is not None  # required=True raises instead of returning None
        return ward

    def _patient_ref(self, ctx: _Context, *, required: bool) -> str | None:
        """The pseudonym from PID-3: the NHS number when there is one, else the trust's MRN. No value is quoted."""
        rules = self.mapping.identifiers
        nhs = mrn = None
        for comps in m.repetitions(ctx.message, "PID", 3):
            ident, authority, type_code = comps[0], comps[3], comps[4]
            if not ident or ident == HL7_NULL:
                continue
            if type_code in rules.nhs_number.type_codes and authority in rules.nhs_number.authorities:
                nhs = nhs or ident
            elif type_code in rules.mrn.type_codes and authority and mrn is None:
                mrn = (ident, authority)
        try:
            if nhs:
                return self.pseudonymiser.nhs_number_ref(nhs)
            if mrn:
                return self.pseudonymiser.mrn_ref(*mrn)
        except ValueError as exc:
            raise Hl7Error(f"PID-3: {exc}", code=m.DATA_TYPE_ERROR, location="PID-3") from None
        if required:
            raise Hl7Error(
                "PID-3: no NHS number (^^^NHS^NH) and no MRN with an assigning authority (^^^<ODS>^MR)",
                code=m.REQUIRED_FIELD_MISSING,
                location="PID-3",
            )
        return None

    def _age(self, ctx: _Context) -> int | None:
        """Whole years at the event's local date from PID-7; omitted (not rejected) when unusable: age is optional."""
        text = m.value(ctx.message, "PID-7")
        if not text or text == HL7_NULL:
            return None
        try:
            born = parse_hl7_date(text)
        except ValueError:
            return None
        today = ctx.occurred_at.astimezone(self._zone).date()
        years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
        return years if 0 <= years <= 130 else None

    def _code(self, ctx: _Context, table: CodeMap, fallback: Any) -> Any:
        text = m.value(ctx.message, table.field)
        if not text or text == HL7_NULL:
            return table.default if table.default is not None else fallback
        if text in table.codes:
            return table.codes[text]
        if table.default is not None:
            return table.default
        raise Hl7Error(
            f"{table.field}: code {text[:20]!r} is not in the mapping",
            code=m.TABLE_VALUE_NOT_FOUND,
            location=str(table.field),
        )

    def _admission_method(self, ctx: _Context, *, required: bool) -> str | None:
        table = self.mapping.admission_method
        if table is None:
            return "other" if required else None
        if not required and not m.value(ctx.message, table.field):
            return None
        return self._code(ctx, table, "other")

    def _disposal(self, ctx: _Context) -> str:
        table = self.mapping.ed.disposal
        return self._code(ctx, table, "discharged") if table else "discharged"

    def _field(self, ctx: _Context, ref: FieldRef | None) -> str:
        if ref is None:
            return ""
        return m.value(ctx.message, ref)

    def _pathway(self, ctx: _Context) -> int | None:
        ref = self.mapping.discharge.pathway
        text = self._field(ctx, ref)
        if not text or text == HL7_NULL:
            return None
        codes = self.mapping.discharge.pathway_codes
        if text not in codes:
            raise Hl7Error(
                f"{ref}: discharge pathway {text[:10]!r} is not in pathway_codes",
                code=m.TABLE_VALUE_NOT_FOUND,
                location=str(ref),
            )
        return codes[text]

    def _destination(self, ctx: _Context) -> str | None:
        text = self._field(ctx, self.mapping.discharge.destination)
        return text[:64] if text and text != HL7_NULL else None

    def _readiness(self, ctx: _Context, spell_id: str) -> None:
        """Discharge ready date and pathway, when the feed carries them (mapping.yaml ``discharge``)."""
        cfg = self.mapping.discharge
        text = self._field(ctx, cfg.ready_date)
        pathway = self._pathway(ctx)
        recorded = self._field(ctx, cfg.ready_date_recorded_at)
        when = (
            self._ts(recorded, str(cfg.ready_date_recorded_at))
            if recorded and recorded != HL7_NULL
            else ctx.occurred_at
        )
        if text == HL7_NULL:
            ctx.add("discharge.ready_date_cleared", spell_id=spell_id, occurred_at=when)
        elif text:
            try:
                ready = parse_hl7_date(text)
            except ValueError as exc:
                raise Hl7Error(
                    f"{cfg.ready_date}: {exc}", code=m.DATA_TYPE_ERROR, location=str(cfg.ready_date)
                ) from None
            ctx.add(
                "discharge.ready_date_set",
                spell_id=spell_id,
                discharge_ready_date=ready,
                pathway=pathway,
                occurred_at=when,
            )
            return
        if pathway is not None and ctx.trigger != "A03":  # on A03 the pathway travels with adt.discharged
            ctx.add("discharge.pathway_assigned", spell_id=spell_id, pathway=pathway, occurred_at=when)

    # --- validation -----------------------------------------------------------------------------------------

    def _validate(self, ctx: _Context) -> list[Envelope]:
        """Every event through the canonical models: a message that breaks the contract is rejected whole."""
        events = []
        for data in ctx.events:
            try:
                events.append(EVENT_MODELS[data["event_type"]].model_validate(data))
            except ValidationError as exc:
                raise Hl7Error(f"{data['event_type']}: {describe_error(exc)}", code=m.DATA_TYPE_ERROR) from None
        if self.icb is not None:
            for event in events:
                if event.site_code is not None and event.site_code not in self.icb.sites:
                    raise Hl7Error(
                        f"site {event.site_code} is not a site of ICB {self.icb.code}", code=m.TABLE_VALUE_NOT_FOUND
                    )
        return events
