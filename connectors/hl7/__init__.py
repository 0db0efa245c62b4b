"""HL7 v2 ADT connector: messages (over MLLP or from files) to canonical events, identifiers pseudonymised at the edge.

- :mod:`connectors.hl7.message` reads a message safely (python-hl7 underneath) and reports errors with HL7 codes;
- :mod:`connectors.hl7.mapping` turns it into canonical events with ``config/hl7/mapping.yaml`` and ``wards.yaml``;
- :mod:`connectors.hl7.ingest` publishes the events or dead-letters the message;
- :mod:`connectors.hl7.mllp` is the MLLP listener that acknowledges each message once its events are on Kafka.
"""

from connectors.hl7.config import Hl7Config, load_hl7_config
from connectors.hl7.ingest import Hl7Ingest, ingest_files, iter_file_messages
from connectors.hl7.mapping import Hl7Mapper, Outcome
from connectors.hl7.mllp import ListenerOptions, MllpDecoder, MllpListener, frame

__all__ = [
    "Hl7Config",
    "Hl7Ingest",
    "Hl7Mapper",
    "ListenerOptions",
    "MllpDecoder",
    "MllpListener",
    "Outcome",
    "frame",
    "ingest_files",
    "iter_file_messages",
    "load_hl7_config",
]
