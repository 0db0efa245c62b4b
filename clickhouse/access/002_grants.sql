-- What each role may do. One GRANT per line, to exactly one role; no REVOKE (anything not granted is refused).
--
-- scc_analyst gets SELECT on named columns only. Withheld, because they identify or can carry identifiers:
--   raw_adt.patient_ref   keyed pseudonym of the NHS number/MRN: links every spell of one person
--   raw_*.payload         the whole event as JSON, patient_ref included (the typed columns carry everything else)
--   deadletter.raw        the rejected input's bytes (HL7 is redacted at the edge, stream rejects are arbitrary JSON)
-- The per-entity views and their state tables (005_entity_tables) carry entity ids, organisations, sites, times and
-- the typed fields of the events only (no patient_ref, no payload): analysts read them all. Their materialized views
-- are listed in clickhouse/access.py NOT_FOR_ANALYSTS (they only write the state tables).
-- The analyst marts (006_analyst_marts) are finalized copies of those views, the same columns without spells.bed:
-- analysts read them all. Their refreshable views (*_mart_refresh) are in NOT_FOR_ANALYSTS as well.
-- The raw tables' insert points (007_event_lines: raw_*_lines, Null tables that keep nothing, and their views
-- raw_*_lines_mv) are in NOT_FOR_ANALYSTS too; scc_writer inserts into them under its INSERT on {db}.*. So are the
-- snapshot rows' insert point (009_snapshot_rows: indicator_snapshot_rows and indicator_snapshot_rows_mv).
-- A column a later migration adds is granted to nobody until it is added here: tests/unit/test_access.py fails
-- until every column of every table is either granted below or listed in clickhouse/access.py IDENTIFIER_COLUMNS.

GRANT ALL ON {db}.* TO scc_admin WITH GRANT OPTION;

GRANT SELECT, INSERT ON {db}.* TO scc_writer;

GRANT SELECT(ts, indicator, `window`, scope_type, scope_code, value, numerator, denominator, target, status, computed_at) ON {db}.indicator_snapshots TO scc_analyst;
GRANT SELECT(alert_id, state, indicator, `window`, scope_type, scope_code, value, threshold, op, status, ts, raised_ts, logged_at) ON {db}.alerts TO scc_analyst;
GRANT SELECT(event_id, event_type, occurred_at, source, org_code, site_code, schema_version, attendance_id, department_type, arrival_mode, ambulance_incident_id, age, disposal, kafka_partition, kafka_offset, ingested_at, _keep) ON {db}.raw_ed TO scc_analyst;
GRANT SELECT(event_id, event_type, occurred_at, source, org_code, site_code, schema_version, incident_id, category, resource_id, transport_capable, conveyed, kafka_partition, kafka_offset, ingested_at, _keep) ON {db}.raw_ambulance TO scc_analyst;
GRANT SELECT(event_id, event_type, occurred_at, source, org_code, site_code, schema_version, spell_id, ward_code, bed_category, escalation_bed, admission_method, age, pathway, destination, kafka_partition, kafka_offset, ingested_at, _keep) ON {db}.raw_adt TO scc_analyst;
GRANT SELECT(event_id, event_type, occurred_at, source, org_code, site_code, schema_version, spell_id, discharge_ready_date, pathway, referral_id, kafka_partition, kafka_offset, ingested_at, _keep) ON {db}.raw_discharge TO scc_analyst;
GRANT SELECT(event_id, event_type, occurred_at, source, org_code, site_code, schema_version, level, kafka_partition, kafka_offset, ingested_at, _keep) ON {db}.raw_opel TO scc_analyst;
GRANT SELECT(received_at, source_topic, `partition`, `offset`, reason) ON {db}.deadletter TO scc_analyst;
GRANT SELECT(attendance_id, arrival, mode, org, site, dtype, clock_start, departed, departure, disposal, within_4h, over_12h) ON {db}.ed_attendances TO scc_analyst;
GRANT SELECT(incident_id, start, org, stop, category, seconds, minutes) ON {db}.ambulance_responses TO scc_analyst;
GRANT SELECT(spell_id, bed, org, site, bed_category, escalation, open, pathway, drd, admitted_at, discharged_at, drd_at_discharge, counts_for_drd, delay_days) ON {db}.spells TO scc_analyst;
GRANT SELECT(attendance_id, arrived, cancelled, first_arrival, has_handover, first_handover, departures) ON {db}.ed_attendance_state TO scc_analyst;
GRANT SELECT(incident_id, has_clock_start, clock_start, arrivals, closed, last_closure, categories) ON {db}.ambulance_incident_state TO scc_analyst;
GRANT SELECT(spell_id, events) ON {db}.spell_state TO scc_analyst;
GRANT SELECT(attendance_id, arrival, mode, org, site, dtype, clock_start, departed, departure, disposal, within_4h, over_12h) ON {db}.ed_attendances_mart TO scc_analyst;
GRANT SELECT(incident_id, start, org, stop, category, seconds, minutes) ON {db}.ambulance_responses_mart TO scc_analyst;
GRANT SELECT(spell_id, org, site, bed_category, escalation, open, pathway, drd, admitted_at, discharged_at, drd_at_discharge, counts_for_drd, delay_days) ON {db}.spells_mart TO scc_analyst;
