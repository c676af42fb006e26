"""The peer level test (cloud/anomaly/peers.py) on units' learned baselines: a batch whose
units learned a level short of their model's other batches is found, whatever climate its units
learned in; healthy batches, a batch a little low, and a model with one batch are not; a batch
is named once, and again only for units it had not named."""

from __future__ import annotations

import numpy as np
import pytest

from cloud.anomaly.peers import Learned, PeerLevels, fisher_greater, reference_levels

SLOPE = np.array([-0.08, -0.6, 0.25])  # ΔT per K outdoor, per fan step, per K return air


def _fleet(
    rng: np.random.Generator,
    batches: dict[str, tuple[float, float]],
    units: int = 20,
    model: str = "M",
    spread: float = 0.025,
) -> tuple[list[str], np.ndarray, np.ndarray, dict[str, tuple[str, str]]]:
    """Units of ``model`` per batch: (loss of ΔT, outdoor offset of the batch's climate); each
    unit's baseline is the model's ΔT (9 K at the reference) with a ``spread`` unit spread (a
    loss of ``(loss, share)`` hits that share of the batch), learned at its own mean conditions
    with a noisy slope of its own."""
    devices, beta, mean, batch_of = [], [], [], {}
    for b, (loss, warmer) in batches.items():
        for u in range(units):
            lost = loss[0] if isinstance(loss, tuple) and u < loss[1] * units else loss
            d = f"{model}-{b}-{u:02d}"
            x = np.array([1.0, warmer + rng.normal(0, 2), rng.integers(0, 3) - 1.0,
                          rng.normal(0, 1.0)])  # fmt: skip
            own = SLOPE * (1 + rng.normal(0, 0.3, 3))  # 36 h of one room: noisy slopes
            lost = 0.0 if isinstance(lost, tuple) else lost
            level = 9.0 * (1 - lost) * (1 + rng.normal(0, spread))
            at_mean = level + SLOPE @ x[1:]  # the unit's ΔT at its own mean conditions
            b0 = at_mean - own @ x[1:]
            devices.append(d)
            beta.append(np.concatenate(([b0], own)))
            mean.append(x)
            batch_of[d] = (model, b)
    return devices, np.array(beta), np.array(mean), batch_of


def _learned(devices, beta, mean) -> dict[str, Learned]:
    varied = np.ones_like(beta, dtype=bool)
    return {"cooling_decline": Learned(devices, beta, mean, varied, -1, 0.0, 0.08)}


def test_a_batch_born_short_is_found_and_named_once() -> None:
    rng = np.random.default_rng(3)
    devices, beta, mean, batch_of = _fleet(rng, {"B1": (0, 0), "B2": (0.15, 0), "B3": (0, 0)})
    test = PeerLevels()

    found = test.update(0.0, _learned(devices, beta, mean), batch_of.get)

    assert [(f.model, f.batch, f.fault) for f in found] == [("M", "B2", "cooling_decline")]
    f = found[0]
    assert f.units == 20 and f.reference_units == 40
    assert f.short >= 15 and f.reference_short <= 1
    assert all(d.startswith("M-B2-") for d in f.shifts)
    assert all(0.08 <= v <= 0.3 for v in f.shifts.values())  # shortfalls, as fractions
    assert f.p_adjusted < 0.01 and f.batch_level < 0.9 * f.reference_level
    evidence = f.as_evidence()
    assert evidence["kind"] == "peers" and evidence["statistic"] == f.short
    # the same units an hour later: nothing new to say
    assert test.update(3600.0, _learned(devices, beta, mean), batch_of.get) == []


def test_a_unit_not_named_before_makes_a_new_finding() -> None:
    rng = np.random.default_rng(4)
    devices, beta, mean, batch_of = _fleet(rng, {"B1": (0, 0), "B2": (0.15, 0), "B3": (0, 0)})
    late = [i for i, d in enumerate(devices) if d.startswith("M-B2-")][-5:]  # still learning
    early = [i for i in range(len(devices)) if i not in late]
    test = PeerLevels()
    first = test.update(0.0, _learned([devices[i] for i in early], beta[early], mean[early]),
                        batch_of.get)  # fmt: skip
    assert len(first) == 1
    again = test.update(3600.0, _learned(devices, beta, mean), batch_of.get)
    assert len(again) == 1 and set(again[0].shifts) - set(first[0].shifts)


