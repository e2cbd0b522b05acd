"""Input domains as data: the dimensions of a target's contract and the edges a campaign must reach.

A :class:`Domain` names the dimensions of a target's input (T tokens, K, local experts E, hidden
size H, page_size, batch size...), each with the bounds a campaign draws it in and its notable
values (T in {255, 256, 257, 1023, 1024, 1025}), plus edges that are not one value of one
dimension (E local at its maximum with most experts populated, H not a multiple of 128). Each
bound, value and edge is a :class:`Point`: a name and a predicate over a
:class:`~moefuzz.model.case.Case`. ``moefuzz targets --domain NAME`` prints a domain;
``moefuzz coverage`` and a campaign's JSON report count how many drawn cases hit each point
(:class:`Coverage`), and a point no case hit is a region of the contract the strategy never draws.

Bounds are the contract's, capped by the campaign's :class:`~moefuzz.model.target.Limits` where a
dimension names one (``cap="max_tokens"``): the interpreter draws at most 2,048 tokens, so T's
upper bound there is 2,048, not the contract's 65,536.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from moefuzz.model.case import Case

if TYPE_CHECKING:
    from moefuzz.model.target import Limits


@dataclass(frozen=True)
class Point:
    """One bound, notable value or edge of a domain.

    Attributes:
        name: ``T=256``, ``E_local=max``, ``H%128!=0``: what ``moefuzz coverage`` prints.
        hit: ``hit(case) -> bool``; must not raise on a case the contract accepts.
        note: why it matters (one line, optional).
    """

    name: str
    hit: Callable[[Case], bool]
    note: str = ""


@dataclass(frozen=True)
class Dimension:
    """One dimension of a target's input.

    Attributes:
        name: short field name (``T``, ``K``, ``E_local``, ``H``, ``page_size``).
        measure: ``measure(case) -> int``, the dimension's value on a case.
        low, high: the contract's bounds (inclusive).
        values: notable values (each one a point ``name=value`` when it lies within the bounds).
        cap: what caps ``high`` for a campaign: a :class:`~moefuzz.model.target.Limits` field
            (``max_tokens``, ``max_topk``, ``max_experts``), a ``cap(limits) -> int`` (the
            target's own budget under those limits), or ``""``.
        note: what the dimension is (one line).
        slack: for a sum or a budget that rarely lands on one value: the max point counts values
            within ``slack`` (a fraction of ``high``) below it, ``name>=v (max)``.
    """

    name: str
    measure: Callable[[Case], int]
    low: int
    high: int
    values: tuple[int, ...] = ()
    cap: str | Callable[[Limits], int] = ""
    note: str = ""
    slack: float = 0.0

    def bounds(self, limits: Limits | None = None) -> tuple[int, int]:
        """(low, high) with ``high`` capped by ``limits`` when the dimension names a cap."""
        high = self.high
        if limits is not None and self.cap:
            high = min(high, int(getattr(limits, self.cap) if isinstance(self.cap, str) else self.cap(limits)))
        return self.low, max(self.low, high)

    def points(self, limits: Limits | None = None) -> list[Point]:
        """``name=low``, ``name=high`` (the bounds), then ``name=v`` for each notable value
        strictly between them."""
        low, high = self.bounds(limits)
        measure = self.measure
        top = Point(f"{self.name}={high} (max)", _equals(measure, high))
        if self.slack:
            near = max(low, int(high * (1.0 - self.slack)))
            top = Point(f"{self.name}>={near} (max)", lambda case: measure(case) >= near)
        points = [Point(f"{self.name}={low} (min)", _equals(measure, low)), top]
        points += [Point(f"{self.name}={v}", _equals(measure, v)) for v in self.values if low < v < high]
        return points


def _equals(measure: Callable[[Case], int], value: int) -> Callable[[Case], bool]:
    return lambda case: measure(case) == value


@dataclass(frozen=True)
class Domain:
    """The input domain of a target: dimensions and edges (see the module doc).

    Attributes:
        dimensions: every dimension with its bounds and notable values.
        edges: points across dimensions (``E_local=max, >=90 % populated``).
    """

    dimensions: Sequence[Dimension]
    edges: Sequence[Point] = field(default_factory=tuple)

    def points(self, limits: Limits | None = None) -> list[Point]:
        """Every point of the domain within ``limits``, dimensions first, in declaration order."""
        points = [p for d in self.dimensions for p in d.points(limits)]
        return points + list(self.edges)

    def describe(self, limits: Limits | None = None) -> list[str]:
        """Lines for ``moefuzz targets --domain``: a dimension a line with its bounds and
        notable values, then each edge."""
        lines = []
        for d in self.dimensions:
            low, high = d.bounds(limits)
            by = f"limits.{d.cap}" if isinstance(d.cap, str) else "the target's budget"
            capped = f" (contract max {d.high}; capped by {by})" if high < d.high else ""
            values = [v for v in d.values if low < v < high]
            notable = f"  notable {', '.join(str(v) for v in values)}" if values else ""
            note = f"  {d.note}" if d.note else ""
            lines.append(f"{d.name:<12} {low}..{high}{capped}{notable}{note}")
        lines += [f"edge {p.name}" + (f"  {p.note}" if p.note else "") for p in self.edges]
        return lines


class Coverage:
    """How many cases hit each point of a domain.

    Args:
        points: the points counted (:meth:`Domain.points`).
    """

    def __init__(self, points: Sequence[Point]) -> None:
        self.points = list(points)
        self.counts = [0] * len(self.points)
        self.cases = 0

    def mask(self, case: Case) -> int:
        """Bit ``i`` set when ``case`` hits point ``i`` (what a worker or drawer sends back)."""
        bits = 0
        for i, point in enumerate(self.points):
            if point.hit(case):
                bits |= 1 << i
        return bits

    def add_mask(self, bits: int) -> None:
        """Count one case by its :meth:`mask`."""
        self.cases += 1
        i = 0
        while bits:
            if bits & 1:
                self.counts[i] += 1
            bits >>= 1
            i += 1

    def add(self, case: Case) -> None:
        """Count one case."""
        self.add_mask(self.mask(case))

    @classmethod
    def from_hits(cls, hits: Mapping[str, int], cases: int) -> Coverage:
        """The coverage whose :attr:`hits` are ``hits`` (point name: cases that hit it, in the
        domain's order) over ``cases`` cases: what another process counted, sent as plain data.
        Like a pickled copy, it reports and prints but counts no new case (its points have no
        predicates)."""
        coverage = cls([Point(name, _unpicklable) for name in hits])
        coverage.counts = [int(n) for n in hits.values()]
        coverage.cases = int(cases)
        return coverage

    @property
    def hits(self) -> dict[str, int]:
        """``{point name: cases that hit it}``, in the domain's order."""
        return {p.name: n for p, n in zip(self.points, self.counts, strict=True)}

    def __getstate__(self) -> dict[str, object]:
        """Pickled (a status crossing a pipe) without the predicates, which may be lambdas: the
        copy reports and prints, it does not :meth:`mask`."""
        return {
            "points": [Point(p.name, _unpicklable, p.note) for p in self.points],
            "counts": self.counts,
            "cases": self.cases,
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)

    @property
    def missed(self) -> list[str]:
        """Names of the points no case hit."""
        return [p.name for p, n in zip(self.points, self.counts, strict=True) if n == 0]

    def to_json(self) -> dict[str, object]:
        """``{"cases": N, "hits": {point: count}, "missed": [...]}`` for a JSON report."""
        return {"cases": self.cases, "hits": self.hits, "missed": self.missed}

    def lines(self) -> list[str]:
        """One line per point: count, share of the cases, name; a never-hit point says MISSED."""
        width = max((len(p.name) for p in self.points), default=0)
        out = []
        for p, n in zip(self.points, self.counts, strict=True):
            share = 100.0 * n / self.cases if self.cases else 0.0
            flag = "  MISSED" if n == 0 else ""
            out.append(f"{p.name:<{width}}  {n:>7}  {share:5.1f} %{flag}")
        return out


def _unpicklable(case: Case) -> bool:
    raise TypeError("a Coverage copied through a pipe counts no new case (its predicates stayed behind)")


def coverage_of(target_domain: Domain | None, limits: Limits | None) -> Coverage | None:
    """A :class:`Coverage` of ``target_domain`` within ``limits``; ``None`` without a domain."""
    return None if target_domain is None else Coverage(target_domain.points(limits))
