"""Generate the AsyncAPI 3 document of the contract from the catalog and the event models.

``python -m events.asyncapi`` rewrites ``events/asyncapi.json``; ``--check`` fails if it is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

import events  # noqa: F401  # registers every event type
from events.base import REGISTRY
from events.catalog import TOPICS, TopicSpec, all_topics

DOCUMENT = Path(__file__).with_name("asyncapi.json")
REF = "#/components/schemas/{model}"

CLOUDEVENTS_HEADERS: dict[str, Any] = {
    "type": "object",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "content-type"],
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string", "format": "uuid", "description": "Unique per event; the inbox key."},
        "ce_source": {"type": "string", "description": "The producing service, e.g. haven/referrals."},
        "ce_type": {"type": "string", "description": "Past-tense dotted event type."},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string", "description": "The partition key (pseudonymous survivor id)."},
        "ce_schemaversion": {"type": "string", "pattern": "^[0-9]+$"},
        "content-type": {"type": "string", "const": "application/json"},
        "traceparent": {"type": "string", "description": "W3C trace context."},
    },
}

DLQ_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "The original headers, plus why the message was dead-lettered.",
    "properties": {
        "haven_dlq_reason": {"type": "string", "description": "Stable code, e.g. bad_json, unknown_type."},
        "haven_dlq_detail": {"type": "string"},
        "haven_dlq_topic": {"type": "string"},
        "haven_dlq_partition": {"type": "string"},
        "haven_dlq_offset": {"type": "string"},
        "haven_dlq_consumer": {"type": "string"},
    },
}


def _channel_id(topic: str) -> str:
    return topic.replace(".", "_")


def _kafka_binding(spec: TopicSpec) -> dict[str, Any]:
    config: dict[str, Any] = {"cleanup.policy": [spec.cleanup_policy]}
    if spec.cleanup_policy == "delete":
        config["retention.ms"] = spec.retention_ms
    return {
        "kafka": {
            "topic": spec.name,
            "partitions": spec.partitions,
            "replicas": 1,
            "topicConfiguration": config,
            "bindingVersion": "0.5.0",
        }
    }


def build() -> dict[str, Any]:
    """The whole AsyncAPI document as a JSON-ready dict, deterministic in order."""
    models = REGISTRY.contract_types()
    _, schema = models_json_schema([(m, "validation") for m in models.values()], ref_template=REF)
    schemas: dict[str, Any] = dict(sorted(schema.get("$defs", {}).items()))
    messages: dict[str, Any] = {}
    by_topic: dict[str, list[str]] = {t.name: [] for t in TOPICS}
    for event_type, model in models.items():
        name = model.__name__
        messages[name] = {
            "name": event_type,
            "title": name,
            "summary": (model.__doc__ or event_type).strip().splitlines()[0],
            "contentType": "application/json",
            "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
            "payload": {"$ref": REF.format(model=name)},
            "x-schema-version": model.version,
            "bindings": {"kafka": {"key": {"type": "string"}, "bindingVersion": "0.5.0"}},
        }
        by_topic[model.topic].append(name)
    messages["DeadLetter"] = {
        "name": "dead-letter",
        "summary": "A message that could not be handled, byte for byte, with the reason in headers.",
        "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
        "payload": {"type": "string", "format": "binary"},
    }
    schemas["CloudEventHeaders"] = CLOUDEVENTS_HEADERS
    schemas["DeadLetterHeaders"] = DLQ_HEADERS

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in all_topics():
        cid = _channel_id(spec.name)
        names = by_topic.get(spec.name, ["DeadLetter"])  # dead-letter topics are not in by_topic
        channels[cid] = {
            "address": spec.name,
            "description": f"{spec.description} Key: {spec.key}.",
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
            "bindings": _kafka_binding(spec),
        }
        operations[f"publish_{cid}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{cid}"},
            "messages": [{"$ref": f"#/channels/{cid}/messages/{n}"} for n in names],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Haven events",
            "version": "1.0.0",
            "description": "Referral and survivor-services events. CloudEvents 1.0, Kafka binary mode.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed document is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not DOCUMENT.exists() or DOCUMENT.read_text() != text:
            print(f"{DOCUMENT} is stale: run `make asyncapi` and commit it", file=sys.stderr)
            return 1
        print(f"{DOCUMENT} is up to date")
        return 0
    DOCUMENT.write_text(text)
    print(f"wrote {DOCUMENT} ({len(REGISTRY.contract_types())} event types, {len(all_topics())} channels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