def test_units_still_learning_are_named_and_moved_once_they_have_learned() -> None:
    """A batch born short stands out while its units learn (provisional fits): its short units
    are named, with nothing to move; the round after a unit has learned names it again and
    moves it, once; a unit learned from the start is moved at once."""
    rng = np.random.default_rng(5)
    devices, beta, mean, batch_of = _fleet(rng, {"B1": (0, 0), "B2": (0.15, 0), "B3": (0, 0)})
    b2 = [d for d in devices if d.startswith("M-B2-")]

    def learned(still: set[str]) -> dict[str, Learned]:
        (data,) = _learned(devices, beta, mean).values()
        learning = np.array([d in still for d in devices])
        return {"cooling_decline": data._replace(learning=learning)}

    test = PeerLevels()
    (first,) = test.update(0.0, learned(set(b2[1:])), batch_of.get)
    assert first.short >= 15 and first.waiting == set(first.shifts) - {b2[0]}
    assert set(first.moves()) == {b2[0]} & set(first.shifts)  # the one unit past learning
    assert first.as_evidence()["learning"] == sorted(first.waiting)
    # an hour on, still learning: nothing new to say
    assert test.update(3600.0, learned(set(b2[1:])), batch_of.get) == []
    # B2's units have learned: named again, and each moved once
    (second,) = test.update(7200.0, learned(set()), batch_of.get)
    assert second.waiting == frozenset() and set(second.moves()) == first.waiting
    assert test.update(10_800.0, learned(set()), batch_of.get) == []
    moved = {d for (_, d) in test.state()["moved"]}
    assert moved == set(first.shifts)


