"""Quality targets per department and figure (质量目标分解表), and the figures that miss them.

The dashboard (``board.py``) tracks four figures of the procedures' live board, each a rate over a
period (their definitions are in ``board.py``):

==================  ==============  =====================================  =========  ========
figure              board name      what                                   kept       default
==================  ==============  =====================================  =========  ========
``collection``      反馈收集率      feedback taken up within its deadline  ``>=``     0.95
``completion``      整改完成率      measures due that were done            ``>=``     0.90
``satisfaction``    客户满意度      mean callback score, 1-5               ``>=``     4.0
``recurrence``      同类问题重复率  tickets that came back                 ``<=``     0.05
==================  ==============  =====================================  =========  ========

**Targets** are one setting, ``FIGURE>=VALUE`` or ``FIGURE<=VALUE`` items separated by commas,
a department's own target as ``DEPARTMENT.FIGURE``; what it leaves out keeps its default, and a
department without its own target has the overall one. Rates are 0 to 1 or a percentage
(``95%``), the satisfaction a score from 1 to 5. Each figure is kept in one direction only, so a
target written the other way round (``recurrence>=0.05``) is refused rather than read::

    collection>=0.95,completion>=0.9,satisfaction>=4.0,recurrence<=0.05,R&D.completion>=0.95

**The two-week rule** (:func:`weekly_misses`): a department's figure below its target in each of
the last two complete ISO weeks is an alert. A figure over nothing (no feedback, no measures due,
no callbacks, no tickets) is None and misses nothing.

**A period's figures** (:class:`Counts`, what each figure is made of, counted by ``board.py``)
and a department's row of them against its targets (:class:`FigureRow`).

Pure code: values in, values out; weeks are computed from a time given by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cloud.ticketing.measures import DEPARTMENTS
from contract.errors import QloopError


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure of the board: its name, its board names and the direction it is kept in."""

    name: str
    zh: str
    en: str
    op: str  # ">=": kept high; "<=": kept low
    low: float  # the range of a value
    high: float

    @property
    def is_rate(self) -> bool:
        return self.high == 1.0


FIGURES: dict[str, Figure] = {
    f.name: f
    for f in (
        Figure("collection", "反馈收集率", "feedback collection rate", ">=", 0.0, 1.0),
        Figure("completion", "整改完成率", "measure completion rate", ">=", 0.0, 1.0),
        Figure("satisfaction", "客户满意度", "customer satisfaction", ">=", 1.0, 5.0),
        Figure("recurrence", "同类问题重复率", "recurrence rate", "<=", 0.0, 1.0),
    )
}
DEFAULTS: dict[str, float] = {
    "collection": 0.95,
    "completion": 0.90,
    "satisfaction": 4.0,
    "recurrence": 0.05,
}
#: How many complete weeks running a figure must miss its target to alert.
WEEKS = 2


class TargetsError(QloopError, ValueError):
    """A targets setting that cannot be read; the message names the item and what is wrong."""


@dataclass(frozen=True, slots=True)
class Target:
    """What one figure must be: ``value`` or more (``>=``), or at most (``<=``)."""

    figure: str
    value: float

    @property
    def op(self) -> str:
        return FIGURES[self.figure].op

    def missed(self, value: float | None) -> bool:
        """Whether ``value`` misses the target (a figure over nothing misses nothing).

        >>> Target("recurrence", 0.05).missed(0.1), Target("collection", 0.95).missed(None)
        (True, False)
        """
        if value is None:
            return False
        return value < self.value if self.op == ">=" else value > self.value

    def __str__(self) -> str:
        return f"{self.figure}{self.op}{self.value:g}"


@dataclass(frozen=True)
class Targets:
    """The overall targets and the departments' own ones (:meth:`parse` reads the setting).

    >>> t = Targets.parse("completion>=0.8,R&D.completion>=95%")
    >>> t.target("completion", "R&D").value, t.target("completion", "Service").value
    (0.95, 0.8)
    >>> str(t.target("recurrence"))
    'recurrence<=0.05'
    >>> try:
    ...     Targets.parse("recurrence>=0.05")
    ... except TargetsError as e:
    ...     print(e)
    targets: recurrence is kept low: write recurrence<=VALUE (in 'recurrence>=0.05')
    """

    overall: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULTS))
    departments: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, departments: Iterable[str] = DEPARTMENTS) -> Targets:
        """The targets of a setting (see the module); raises :class:`TargetsError`."""
        known = tuple(departments)
        overall = dict(DEFAULTS)
        given: set[tuple[str | None, str]] = set()
        own: dict[str, dict[str, float]] = {}
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            department, figure, value = _item(item, known)
            if (department, figure) in given:
                named = f"{department}.{figure}" if department else figure
                raise TargetsError(f"targets: {named} is given twice")
            given.add((department, figure))
            if department is None:
                overall[figure] = value
            else:
                own.setdefault(department, {})[figure] = value
        return cls(overall, own)

    def target(self, figure: str, department: str | None = None) -> Target:
        """The target of ``figure`` for ``department`` (its own, else the overall one)."""
        own = self.departments.get(department or "", {})
        return Target(figure, own.get(figure, self.overall[figure]))

    def __str__(self) -> str:
        items = [str(self.target(f)) for f in FIGURES]
        for d, own in self.departments.items():
            items += [f"{d}.{Target(f, v)}" for f, v in own.items()]
        return ",".join(items)


