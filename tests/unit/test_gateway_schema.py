"""The gateway's schema: committed SDL matches the code, and no survivor field escapes the consent check."""

from __future__ import annotations

from gateway.api.pathway import HealthEngagement, Placement, Survivor
from gateway.consent import Consent
from gateway.schema import SDL, build_schema, sdl
from strawberry.types.base import get_object_definition

PARTY_RULE = {"referrals"}
"""Referrals follow a rule of their own: the parties always see theirs; others need case_status consent."""


def test_the_committed_sdl_matches_the_code() -> None:
    assert SDL.read_text() == sdl(), "graphql/schema.graphql is stale: run `make asyncapi` and commit it"


SCHEMA = build_schema()


def gated(cls: type) -> dict[str, bool]:
    """Every field of ``cls`` that the GraphQL schema exposes, and whether it carries a consent category."""
    definition = get_object_definition(cls, strict=True)
    exposed = SCHEMA._schema.type_map[definition.name].fields  # type: ignore[attr-defined]
    converter = SCHEMA.config.name_converter
    fields = {converter.get_graphql_name(f): f for f in definition.fields}
    assert set(exposed) <= set(fields)
    return {fields[name].python_name: any(isinstance(e, Consent) for e in fields[name].extensions) for name in exposed}


def test_every_field_of_a_survivor_is_consent_gated() -> None:
    fields = gated(Survivor)
    ungated = {name for name, ok in fields.items() if not ok} - {"id"} - PARTY_RULE
    assert not ungated, f"survivor fields without a consent category: {ungated}"


def test_every_consent_gated_field_can_be_null() -> None:
    """A refused field resolves to null; were it non-null, the refusal would blank its whole parent."""
    from graphql import GraphQLNonNull

    for cls in (Survivor, Placement, HealthEngagement):
        definition = get_object_definition(cls, strict=True)
        exposed = SCHEMA._schema.type_map[definition.name].fields  # type: ignore[attr-defined]
        for name, field in exposed.items():
            python = SCHEMA.config.name_converter
            strawberry_field = next(f for f in definition.fields if python.get_graphql_name(f) == name)
            if any(isinstance(e, Consent) for e in strawberry_field.extensions):
                assert not isinstance(field.type, GraphQLNonNull), f"{definition.name}.{name} must be nullable"


def test_sealed_parts_of_provider_records_have_their_own_category() -> None:
    assert gated(Placement)["location"]
    assert gated(HealthEngagement)["clinical_detail"]


def test_production_schema_builds_without_introspection() -> None:
    result = build_schema(production=True).execute_sync("{ __schema { types { name } } }")
    assert result.errors
