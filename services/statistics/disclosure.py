"""Statistical disclosure control: which cells of a release to suppress so that no published figure, alone or
with the others and with earlier releases, tells anyone about fewer than ``THRESHOLD`` survivors.

A table counts survivors by one or two coded dimensions, with its margins: each row and column total and the grand
total. A cell is a ``Key``, the dimension values it fixes (a margin fixes fewer; the grand total fixes none). A
release publishes one table for one calendar period. The rules:

1. **Primary suppression.** A figure under ``THRESHOLD`` (zero included) is not published.
2. **Complementary suppression.** Within each line of the table (a row, a column, the totals) the suppressed figures
   are none, or at least two whose sum is at least ``THRESHOLD``; and no suppressed figure can be worked out from the
   published ones by any combination of the table's sums (linear algebra: it is not in the row space of the
   equations over the unknowns). The smallest interior cell is suppressed next, so as little as possible is lost.
3. **Against earlier releases.** Figures an earlier release of the same period suppressed stay suppressed. Taken
   with every earlier release of the same period (as the same figures, which they are unless the population
   changed) no suppressed figure can be worked out. And for every earlier release whose period contains this one or
   lies within it (the same period included), no difference between a figure here and the same figure there that
   the two releases determine counts between 1 and ``THRESHOLD - 1`` survivors: that difference is a group of its
   own (those identified in the rest of the longer period, or those who left between two releases, such as a
   survivor who revoked statistics consent).

The algebra is exact: Gauss-Jordan elimination modulo a Mersenne prime, where every count and every difference of
counts is far smaller than the prime, so a value found modulo it is the integer itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product

from events.statistics import THRESHOLD

ALL = "*"

Key = frozenset[tuple[str, str]]
"""The dimension values a figure fixes: ``{("age_band", "age_18_20"), ("gender", "female")}``; ``frozenset()`` is
the grand total."""

P = (1 << 61) - 1


def key(**values: str) -> Key:
    return frozenset((d, v) for d, v in values.items() if v != ALL)


@dataclass(frozen=True)
class Table:
    """Counts by ``dims`` (one or two), every combination of ``values`` with its margins."""

    dims: tuple[str, ...]
    values: Mapping[str, Sequence[str]]
    counts: Mapping[Key, int]

    @classmethod
    def of(cls, dims: Sequence[str], values: Mapping[str, Sequence[str]], rows: Iterable[Mapping[str, str]]) -> Table:
        """Count ``rows`` (one per survivor) by ``dims``; every figure of the table, zeros and margins included."""
        counts: dict[Key, int] = dict.fromkeys(all_keys(dims, values), 0)
        for row in rows:
            for k in margins_of(dims, {d: row[d] for d in dims}):
                counts[k] = counts.get(k, 0) + 1
        return cls(tuple(dims), {d: list(values[d]) for d in dims}, counts)

    def lines(self) -> list[tuple[list[Key], Key]]:
        """Each sum the table holds: (the parts, their total)."""
        if len(self.dims) == 1:
            (d,) = self.dims
            return [([key(**{d: v}) for v in self.values[d]], key())]
        a, b = self.dims
        found = [([key(**{a: x, b: y}) for y in self.values[b]], key(**{a: x})) for x in self.values[a]]
        found += [([key(**{a: x, b: y}) for x in self.values[a]], key(**{b: y})) for y in self.values[b]]
        found += [([key(**{a: x}) for x in self.values[a]], key()), ([key(**{b: y}) for y in self.values[b]], key())]
        return found


def all_keys(dims: Sequence[str], values: Mapping[str, Sequence[str]]) -> list[Key]:
    options = [[*values[d], ALL] for d in dims]
    return [key(**dict(zip(dims, combo, strict=True))) for combo in product(*options)]


def margins_of(dims: Sequence[str], cell: Mapping[str, str]) -> list[Key]:
    """The figures one survivor in ``cell`` counts in: the cell and every margin above it."""
    options = [[cell[d], ALL] for d in dims]
    return [key(**dict(zip(dims, combo, strict=True))) for combo in product(*options)]


@dataclass(frozen=True)
class Published:
    """A release as kept: its period (a calendar month, quarter or year, as an interval of months), its table's
    lines, and what it published (a suppressed figure is absent)."""

    period: tuple[int, int]  # months since year 0, [start, end)
    lines: list[tuple[list[Key], Key]]
    shown: Mapping[Key, int]
    keys: frozenset[Key] = field(default_factory=frozenset)

    def nests_with(self, other: Published) -> bool:
        (a, b), (c, d) = self.period, other.period
        return (a <= c and d <= b) or (c <= a and b <= d)


def protect(table: Table, period: tuple[int, int], earlier: Sequence[Published] = ()) -> Published:
    """What ``table`` may publish for ``period``, given what ``earlier`` releases published."""
    counts = dict(table.counts)
    lines = table.lines()
    hidden = {k for k, v in counts.items() if v < THRESHOLD}
    same = [e for e in earlier if e.period == period]
    hidden |= {k for e in same for k in e.keys & counts.keys() if k not in e.shown}
    while True:
        grown = _complete_lines(lines, counts, hidden)
        grown |= _undetermined(lines, counts, hidden, same)
        grown |= _no_small_differences(lines, counts, hidden, period, earlier)
        if not grown - hidden:
            break
        hidden |= grown
    shown = {k: v for k, v in counts.items() if k not in hidden}
    return Published(period, lines, shown, frozenset(counts))


def _cheapest(candidates: Iterable[Key], counts: Mapping[Key, int]) -> Key:
    """The next figure to suppress: an interior cell before a margin, the smallest first."""
    return min(candidates, key=lambda k: (-len(k), counts[k], sorted(k)))


def _complete_lines(lines: list[tuple[list[Key], Key]], counts: Mapping[Key, int], hidden: set[Key]) -> set[Key]:
    """Every line with a suppression has at least two, summing to at least ``THRESHOLD`` (where it can)."""
    more = set(hidden)
    changed = True
    while changed:
        changed = False
        for parts, total in lines:
            members = [*parts, total]
            out = [k for k in members if k in more]
            if not out:
                continue
            if len(out) < 2 or sum(counts[k] for k in out) < THRESHOLD:
                rest = [k for k in members if k not in more]
                if rest:
                    more.add(_cheapest(rest, counts))
                    changed = True
    return more


def _undetermined(
    lines: list[tuple[list[Key], Key]], counts: Mapping[Key, int], hidden: set[Key], same: Sequence[Published]
) -> set[Key]:
    """Suppress more until no suppressed figure follows from the sums: this table's, with those of earlier releases
    of the same period (whose figures, unless the population changed, are the same ones)."""
    more = set(hidden)
    earlier = {k: v for e in same for k, v in e.shown.items()}
    every = [*lines, *(line for e in same for line in e.lines)]
    while True:
        system = System.of(every, {**{k: v for k, v in counts.items() if k not in more}, **earlier})
        found = [k for k in sorted(more - earlier.keys(), key=sorted) if system.determined({k: 1}) is not None]
        if not found:
            return more
        k = found[0]  # one at a time: one more suppression often protects several
        rest = [m for parts, total in lines if k in (*parts, total) for m in (*parts, total)
                if m not in more and m not in earlier]  # fmt: skip
        if not rest:
            return more  # only figures an earlier release published fix it: it was shown there, or found there
        more.add(_cheapest(rest, counts))


def _no_small_differences(
    lines: list[tuple[list[Key], Key]], counts: Mapping[Key, int], hidden: set[Key], period: tuple[int, int],
    earlier: Sequence[Published],
) -> set[Key]:  # fmt: skip
    """Against each earlier release of a nesting period, no figure shown in both differs by 1 to ``THRESHOLD - 1``.

    The two tables share no unknowns, so a difference the two determine is one of two figures each shown (a
    suppressed figure that its own table's sums determined would already be a leak of its own)."""
    more = set(hidden)
    for e in (e for e in earlier if e.nests_with(Published(period, lines, {}))):
        while small := [k for k in sorted(e.shown.keys() & counts.keys(), key=sorted)
                        if k not in more and 0 < abs(counts[k] - e.shown[k]) < THRESHOLD]:  # fmt: skip
            more = _complete_lines(lines, counts, more | {small[0]})
    return more


@dataclass
class System:
    """Linear sums over figures, some known: which unknown combinations they determine (exactly, modulo ``P``)."""

    rows: list[dict[Key, int]]  # reduced: each row's pivot is 1 and absent from every other row
    pivots: dict[Key, int]  # unknown → its row
    constants: list[int]
    known: Mapping[Key, int]

    @classmethod
    def of(cls, lines: Iterable[tuple[list[Key], Key]], known: Mapping[Key, int]) -> System:
        equations: list[tuple[dict[Key, int], int]] = []
        for parts, total in lines:  # sum(parts) - total = 0
            row: dict[Key, int] = {}
            constant = 0
            for item, sign in [*((p, 1) for p in parts), (total, -1)]:
                if item in known:
                    constant -= sign * known[item]
                else:
                    row[item] = (row.get(item, 0) + sign) % P
            row = {k: v for k, v in row.items() if v}
            if row:
                equations.append((row, constant % P))
        system = cls([], {}, [], known)
        for row, constant in equations:
            system._add(row, constant)
        return system

    def _add(self, row: dict[Key, int], constant: int) -> None:
        row = dict(row)
        for unknown, index in self.pivots.items():  # reduce by the rows so far
            if (factor := row.get(unknown)) is not None:
                for k, v in self.rows[index].items():
                    row[k] = (row.get(k, 0) - factor * v) % P
                constant = (constant - factor * self.constants[index]) % P
                row = {k: v for k, v in row.items() if v}
        if not row:
            return  # implied by the others
        pivot = min(row, key=repr)
        inverse = pow(row[pivot], P - 2, P)
        row = {k: v * inverse % P for k, v in row.items()}
        constant = constant * inverse % P
        for index, other in enumerate(self.rows):  # clear the new pivot from the earlier rows
            if (factor := other.get(pivot)) is not None:
                for k, v in row.items():
                    other[k] = (other.get(k, 0) - factor * v) % P
                self.constants[index] = (self.constants[index] - factor * constant) % P
                self.rows[index] = {k: v for k, v in other.items() if v}
        self.pivots[pivot] = len(self.rows)
        self.rows.append(row)
        self.constants.append(constant)

    def determined(self, combination: Mapping[Key, int]) -> int | None:
        """The value of ``combination`` (unknowns → coefficients; known figures count as their values) if the sums
        fix it, else None."""
        value = sum(v * self.known[k] for k, v in combination.items() if k in self.known) % P
        rest = {k: v % P for k, v in combination.items() if k not in self.known}
        for unknown in list(rest):
            if unknown in self.pivots and (factor := rest.get(unknown)):
                index = self.pivots[unknown]
                for k, v in self.rows[index].items():
                    rest[k] = (rest.get(k, 0) - factor * v) % P
                value = (value + factor * self.constants[index]) % P
        if any(rest.values()):
            return None
        return value if value <= P // 2 else value - P
