"""The GraphQL schema: the per-domain parts of ``gateway.api`` merged, and what guards every operation.

``python -m gateway.schema`` prints the SDL; ``graphql/schema.graphql`` is the committed copy.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import strawberry
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from gateway.api.commands import CommandsQuery
from gateway.api.consents import ConsentMutation, ConsentQuery
from gateway.api.directory import DirectoryQuery, ProvidersMutation
from gateway.api.follow import Subscription
from gateway.api.hooks import WebhooksMutation, WebhooksQuery
from gateway.api.intake import IntakeMutation
from gateway.api.keys import KeysMutation, KeysQuery
from gateway.api.ledger import LedgerQuery
from gateway.api.pathway import PathwayQuery
from gateway.api.referrals import ReferralsMutation, ReferralsQuery
from gateway.api.statistics import OutcomesQuery, StatisticsMutation, StatisticsQuery
from gateway.audit import AuditReads
from graphql import GraphQLError
from services.kernel import metrics

SDL = Path(__file__).parent.parent / "schema.graphql"


TRACER = trace.get_tracer("haven.gateway")


Query = merge_types(
    "Query",
    (
        DirectoryQuery,
        PathwayQuery,
        ConsentQuery,
        ReferralsQuery,
        LedgerQuery,
        CommandsQuery,
        WebhooksQuery,
        KeysQuery,
        StatisticsQuery,
        OutcomesQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        IntakeMutation,
        ConsentMutation,
        ReferralsMutation,
        ProvidersMutation,
        WebhooksMutation,
        KeysMutation,
        StatisticsMutation,
    ),
)


class OperationSpan(SchemaExtension):
    """One span per operation, current while it runs, and no hook at all on fields.

    Profiled (pyinstrument, cProfile, py-spy): per-field spans, then a per-field hook that only
    passed through, were a large share of the pathway query's CPU time. The span is made current
    for the whole operation instead, so an outbox write in a mutation becomes its child and the
    trace runs on through Kafka. Arguments are never recorded: they may hold personal data.
    """

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        with TRACER.start_as_current_span("GraphQL operation", kind=SpanKind.SERVER) as span:
            yield
            context = self.execution_context
            kind = context.operation_type.value if context.operation_type else "operation"
            span.update_name(f"GraphQL {kind} {context.operation_name or ''}".rstrip())
            metrics.GRAPHQL_DURATION.record(
                time.perf_counter() - started,
                {"graphql.operation.type": kind, "graphql.operation.name": context.operation_name or "(anonymous)"},
            )
            errors = getattr(context.result, "errors", None) or context.pre_execution_errors
            if errors:
                span.set_attribute("graphql.errors", len(errors))


REQUEST_CODES = {
    "GRAPHQL_PARSE_FAILED": "the request is not GraphQL; the message says where",
    "GRAPHQL_VALIDATION_FAILED": "the request does not fit the schema (an unknown field, a missing argument, a value "
    "not of its type); the message names what",
    "INTERNAL_SERVER_ERROR": "an unexpected error, logged on our side; the message says no more",
}
"""The codes of errors that no resolver raises on purpose."""


def with_code(error: GraphQLError) -> None:
    """Give a parse or validation error (an unknown field, a missing argument, a value not of its type) a code, as
    every error Haven answers carries one. Set on the error itself: strawberry holds it in more than one list."""
    if (error.extensions and "code" in error.extensions) or not (
        error.original_error is None or isinstance(error.original_error, GraphQLError)
    ):
        return
    parse, invalid, internal = REQUEST_CODES
    # A resolver's unexpected error (masked) has a path; an error in the request itself has none.
    code = internal if error.path is not None else parse if error.message.startswith("Syntax Error") else invalid
    error.extensions = {**(error.extensions or {}), "code": code}


class CodedErrors(SchemaExtension):
    """Every error in an answer carries ``extensions.code``: parse and validation errors get theirs here."""

    def on_operation(self) -> Iterator[None]:
        try:
            yield
        except GraphQLError as raised:  # a syntax error ends the operation this way
            with_code(raised)
            raise
        context = self.execution_context
        for error in [*(getattr(context.result, "errors", None) or []), *(context.pre_execution_errors or [])]:
            with_code(error)


def _should_mask(error: GraphQLError) -> bool:
    """Mask what a resolver raised by accident (a bug, an SQL error): it could carry internals.

    Errors we raise on purpose carry a code; parse and validation errors (depth, aliases, tokens,
    unknown fields) have no original exception and are the caller's to read.
    """
    if error.extensions and "code" in error.extensions:
        return False
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


LIMIT_RULES = (
    # The deepest legitimate query is 5 (inbox.items.parent.transitions.status); chains stop at 8.
    *QueryDepthLimiter(max_depth=8).validation_rules,
    *MaxAliasesLimiter(max_alias_count=15).validation_rules,
)


def build_schema(*, production: bool = False) -> strawberry.Schema:
    # Factories, not instances: a fresh extension per request (the parse/validation caches are module-level).
    extensions: list[Any] = [
        CodedErrors,  # outermost: it sees the errors every other extension leaves
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
        # The same rule classes for every request, so that ValidationCache can hit: a limiter built per
        # request makes a new rule class each time, and the cache (keyed on the rules) never matched.
        lambda: AddValidationRules(list(LIMIT_RULES)),
        lambda: MaxTokensLimiter(max_token_count=2000),
        AuditReads,
        OperationSpan,
        lambda: MaskErrors(should_mask_error=_should_mask, error_message="Unexpected error; it has been logged."),
    ]
    if production:
        from strawberry.extensions import DisableIntrospection

        extensions.append(DisableIntrospection)
    return strawberry.Schema(
        query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=production),
    )  # fmt: skip


def sdl() -> str:
    return build_schema().as_str() + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        SDL.write_text(sdl())
        print(f"wrote {SDL}")
    else:
        print(sdl(), end="")