@pytest.mark.parametrize("seed", range(5))
def test_healthy_batches_and_a_batch_a_little_low_are_not_found(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    batches = {"B1": (0, 0), "B2": (0.02, 0), "B3": (-0.02, 0), "B4": (0, 0)}
    devices, beta, mean, batch_of = _fleet(rng, batches)
    assert PeerLevels().update(0.0, _learned(devices, beta, mean), batch_of.get) == []


def test_in_a_fleet_of_widely_spread_units_the_bar_rises_with_the_spread() -> None:
    """Units 6 % apart (σ): 8 % short is within their spread, so at 8 % alone a batch's healthy
    units at the low end are named (and moved) with its short ones in numbers, and healthy
    units short by 8 % in the other batches dilute the test. The bar of 2 σ of the other
    batches' units (and of the unit's own batch's healthy part): the batch is found in every
    fleet, its lossy units named about as often, its healthy ones half as often. 30 fleets,
    half of B2 25 % short."""
    named = {2.0: [0, 0, 0], 0.0: [0, 0, 0]}  # spread -> fleets found, lossy, healthy named
    for seed in range(30):
        rng = np.random.default_rng(seed)
        batches = {"B1": (0, 0), "B2": ((0.25, 0.5), 0), "B3": (0, 0), "B4": (0, 0)}
        devices, beta, mean, batch_of = _fleet(rng, batches, spread=0.06)
        lossy = {d for d in devices if d.startswith("M-B2-") and int(d[-2:]) < 10}
        for spread, counts in named.items():
            found = PeerLevels(spread=spread).update(
                0.0, _learned(devices, beta, mean), batch_of.get
            )
            if found:
                counts[0] += 1
                counts[1] += len(set(found[0].shifts) & lossy)
                counts[2] += len(set(found[0].shifts) - lossy)
    assert named[2.0][0] == 30 and named[0.0][0] < 30
    assert named[2.0][1] >= 0.95 * named[0.0][1]
    assert named[2.0][2] <= 0.6 * named[0.0][2]


def test_units_of_a_hot_region_are_compared_at_the_same_conditions() -> None:
    """B2's units learned 15 K warmer (ΔT 1.2 K lower there): moved to the model's reference
    conditions they are like the others; read at their own conditions they would be short."""
    rng = np.random.default_rng(5)
    devices, beta, mean, batch_of = _fleet(rng, {"B1": (0, 0), "B2": (0, 15.0), "B3": (0, 0)})
    assert PeerLevels().update(0.0, _learned(devices, beta, mean), batch_of.get) == []
    own = np.einsum("ij,ij->i", beta, mean)  # each unit's ΔT at its own mean conditions
    hot = np.array([d.startswith("M-B2-") for d in devices])
    assert np.median(own[hot]) < 0.9 * np.median(own[~hot])  # short, read unmoved
    level = reference_levels(beta, mean, np.ones_like(beta, dtype=bool))
    assert abs(np.median(level[hot]) / np.median(level[~hot]) - 1) < 0.03


def test_nothing_to_compare_with_gives_no_test() -> None:
    rng = np.random.default_rng(6)
    one = _fleet(rng, {"B1": (0.15, 0)}, units=40)  # a model with one batch
    few = _fleet(rng, {"B1": (0, 0), "B2": (0.15, 0)}, units=4, model="N")  # too few units
    devices = one[0] + few[0]
    beta, mean = np.vstack((one[1], few[1])), np.vstack((one[2], few[2]))
    batch_of = one[3] | few[3]
    assert PeerLevels().update(0.0, _learned(devices, beta, mean), batch_of.get) == []


def test_a_units_batch_must_be_known() -> None:
    rng = np.random.default_rng(7)
    devices, beta, mean, _ = _fleet(rng, {"B1": (0, 0), "B2": (0.15, 0), "B3": (0, 0)})
    assert PeerLevels().update(0.0, _learned(devices, beta, mean), lambda d: None) == []


def test_fisher_is_the_hypergeometric_tail() -> None:
    # 3 short of 5 in the batch, none of 10 elsewhere: C(5,3)/C(15,3)
    assert fisher_greater(3, 5, 0, 10) == pytest.approx(10 / 455)
    assert fisher_greater(3, 5, 7, 10) > 0.5


def test_units_moved_up_still_count_as_short_for_those_that_learn_later() -> None:
    """The named units' baselines are moved up to their peers (PeerFinding.moves, applied by
    the bank); the test reads them as they learned, so the batch still stands out when its
    last units finish learning, and only those are named then."""
    rng = np.random.default_rng(8)
    devices, beta, mean, batch_of = _fleet(rng, {"B1": (0, 0), "B2": (0.15, 0), "B3": (0, 0)})
    late = [i for i, d in enumerate(devices) if d.startswith("M-B2-")][-4:]
    early = [i for i in range(len(devices)) if i not in late]
    test = PeerLevels()
    (first,) = test.update(0.0, _learned([devices[i] for i in early], beta[early], mean[early]),
                           batch_of.get)  # fmt: skip
    moves = first.moves()
    assert set(moves) == set(first.shifts) and all(0.7 < m < 2.5 for m in moves.values())
    moved = beta.copy()
    for i, d in enumerate(devices):
        moved[i, 0] += moves.get(d, 0.0)  # as DetectorBank.move_baseline does
    (again,) = test.update(3600.0, _learned(devices, moved, mean), batch_of.get)
    new = set(again.moves())
    assert new and new <= {devices[i] for i in late}
    assert again.short >= first.short  # the moved units still count
    restored = PeerLevels()
    restored.restore(test.state())
    assert restored.state() == test.state()


def test_the_bank_moves_a_learned_baseline_and_its_unit_judges_against_it() -> None:
    from cloud.anomaly.bank import DetectorBank
    from tests.cloud.ingest.test_pooling import _block

    rng = np.random.default_rng(12)
    bank = DetectorBank(generic=False)
    found = []
    for hour in range(40):
        bank.feed("air_conditioner", _block(rng, "ac-1", hour, 0.15))
        found += bank.flush()
    before = bank.detectors("ac-1")[0]
    assert not before.learning and before._baseline.level > 6.0
    assert not bank.move_baseline("ac-2", "cooling_decline", 1.0)  # unknown device
    assert bank.move_baseline("ac-1", "cooling_decline", 1.2)
    after = bank.detectors("ac-1")[0]
    assert after._baseline.beta[0] == pytest.approx(before._baseline.beta[0] + 1.2)
    assert after._baseline.beta[1:] == pytest.approx(before._baseline.beta[1:])
    assert after._baseline.level == pytest.approx(before._baseline.level + 1.2)
    assert after._cusum.min_shift == pytest.approx(0.08 * after._baseline.level)
    # a refit from the moved sums keeps the move (up to the fit's ridge)
    b = after._baseline
    refit = np.linalg.solve(b.xtx + b.ridge * np.eye(b.n_features), b.xty)
    assert refit == pytest.approx(b.beta, abs=1e-4)
    assert bank.dirty() == ["ac-1"]
    for hour in range(40, 52):
        bank.feed("air_conditioner", _block(rng, "ac-1", hour, 0.15))
        found += bank.flush()
    assert [f.fault for f in found if f.active] == ["cooling_decline"]


def test_the_bank_gives_a_learning_unit_at_the_fit_its_sums_would_give() -> None:
    """``DetectorBank.learned(provisional_windows)``: a unit still learning, once it has that
    many learning windows, at the fit of its sums so far (its detector's own normal equations);
    without the argument, or with too few windows, it is left out."""
    from cloud.anomaly.bank import DetectorBank
    from tests.cloud.ingest.test_pooling import _block

    rng = np.random.default_rng(13)
    bank = DetectorBank(generic=False)
    for hour in range(4):
        bank.feed("air_conditioner", _block(rng, "ac-1", hour, 0.0))
        bank.flush()
    assert not bank.learned(3)["cooling_decline"].devices  # two windows so far
    for hour in range(4, 20):
        bank.feed("air_conditioner", _block(rng, "ac-1", hour, 0.0))
        bank.flush()
    det = bank.detectors("ac-1")[0]
    assert det.learning
    assert not bank.learned()["cooling_decline"].devices  # past learning only
    data = bank.learned(3)["cooling_decline"]
    assert list(data.devices) == ["ac-1"] and data.learning.tolist() == [True]
    b = det._baseline
    fit = np.linalg.solve(b.xtx + b.ridge * np.eye(b.n_features), b.xty)
    assert data.beta[0] == pytest.approx(fit)
    assert data.mean[0] == pytest.approx(b.xtx[0] / b.xtx[0, 0])


def test_the_bank_ends_a_units_learning_as_its_learning_end_would() -> None:
    """``DetectorBank.finish_learning``: a learning unit with the learning windows a learning
    end needs is fitted now, as its own detector's learning end would fit it (the reference
    object's ``_freeze``), and checkpointed; with too few windows, past learning or unknown,
    nothing is done."""
    from cloud.anomaly.bank import DetectorBank
    from tests.cloud.ingest.test_pooling import _block

    rng = np.random.default_rng(14)
    bank = DetectorBank(generic=False)
    for hour in range(9):
        bank.feed("air_conditioner", _block(rng, "ac-1", hour, 0.0))
        bank.flush()
    bank.dirty()
    assert not bank.finish_learning("ac-1", "cooling_decline")  # two or three windows
    assert not bank.finish_learning("ac-2", "cooling_decline")  # unknown
    for hour in range(9, 22):
        bank.feed("air_conditioner", _block(rng, "ac-1", hour, 0.0))
        bank.flush()
    reference = bank.detectors("ac-1")[0]
    assert reference.learning
    reference._freeze()
    assert bank.finish_learning("ac-1", "cooling_decline")
    assert bank.dirty() == ["ac-1"]
    det = bank.detectors("ac-1")[0]
    assert not det.learning
    assert det._baseline.beta == pytest.approx(reference._baseline.beta)
    assert det._baseline.level == pytest.approx(reference._baseline.level)
    assert det._cusum.sigma == pytest.approx(reference._cusum.sigma)
    assert not bank.finish_learning("ac-1", "cooling_decline")  # learned already
    assert bank.move_baseline("ac-1", "cooling_decline", 1.0)  # and can be moved


def test_a_batch_a_little_low_as_a_whole_does_not_stand_out_by_its_tail() -> None:
    """A batch 4 % low (a parts lot at the low end of its tolerance), units 3.5 % apart: its
    tail crosses the 8 % bar far more often than the other batches', which alone would make
    it stand out; read against its own location too, it does not. 20 fleets."""
    found = 0
    for seed in range(20):
        rng = np.random.default_rng(300 + seed)
        batches = {"B1": (0, 0), "B2": (0.04, 0), "B3": (0, 0)}
        devices, beta, mean, batch_of = _fleet(rng, batches, units=25, spread=0.035)
        found += len(PeerLevels().update(0.0, _learned(devices, beta, mean), batch_of.get))
    assert found == 0


def test_a_unit_alone_far_short_of_its_whole_model_is_moved_once() -> None:
    """``PeerLevels.lone``: a model with one batch (no batch test), three of its 40 units short
    by 15 % from the start (a leak before their first window closed): those three are moved up
    by their shortfall, once; a unit 10 % short, under 1.5 times the 8 % minimum, is not."""
    for seed in (1, 2, 3):
        rng = np.random.default_rng(seed)
        fleet = _fleet(rng, {"B1": ((0.15, 3 / 40), 0)}, units=40, spread=0.01)
        devices, beta, mean, batch_of = fleet
        beta[3, 0] -= 0.9  # 10 % of 9 K
        test = PeerLevels()
        learned = _learned(devices, beta, mean)
        assert test.update(0.0, learned, batch_of.get) == []  # nothing to compare a batch with
        moves = test.lone(learned, batch_of.get)
        assert sorted(d for _, d, _ in moves) == ["M-B1-00", "M-B1-01", "M-B1-02"], seed
        assert all(f == "cooling_decline" and 0.9 < m < 1.9 for f, _, m in moves), moves
        assert test.lone(learned, batch_of.get) == []  # moved already


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_no_unit_of_healthy_or_widely_spread_models_is_alone_short(seed: int) -> None:
    rng = np.random.default_rng(seed)
    healthy = _fleet(rng, {"B1": (0, 0), "B2": (0, 3), "B3": (0, -3)})
    # a model whose units spread 6 %: the bar rises with them (4 robust standard deviations)
    wide = _fleet(rng, {"B1": (0, 0), "B2": (0, 0)}, model="W", spread=0.06)
    devices = healthy[0] + wide[0]
    beta, mean = np.vstack((healthy[1], wide[1])), np.vstack((healthy[2], wide[2]))
    assert PeerLevels().lone(_learned(devices, beta, mean), (healthy[3] | wide[3]).get) == []
    # the same models with the bar at the practical minimum alone: units are named
    loose = PeerLevels(lone_spread=0.0, lone_factor=0.5)
    assert loose.lone(_learned(devices, beta, mean), (healthy[3] | wide[3]).get) != []


def _set_short(beta, mean, devices, device: str, by: float, reference: str = "M-B1-") -> None:
    """Set ``device``'s level ``by`` short of the median of the units whose names start with
    ``reference`` (and of B3's: the other batches), at the model's reference conditions."""
    level = reference_levels(beta, mean, np.ones_like(beta, dtype=bool))
    others = [i for i, d in enumerate(devices) if d.startswith((reference, "M-B3-"))]
    i = devices.index(device)
    beta[i, 0] += float(np.median(level[others])) * (1 - by) - level[i]


def test_units_built_strong_in_a_batch_short_as_a_whole_are_named_and_moved_as_short() -> None:
    """A batch born 15 % short as a whole (a charging station): each unit's shortfall against
    its model is the defect less its own build spread. Two units built strong read 7.5 % and
    7.8 % short, under the 8 % bar: they are named all the same (likelier to carry the batch's
    15 % than not, as most of its units do), and every named unit is moved by at least the
    batch's typical shortfall, so its own detector judges it as short as its batch (S25,
    ``bornbad``). A unit 3 % short, likelier healthy, is not named. The test's count is still
    the units past the bar."""
    rng = np.random.default_rng(7)
    devices, beta, mean, batch_of = _fleet(rng, {"B1": (0, 0), "B2": (0.15, 0), "B3": (0, 0)})
    _set_short(beta, mean, devices, "M-B2-00", 0.075)
    _set_short(beta, mean, devices, "M-B2-01", 0.078)
    _set_short(beta, mean, devices, "M-B2-02", 0.09)  # past the bar, at its edge
    _set_short(beta, mean, devices, "M-B2-03", 0.03)
    (found,) = PeerLevels().update(0.0, _learned(devices, beta, mean), batch_of.get)

    assert {"M-B2-00", "M-B2-01", "M-B2-02"} <= set(found.shifts)
    assert "M-B2-03" not in found.shifts and len(found.shifts) == 19
    assert found.short == sum(v >= 0.08 for v in found.shifts.values()) == 17
    assert 0.12 < found.typical < 0.18
    moves = found.moves()
    assert set(moves) == set(found.shifts)
    for d in ("M-B2-00", "M-B2-01", "M-B2-02"):  # each moved by the batch's shortfall
        assert moves[d] == pytest.approx(found.typical * found.scale)
    assert found.as_evidence()["typical"] == round(found.typical, 4)


def test_a_batch_short_in_part_names_only_its_short_units() -> None:
    """A batch 40 % born short (a bad lot of a part in some units): its healthy units, one of
    them a little low (5 %), are not named; its short units are moved by at least their typical
    shortfall."""
    rng = np.random.default_rng(8)
    batches = {"B1": (0, 0), "B2": ((0.15, 0.4), 0), "B3": (0, 0)}
    devices, beta, mean, batch_of = _fleet(rng, batches)
    _set_short(beta, mean, devices, "M-B2-19", 0.05)  # a healthy unit, a little low
    (found,) = PeerLevels().update(0.0, _learned(devices, beta, mean), batch_of.get)

    assert set(found.shifts) == {f"M-B2-{u:02d}" for u in range(8)}
    assert found.short == 8
    assert all(m >= found.typical * found.scale - 1e-9 for m in found.moves().values())
