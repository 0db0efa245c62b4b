"""Publish the contract as JSON Schema: one file per event type, and one for the indicator snapshot."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.events import EVENT_MODELS
from schemas.indicators import IndicatorSnapshot


def export_json_schemas(directory: Path) -> list[Path]:
    """Write ``<event_type>.schema.json`` for every event type and ``indicator_snapshot.schema.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, model in EVENT_MODELS.items():
        schema = model.model_json_schema(mode="validation")
        schema["$id"] = f"https://scc-platform.example/schemas/v1/{event_type}.schema.json"
        schema["title"] = event_type
        path = directory / f"{event_type}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    path = directory / "indicator_snapshot.schema.json"
    path.write_text(json.dumps(IndicatorSnapshot.model_json_schema(), indent=2, sort_keys=True) + "\n")
    written.append(path)
    return written