def _item(item: str, departments: Sequence[str]) -> tuple[str | None, str, float]:
    """(department or None, figure, value) of one ``[DEPARTMENT.]FIGURE>=VALUE`` item."""
    op = ">=" if ">=" in item else "<=" if "<=" in item else None
    if op is None:
        raise TargetsError(f"targets: {item!r} is not [DEPARTMENT.]FIGURE>=VALUE or <=VALUE")
    name, _, number = (part.strip() for part in item.partition(op))
    department, _, figure = name.rpartition(".")
    if figure not in FIGURES:
        raise TargetsError(
            f"targets: unknown figure {figure!r} in {item!r}; figures: {', '.join(FIGURES)}"
        )
    spec = FIGURES[figure]
    if op != spec.op:
        kept = "high" if spec.op == ">=" else "low"
        raise TargetsError(
            f"targets: {figure} is kept {kept}: write {figure}{spec.op}VALUE (in {item!r})"
        )
    if department and department not in departments:
        raise TargetsError(
            f"targets: unknown department {department!r} in {item!r};"
            f" departments: {', '.join(departments)}"
        )
    return department or None, figure, _value(spec, number, item)


def _value(spec: Figure, number: str, item: str) -> float:
    percent = number.endswith("%") and spec.is_rate
    try:
        value = float(number.removesuffix("%")) / (100 if percent else 1)
    except ValueError:
        raise TargetsError(f"targets: {number!r} in {item!r} is not a number") from None
    if not spec.low <= value <= spec.high:  # NaN is refused here too
        what = "a rate from 0 to 1 (or 0% to 100%)" if spec.is_rate else "a score from 1 to 5"
        raise TargetsError(f"targets: {spec.name} is {what}, got {number!r} in {item!r}")
    return value


# --- weeks and misses ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, order=True)
class IsoWeek:
    """An ISO week (Monday to Monday, UTC).

    >>> w = IsoWeek.of(datetime(2027, 1, 1, 12, tzinfo=UTC))
    >>> str(w), w.start.date().isoformat(), str(w.shift(1))
    ('2026-W53', '2026-12-28', '2027-W01')
    """

    year: int
    week: int

    @classmethod
    def of(cls, at: datetime) -> IsoWeek:
        iso = at.astimezone(UTC).isocalendar()
        return cls(iso.year, iso.week)

    @property
    def start(self) -> datetime:
        day = date.fromisocalendar(self.year, self.week, 1)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The next week's start (exclusive)."""
        return self.start + timedelta(days=7)

    def shift(self, weeks: int) -> IsoWeek:
        return IsoWeek.of(self.start + timedelta(days=7 * weeks))

    def __str__(self) -> str:
        return f"{self.year:04d}-W{self.week:02d}"


def complete_weeks(now: datetime, n: int = WEEKS) -> list[IsoWeek]:
    """The last ``n`` ISO weeks that ended by ``now``, oldest first.

    >>> [str(w) for w in complete_weeks(datetime(2026, 11, 22, 10, tzinfo=UTC))]  # a Sunday
    ['2026-W45', '2026-W46']
    """
    current = IsoWeek.of(now)
    return [current.shift(-k) for k in range(n, 0, -1)]


@dataclass(frozen=True, slots=True)
class Miss:
    """A department's figure that missed its target: over one period, or (``weeks``) over each
    of the weeks running, with the value of each."""

    department: str
    figure: str
    target: Target
    values: tuple[float, ...]
    weeks: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """What an alert of it says (the board's ``alerts``, the notifier's payload)."""
        figure = FIGURES[self.figure]
        return {
            "event": "target_missed",
            "department": self.department,
            "figure": self.figure,
            "figure_name": f"{figure.zh} {figure.en}",
            "target": self.target.value,
            "op": self.target.op,
            "weeks": list(self.weeks),
            "values": [round4(v) for v in self.values],
        }


