"""Topic names and partition counts, and their explicit creation before any worker starts.

Created explicitly because a Kafka-protocol broker may auto-create topics with a default partition count (Tansu
always uses 4, INFRA.md caveat 4), and co-partitioned topics must have equal counts: ``scc.adt`` and
``scc.discharge`` are both keyed by ``spell_id`` and meet in one agent, so a spell's events land on the same
partition number of both.
"""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.settings import Settings

log = logging.getLogger(__name__)

INPUT_TOPICS = ("scc.ed", "scc.ambulance", "scc.adt", "scc.discharge", "scc.opel")
FACTS = "scc.facts"
INDICATORS = "scc.indicators"
ALERTS = "scc.alerts"
DEADLETTER = "scc.deadletter"


def partition_counts(settings: Settings) -> dict[str, int]:
    """Every topic the platform uses and its partition count."""
    counts = dict.fromkeys(INPUT_TOPICS, settings.input_partitions)
    counts[FACTS] = settings.input_partitions  # keyed by ICB code; more ICBs spread over more partitions
    counts.update({INDICATORS: 1, ALERTS: 1, DEADLETTER: 1})
    return counts


async def create_topics(settings: Settings) -> list[str]:
    """Create any missing topic with its partition count; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_servers, **settings.aiokafka_security())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = partition_counts(settings)
        missing = [NewTopic(name, n, 1) for name, n in wanted.items() if name not in existing]
        if missing:
            await admin.create_topics(missing)
            log.info("created topics %s", [t.name for t in missing])
        return [t.name for t in missing]
    finally:
        await admin.close()
