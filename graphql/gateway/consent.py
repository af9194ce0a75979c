"""Consent at the field: every field that carries a category resolves through ``decide()``, per request.

A field the viewer may not see resolves to null with a ``CONSENT_REQUIRED`` error; its value is
never computed. What is shown is noted for the audit, which is written before the response leaves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from strawberry.extensions import FieldExtension
from strawberry.types import Info

from events.consent import Category, ConsentRecord, Decision, Directive, Purpose, decide
from gateway.auth import Principal
from graphql import GraphQLError
from services.kernel import metrics
from services.kernel.db import Pool


@dataclass
class ConsentScope:
    """One request's view: who asks (with where they work), the survivors' consent and own jurisdictions (loaded
    once each), and what was shown."""

    pool: Pool
    principal: Principal
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    _records: dict[UUID, list[ConsentRecord]] = field(default_factory=dict)
    _homes: dict[UUID, frozenset[str]] = field(default_factory=dict)
    shown: dict[tuple[UUID, Purpose], set[Category]] = field(default_factory=lambda: defaultdict(set))

    def know(
        self, survivor_id: UUID, directives: Iterable[tuple[Any, datetime | None]], home: Iterable[str] | None
    ) -> None:
        """Take the survivor's directives (JSON, revoked at) and jurisdictions when a query already fetched them."""
        self._records[survivor_id] = [ConsentRecord(Directive.model_validate(d), revoked) for d, revoked in directives]
        self._homes[survivor_id] = frozenset(home or ())

    async def records(self, survivor_id: UUID) -> list[ConsentRecord]:
        if survivor_id not in self._records:
            row: Any = await self.pool.fetchrow(CONSENT, survivor_id)  # one row, always
            self.know(survivor_id, zip(row["directives"] or [], row["revoked"] or [], strict=True), row["home"])
        return self._records[survivor_id]

    def home(self, survivor_id: UUID) -> frozenset[str]:
        """The survivor's own jurisdictions, once ``records`` loaded them."""
        return self._homes.get(survivor_id, frozenset())

    async def decision(self, survivor_id: UUID, category: Category, purpose: Purpose) -> Decision:
        records = await self.records(survivor_id)
        return decide(records, self.principal.party, category, purpose, self.at, self._homes[survivor_id])

    async def decide(self, survivor_id: UUID, category: Category, purpose: Purpose) -> Decision:
        decision = await self.decision(survivor_id, category, purpose)
        outcome = "permitted" if decision.permitted else "denied"
        metrics.CONSENT_DECISIONS.add(
            1, {"haven.consent.category": category.value, "haven.consent.purpose": purpose.value, "outcome": outcome}
        )
        return decision


CONSENT = """
SELECT (SELECT array_agg(directive) FROM gateway.consent_directives WHERE survivor_id = $1) AS directives,
       (SELECT array_agg(revoked_at) FROM gateway.consent_directives WHERE survivor_id = $1) AS revoked,
       (SELECT o.profile->'jurisdictions' FROM gateway.survivors s JOIN gateway.organisations o
           ON o.org_id = s.screener_org WHERE s.survivor_id = $1) AS home"""
"""A survivor's directives and own jurisdictions (the screening organisation's), in one round trip."""


class Consent(FieldExtension):
    """Gate a field on ``category``: the source must carry ``survivor_id`` and ``purpose``."""

    def __init__(self, category: Category) -> None:
        super().__init__()
        self.category = category

    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        raise RuntimeError("consent-gated fields resolve asynchronously")  # pragma: no cover

    async def resolve_async(self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any) -> Any:
        scope: ConsentScope = info.context["consent"]
        decision = await scope.decide(source.survivor_id, self.category, source.purpose)
        if not decision.permitted:
            raise GraphQLError(
                f"the survivor's consent does not permit {self.category} to {scope.principal.org_id} "
                f"for {source.purpose} ({decision.reason})",
                extensions={"code": "CONSENT_REQUIRED", "category": self.category, "reason": decision.reason},
            )
        scope.shown[(source.survivor_id, source.purpose)].add(self.category)
        return await next_(source, info, **kwargs)