def misses(
    figures: Mapping[str, float | None], targets: Targets, department: str | None = None
) -> list[Miss]:
    """The figures of one department (None: all departments) over one period that miss their
    targets.

    >>> found = misses({"collection": 0.9, "satisfaction": None, "recurrence": 0.01}, Targets())
    >>> [(m.figure, str(m.target), m.values) for m in found]
    [('collection', 'collection>=0.95', (0.9,))]
    """
    out = []
    for figure in FIGURES:
        value, target = figures.get(figure), targets.target(figure, department)
        if value is not None and target.missed(value):
            out.append(Miss(department or "", figure, target, (value,)))
    return out


def weekly_misses(
    weeks: Sequence[tuple[str, Mapping[str, Mapping[str, float | None]]]], targets: Targets
) -> list[Miss]:
    """The (department, figure) pairs that missed their targets in every one of ``weeks``
    (``(week, {department: {figure: value}})``, oldest first), in department then figure order.

    >>> week = {"R&D": {"completion": 0.5}, "Service": {"completion": 0.95}}
    >>> [(m.department, m.figure, m.values) for m in weekly_misses(
    ...     [("2026-W45", week), ("2026-W46", week)], Targets())]
    [('R&D', 'completion', (0.5, 0.5))]
    """
    if not weeks:
        return []
    names = tuple(w for w, _ in weeks)
    out = []
    for department in sorted(set.intersection(*(set(by) for _, by in weeks))):
        for figure in FIGURES:
            target = targets.target(figure, department)
            values = [by[department].get(figure) for _, by in weeks]
            if all(v is not None and target.missed(v) for v in values):
                found = tuple(v for v in values if v is not None)
                out.append(Miss(department, figure, target, found, names))
    return out


# --- a period's figures -------------------------------------------------------------------------
ALL = "all"  # the row of all departments together


@dataclass(frozen=True, slots=True)
class Counts:
    """What one department's figures (or all departments') over a period are made of."""

    feedback: int = 0  # feedback tickets whose acknowledgement was due
    collected: int = 0  # of them, taken up in time
    measures: int = 0  # measures due, not cancelled
    done: int = 0  # of them, done by the period's end
    responses: int = 0  # scored callbacks
    score_sum: int = 0
    tickets: int = 0  # not folded into a batch ticket
    recurred: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def values(self) -> dict[str, float | None]:
        """The four figures (None over nothing)."""
        return {
            "collection": _rate(self.collected, self.feedback),
            "completion": _rate(self.done, self.measures),
            "satisfaction": _rate(self.score_sum, self.responses),
            "recurrence": _rate(self.recurred, self.tickets),
        }

    def bases(self) -> dict[str, int]:
        """What each figure is over: feedback tickets, measures, callbacks, tickets."""
        return {
            "collection": self.feedback,
            "completion": self.measures,
            "satisfaction": self.responses,
            "recurrence": self.tickets,
        }


@dataclass(frozen=True, slots=True)
class FigureRow:
    """One department's figures (or all departments', ``ALL``) against its targets."""

    department: str
    counts: Counts
    targets: dict[str, Target]

    @property
    def values(self) -> dict[str, float | None]:
        return self.counts.values()

    def missed(self, figure: str) -> bool:
        return self.targets[figure].missed(self.values[figure])

    def as_dict(self) -> dict[str, Any]:
        values, bases = self.values, self.counts.bases()
        return {
            "department": self.department,
            **{
                f: {
                    "value": round4(values[f]),
                    "target": self.targets[f].value,
                    "op": self.targets[f].op,
                    "missed": self.missed(f),
                    "n": bases[f],
                }
                for f in FIGURES
            },
        }


def figure_rows(counts: dict[str, Counts], targets: Targets, only: str | None) -> list[FigureRow]:
    """The all-departments row (unless narrowed to ``only``) and one per department."""
    names = sorted(counts, key=department_order)
    if only is not None:
        names = [only]
    rows = [
        FigureRow(d, counts.get(d, Counts()), {f: targets.target(f, d) for f in FIGURES})
        for d in names
    ]
    if only is None:
        total = sum(counts.values(), Counts())
        rows.insert(0, FigureRow(ALL, total, {f: targets.target(f) for f in FIGURES}))
    return rows


def department_order(name: str) -> tuple[int, str]:
    return (DEPARTMENTS.index(name) if name in DEPARTMENTS else len(DEPARTMENTS), name)


def _rate(part: int, whole: int) -> float | None:
    return None if not whole else part / whole


def round4(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
