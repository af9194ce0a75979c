"""The suppression property: random survivors, random tables, random releases over nested periods (with survivors
leaving between them, as after a revocation), then an attacker who tries every differencing it can, with its own
linear algebra (numpy's rank, not the protector's elimination), to recover a suppressed figure or a small group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.statistics import THRESHOLD
from services.statistics.disclosure import Key, Published, Table, protect

VOCABULARY = {
    "age": ["0-8", "9-17", "18-20", "21-23", "24-26", "27-29"],
    "gender": ["woman", "man", "other"],
    "sector": ["a", "b", "c", "d"],
}
DIMENSIONS = [("age",), ("gender",), ("age", "gender"), ("age", "sector"), ("gender", "sector")]
YEAR = (2026 * 12, 2027 * 12)
QUARTERS = [(YEAR[0] + 3 * q, YEAR[0] + 3 * q + 3) for q in range(4)]

survivors = st.lists(
    st.fixed_dictionaries({d: st.sampled_from(v) for d, v in VOCABULARY.items()} | {"month": st.integers(0, 11)}),
    max_size=300,
)
releases = st.lists(
    st.tuples(st.sampled_from(DIMENSIONS), st.sampled_from([YEAR, *QUARTERS[:2]]), st.integers(0, 3)),
    min_size=1, max_size=4,
)  # fmt: skip


def _release(people: list[dict[str, object]], dims: Sequence[str], period: tuple[int, int]) -> Table:
    inside = [p for p in people if period[0] <= YEAR[0] + int(str(p["month"])) < period[1]]
    return Table.of(dims, VOCABULARY, [{d: str(p[d]) for d in dims} for p in inside])


def recoverable(lines: Sequence[tuple[list[Key], Key]], known: Mapping[Key, int], target: Key) -> bool:
    """Does a combination of the sums give ``target``? It does iff adding its unit row leaves the rank unchanged."""
    unknowns = sorted({k for parts, total in lines for k in (*parts, total) if k not in known}, key=sorted)
    if target not in unknowns:
        return True
    column = {k: i for i, k in enumerate(unknowns)}
    matrix = np.zeros((len(lines), len(unknowns)))
    for row, (parts, total) in enumerate(lines):
        for k, sign in [*((p, 1.0) for p in parts), (total, -1.0)]:
            if k in column:
                matrix[row, column[k]] += sign
    unit = np.zeros((1, len(unknowns)))
    unit[0, column[target]] = 1.0
    return bool(np.linalg.matrix_rank(np.vstack([matrix, unit])) == np.linalg.matrix_rank(matrix))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(survivors, releases)
def test_no_suppressed_figure_and_no_small_group_can_be_recovered_by_differencing(
    people: list[dict[str, object]], plan: list[tuple[tuple[str, ...], tuple[int, int], int]]
) -> None:
    published: list[tuple[Published, Table, int]] = []  # each release, its true table, the population's version
    version = 0
    for dims, period, leaving in plan:
        if leaving and people:  # some survivors revoke statistics consent (or are erased) before this release
            people, version = people[leaving:], version + 1
        table = _release(people, dims, period)
        release = protect(table, period, [p for p, _, _ in published])
        published.append((release, table, version))

        assert all(v >= THRESHOLD for v in release.shown.values()), "every published figure counts 11 or more"
        assert all(release.shown[k] == table.counts[k] for k in release.shown), "published figures are true"
        hidden = release.keys - release.shown.keys()
        for k in hidden:  # alone
            assert not recoverable(release.lines, release.shown, k), f"{sorted(k)} follows from the table's sums"

    for i, (later, _, later_version) in enumerate(published):
        for earlier, _, earlier_version in published[:i]:
            if earlier.period == later.period and earlier_version == later_version:
                # The same survivors, shown twice: one system, every figure shared.
                known = {**earlier.shown, **later.shown}
                lines = [*earlier.lines, *later.lines]
                for k in (earlier.keys | later.keys) - known.keys():
                    assert not recoverable(lines, known, k), f"{sorted(k)} follows from two releases together"
            if earlier.nests_with(later):
                for k in earlier.shown.keys() & later.shown.keys():
                    difference = abs(later.shown[k] - earlier.shown[k])
                    assert difference == 0 or difference >= THRESHOLD, f"{sorted(k)}: a group of {difference}"


def test_a_small_cell_is_suppressed_with_a_complement_in_its_row_and_column() -> None:
    rows = [{"age": "18-20", "gender": "woman"}] * 30 + [{"age": "18-20", "gender": "man"}] * 3
    rows += [{"age": "21-23", "gender": "woman"}] * 20 + [{"age": "21-23", "gender": "man"}] * 25
    vocabulary = {"age": ["18-20", "21-23"], "gender": ["woman", "man"]}
    table = Table.of(["age", "gender"], vocabulary, rows)
    release = protect(table, QUARTERS[0])
    shown = {tuple(sorted(dict(k).items())): v for k, v in release.shown.items()}
    assert (("age", "18-20"), ("gender", "man")) not in shown, "3 survivors: suppressed"
    assert shown[()] == 78, "the grand total is large and safe"
    hidden = release.keys - release.shown.keys()
    assert len(hidden) >= 4, "its row and its column each lose another figure, and so does one more line"
    for k in hidden:
        assert not recoverable(release.lines, release.shown, k)


def test_a_bridge_between_two_groups_of_suppressed_cells_is_protected_by_one_more_suppression() -> None:
    """Every line holds two or more suppressed cells, summing to 11 or more, and still the cell joining the two
    groups follows from the sums (rows 1 and 2 less columns 1 and 2): the algebra finds it and suppresses more."""
    ages, genders = ["a1", "a2", "a3", "a4"], ["g1", "g2", "g3", "g4"]
    small = {("a1", "g1"), ("a1", "g2"), ("a2", "g1"), ("a2", "g2"), ("a3", "g3"), ("a3", "g4"), ("a4", "g3"),
             ("a4", "g4"), ("a2", "g3")}  # fmt: skip
    rows = [{"age": a, "gender": g} for a in ages for g in genders for _ in range(6 if (a, g) in small else 50)]
    table = Table.of(["age", "gender"], {"age": ages, "gender": genders}, rows)
    bridge = frozenset({("age", "a2"), ("gender", "g3")})
    primary = {k: v for k, v in table.counts.items() if v >= THRESHOLD}
    assert recoverable(table.lines(), primary, bridge), "primary suppression alone gives the bridge away"
    release = protect(table, QUARTERS[0])
    assert len(release.keys - release.shown.keys()) > len(small)
    for k in release.keys - release.shown.keys():
        assert not recoverable(release.lines, release.shown, k), sorted(k)
