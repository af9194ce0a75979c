"""Properties of ``decide()``: default deny, deny wins, the period, revocation, a child's basis, borders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from events.consent import (
    Basis,
    Category,
    ConsentRecord,
    DecisionReason,
    Directive,
    Effect,
    Grantee,
    OrgType,
    Party,
    Purpose,
    crosses_border,
    decide,
    latest_versions,
)
from tests.support.consent import SEALED_TEXT

BASE = datetime(2026, 1, 1, tzinfo=UTC)
ORGS = ["harbour-shelter", "north-clinic", "city-legal"]
DIRECTIVE_IDS = [UUID(int=i) for i in range(1, 5)]  # few ids, so versions of one directive meet

JURISDICTIONS = ["GB", "IE", "FR", "PL"]
moments = st.integers(min_value=0, max_value=1000).map(lambda h: BASE + timedelta(hours=h))
parties = st.builds(Party, st.sampled_from(ORGS), st.sampled_from(OrgType))
grantees = st.one_of(
    st.builds(Grantee, org_id=st.sampled_from(ORGS)), st.builds(Grantee, org_type=st.sampled_from(OrgType))
)


@st.composite
def directives(draw: st.DrawFn, /, **fixed: object) -> Directive:
    valid_from = draw(moments)
    fields: dict[str, object] = {
        "directive_id": draw(st.sampled_from(DIRECTIVE_IDS)),
        "version": draw(st.integers(1, 3)),
        "grantee": draw(grantees),
        "categories": draw(st.frozensets(st.sampled_from(Category), min_size=1)),
        "purposes": draw(st.frozensets(st.sampled_from(Purpose), min_size=1)),
        "valid_from": valid_from,
        "valid_until": valid_from + timedelta(hours=draw(st.integers(1, 500))),
        "effect": draw(st.sampled_from(Effect)),
        "basis": draw(st.sampled_from(Basis)),
        "justification": draw(st.none() | st.just(SEALED_TEXT)),
        "recorded_by": "city-hotline",
        "approvers": tuple(draw(st.lists(st.sampled_from(["ana", "ben", "chi"]), max_size=3))),
        "subject_is_minor": draw(st.booleans()),
        "cross_border": draw(st.frozensets(st.sampled_from(JURISDICTIONS), max_size=2)),
        "any_jurisdiction": draw(st.booleans()) and draw(st.booleans()),  # rarer than a named one
    }
    fields.update(fixed)
    return Directive.model_validate(fields)


records = st.builds(ConsentRecord, directives(), st.none() | moments)
record_lists = st.lists(records, max_size=6)
queries = st.tuples(parties, st.sampled_from(Category), st.sampled_from(Purpose), moments)


@given(queries)
def test_with_no_directive_nothing_is_permitted(query: tuple[Party, Category, Purpose, datetime]) -> None:
    decision = decide([], *query)
    assert not decision.permitted
    assert decision.reason is DecisionReason.NO_DIRECTIVE


@given(record_lists, queries)
def test_nothing_is_permitted_that_no_directive_covers(
    recs: list[ConsentRecord], query: tuple[Party, Category, Purpose, datetime]
) -> None:
    party, category, purpose, _ = query
    if not any(r.directive.covers(party, category, purpose) for r in recs):
        assert not decide(recs, *query).permitted


@given(record_lists, queries, st.data())
def test_an_active_deny_wins_over_any_permit(
    recs: list[ConsentRecord], query: tuple[Party, Category, Purpose, datetime], data: st.DataObject
) -> None:
    party, category, purpose, at = query
    deny = data.draw(
        directives(
            directive_id=UUID(int=99),
            grantee=Grantee(org_id=party.org_id),
            categories=frozenset({category}),
            purposes=frozenset({purpose}),
            valid_from=at - timedelta(hours=1),
            valid_until=at + timedelta(hours=1),
            effect=Effect.DENY,
        )
    )
    decision = decide([*recs, ConsentRecord(deny)], *query)
    assert not decision.permitted
    assert decision.reason is DecisionReason.DENIED


@given(record_lists, queries)
def test_a_permit_is_only_ever_given_inside_its_directives_period(
    recs: list[ConsentRecord], query: tuple[Party, Category, Purpose, datetime]
) -> None:
    decision = decide(recs, *query)
    if decision.permitted:
        deciding = [r for r in recs if r.directive.directive_id == decision.directive_id]
        newest = max(deciding, key=lambda r: r.directive.version).directive
        assert newest.valid_from <= query[3] < newest.valid_until
        assert newest.effect is Effect.PERMIT


@given(record_lists, queries)
def test_outside_every_period_nothing_is_permitted(
    recs: list[ConsentRecord], query: tuple[Party, Category, Purpose, datetime]
) -> None:
    at = query[3]
    if all(not r.directive.in_force(at) for r in recs):
        assert not decide(recs, *query).permitted


@given(record_lists, queries, moments)
def test_a_revocation_holds_for_every_moment_after_it(
    recs: list[ConsentRecord], query: tuple[Party, Category, Purpose, datetime], revoked_at: datetime
) -> None:
    party, category, purpose, at = query
    revoked = [ConsentRecord(r.directive, revoked_at) for r in recs]
    later = max(at, revoked_at)
    assert not decide(revoked, party, category, purpose, later).permitted
    assert not decide(revoked, party, category, purpose, later + timedelta(days=365)).permitted


@given(record_lists, queries)
def test_a_childs_directive_without_a_second_approver_permits_nothing(
    recs: list[ConsentRecord], query: tuple[Party, Category, Purpose, datetime]
) -> None:
    child = [
        ConsentRecord(r.directive.model_copy(update={"subject_is_minor": True, "approvers": ("ana",)}), r.revoked_at)
        for r in recs
    ]
    assert not decide(child, *query).permitted


@given(queries)
def test_a_complete_permit_in_force_is_permitted_and_says_which(
    query: tuple[Party, Category, Purpose, datetime],
) -> None:
    party, category, purpose, at = query
    permit = Directive(
        directive_id=UUID(int=7),
        version=1,
        grantee=Grantee(org_type=party.org_type),
        categories=frozenset({category}),
        purposes=frozenset({purpose}),
        valid_from=at,
        valid_until=at + timedelta(minutes=1),
        recorded_by="city-hotline",
    )
    decision = decide([ConsentRecord(permit)], *query)
    assert decision.permitted
    assert decision.directive_id == UUID(int=7)


def test_a_newer_version_replaces_the_older() -> None:
    at = BASE + timedelta(hours=5)
    v1 = Directive(
        directive_id=UUID(int=1), version=1, grantee=Grantee(org_id="harbour-shelter"),
        categories=frozenset({Category.CONTACT}), purposes=frozenset({Purpose.SERVICE_DELIVERY}),
        valid_from=BASE, valid_until=BASE + timedelta(days=1), recorded_by="city-hotline",
    )  # fmt: skip
    v2 = v1.model_copy(update={"version": 2, "categories": frozenset({Category.CASE_STATUS})})
    party = Party("harbour-shelter", OrgType.SHELTER)
    recs = [ConsentRecord(v1), ConsentRecord(v2)]
    assert not decide(recs, party, Category.CONTACT, Purpose.SERVICE_DELIVERY, at).permitted
    assert decide(recs, party, Category.CASE_STATUS, Purpose.SERVICE_DELIVERY, at).permitted


def test_law_enforcement_is_denied_unless_named() -> None:
    everything_else = frozenset(Purpose) - {Purpose.LAW_ENFORCEMENT}
    directive = Directive(
        directive_id=UUID(int=1), version=1, grantee=Grantee(org_type=OrgType.LAW_ENFORCEMENT),
        categories=frozenset(Category), purposes=everything_else,
        valid_from=BASE, valid_until=BASE + timedelta(days=1), recorded_by="city-hotline",
    )  # fmt: skip
    police = Party("city-police", OrgType.LAW_ENFORCEMENT)
    decision = decide([ConsentRecord(directive)], police, Category.IDENTITY, Purpose.LAW_ENFORCEMENT, BASE)
    assert not decision.permitted


# ---------------------------------------------------------------- borders

places = st.frozensets(st.sampled_from(JURISDICTIONS), max_size=2)
located = st.builds(Party, st.sampled_from(ORGS), st.sampled_from(OrgType), places)
border_queries = st.tuples(located, st.sampled_from(Category), st.sampled_from(Purpose), moments, places)


def _opens(record: ConsentRecord, party: Party, category: Category, purpose: Purpose, at: datetime) -> bool:
    d = record.directive
    return (d.effect is Effect.PERMIT and record.active(at) and d.covers(party, category, purpose)
            and (d.any_jurisdiction or bool(d.cross_border & party.jurisdictions)))  # fmt: skip


@given(record_lists, border_queries)
def test_across_a_border_only_a_permit_that_names_it_permits(
    recs: list[ConsentRecord], query: tuple[Party, Category, Purpose, datetime, frozenset[str]]
) -> None:
    party, category, purpose, at, home = query
    if crosses_border(home, party.jurisdictions) and decide(recs, *query).permitted:
        assert any(_opens(r, party, category, purpose, at) for r in latest_versions(recs))


@given(record_lists, border_queries)
def test_within_the_survivors_jurisdiction_cross_border_permissions_change_nothing(
    recs: list[ConsentRecord], query: tuple[Party, Category, Purpose, datetime, frozenset[str]]
) -> None:
    party, category, purpose, at, home = query
    if not crosses_border(home, party.jurisdictions):
        domestic = [ConsentRecord(r.directive.model_copy(update={"cross_border": frozenset(),
                                                                 "any_jurisdiction": False}), r.revoked_at)
                    for r in recs]  # fmt: skip
        assert decide(recs, *query) == decide(domestic, *query)
        assert decide(recs, *query) == decide(recs, party, category, purpose, at)  # as if no border were known


@given(record_lists, border_queries)
def test_opening_a_border_never_takes_a_permission_away(
    recs: list[ConsentRecord], query: tuple[Party, Category, Purpose, datetime, frozenset[str]]
) -> None:
    opened = [ConsentRecord(r.directive.model_copy(update={"any_jurisdiction": True}), r.revoked_at) for r in recs]
    if decide(recs, *query).permitted:
        assert decide(opened, *query).permitted


@given(record_lists, border_queries)
def test_a_deny_holds_on_both_sides_of_a_border(
    recs: list[ConsentRecord], query: tuple[Party, Category, Purpose, datetime, frozenset[str]]
) -> None:
    party, category, purpose, at, _ = query
    deny = Directive(directive_id=UUID(int=99), version=1, grantee=Grantee(org_id=party.org_id),
                     categories=frozenset({category}), purposes=frozenset({purpose}), valid_from=at,
                     valid_until=at + timedelta(hours=1), effect=Effect.DENY, recorded_by="city-hotline")  # fmt: skip
    assert decide([*recs, ConsentRecord(deny)], *query).reason is DecisionReason.DENIED


def test_a_permit_for_the_survivors_own_jurisdiction_does_not_reach_across_a_border() -> None:
    shelter = Party("harbour-shelter", OrgType.SHELTER, frozenset({"FR"}))
    permit = {"directive_id": DIRECTIVE_IDS[0], "version": 1, "grantee": Grantee(org_id="harbour-shelter"),
              "categories": {Category.IDENTITY}, "purposes": {Purpose.SERVICE_DELIVERY}, "valid_from": BASE,
              "valid_until": BASE + timedelta(days=30), "recorded_by": "city-hotline"}  # fmt: skip
    at, home = BASE + timedelta(days=1), frozenset({"GB"})
    domestic = [ConsentRecord(Directive.model_validate(permit))]
    refused = decide(domestic, shelter, Category.IDENTITY, Purpose.SERVICE_DELIVERY, at, home)
    assert (refused.permitted, refused.reason) == (False, DecisionReason.ACROSS_BORDER)
    named = [ConsentRecord(Directive.model_validate({**permit, "cross_border": {"FR"}}))]
    assert decide(named, shelter, Category.IDENTITY, Purpose.SERVICE_DELIVERY, at, home).permitted
    elsewhere = [ConsentRecord(Directive.model_validate({**permit, "cross_border": {"PL"}}))]
    assert not decide(elsewhere, shelter, Category.IDENTITY, Purpose.SERVICE_DELIVERY, at, home).permitted
    anywhere = [ConsentRecord(Directive.model_validate({**permit, "any_jurisdiction": True}))]
    assert decide(anywhere, shelter, Category.IDENTITY, Purpose.SERVICE_DELIVERY, at, home).permitted
