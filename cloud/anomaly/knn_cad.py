"""KNN CAD: conformalized k-nearest-neighbour anomaly detection, as a streaming detector.

E. Burnaev and V. Ishimtsev, "Conformalized density- and distance-based anomaly detection in
time-series data", arXiv:1608.04585 (2016). NAB lists it at 58.0 on its full corpus (standard
profile), with the settings kept here: windows of 19 values, 27 neighbours.

Each finite value closes a window ``v`` of the last ``dim`` values. Its non-conformity is the
sum of the Mahalanobis distances (inverse Gram matrix of the reference windows, refreshed every
``train // 2`` values) from ``v`` to its ``k`` nearest reference windows, and its score is the
fraction of recent non-conformities (those of the last ``train`` windows, measured again with
each new metric; at the start, each reference window's against the others) that are lower: a
conformal p-value turned round, so 0.9965 means that fewer than 0.35 % of recent windows were as
unusual. The reference set is the ``train`` windows before the last ``train`` (at the start,
the first ``train`` windows), so a change is judged against what came before it.

After a score reaches ``threshold`` the next ``rest`` values are capped at half the threshold
(one alarm per change). Differences from NAB's copy: the reference length is a count of values,
not a fraction of the file's length, which a live stream does not know; non-conformities within
0.1 % of each other count as ties (see ``_TIE``); the recent non-conformities are measured
again when the metric is refreshed, so a new metric does not outrank them all at once.

NaN, infinities and ``None`` score 0.0 and are not learned.

>>> det = KnnCad(train=200)
>>> scores = [det.score_one(float(t), 10.0 + (t % 24) * 0.1) for t in range(700)]
>>> max(scores) < det.threshold
True
>>> max(det.score_one(700.0 + t, 40.0) for t in range(5)) >= det.threshold
True
"""

from __future__ import annotations

from collections import deque

import numpy as np

from cloud.anomaly.generic import finite, rest_after_alarm

# Non-conformities within 0.1 % of each other rank as ties. An exactly periodic stream repeats
# its windows, and the reference set's mix of phases alone then moves a window's non-conformity
# by parts per million: without this, such a stream's highest phase outranks every recent score.
_TIE = 1e-3


class KnnCad:
    """Conformal k-nearest-neighbour score over windows of values; see the module docstring.

    Parameters
    ----------
    dim
        Values per window.
    k
        Nearest reference windows whose distances make a window's non-conformity.
    train
        Reference windows (and recent non-conformities the score is ranked among).
    threshold
        Alarm threshold on the score (advertised to callers; starts the rest period).
    rest
        Values after an alarm whose score is capped at half the threshold.
    """

    def __init__(
        self,
        dim: int = 19,
        k: int = 27,
        train: int = 600,
        threshold: float = 0.9965,
        rest: int = 120,
    ) -> None:
        if dim < 1 or k < 1 or train <= k + 1 or rest < 0:
            raise ValueError("dim >= 1, k >= 1, train > k + 1 and rest >= 0 are required")
        self.dim = dim
        self.k = k
        self.train = train
        self.threshold = threshold
        self.rest = rest
        self._reset()

    def _reset(self) -> None:
        self._recent: deque[float] = deque(maxlen=self.dim)
        self._windows: deque[np.ndarray] = deque(maxlen=2 * self.train)  # reference + recent
        self._scores: deque[float] = deque(maxlen=self.train)  # recent non-conformities
        self._inverse: np.ndarray | None = None
        self._since_refresh = 0
        self._quiet = 0

    def score_one(self, ts: float, value: float | None) -> float:
        """Learn ``value`` (observed at ``ts``) and return its anomaly score in [0, 1]."""
        x = finite(value)
        if x is None:
            return 0.0
        self._recent.append(x)
        if len(self._recent) < self.dim:
            return 0.0
        window = np.array(self._recent)
        if len(self._windows) < self.train:
            self._windows.append(window)
            return 0.0
        reference = np.array(list(self._windows)[: self.train])
        if self._inverse is None or self._since_refresh >= self.train // 2:
            self._inverse = _inverse_gram(reference, self._inverse)
            self._since_refresh = 0
            # rank among non-conformities under this metric: the recent windows', topped up with
            # the latest reference windows' own (against the other reference windows)
            recent = list(self._windows)[self.train :]
            self._scores.clear()
            for w in reference[len(recent) :]:
                self._scores.append(self._nonconformity(reference, w, own=True))
            for w in recent:
                self._scores.append(self._nonconformity(reference, w))
        self._since_refresh += 1
        ncm = self._nonconformity(reference, window)
        score = float(np.mean(np.array(self._scores) < ncm * (1.0 - _TIE)))
        self._scores.append(ncm)
        self._windows.append(window)
        score, self._quiet = rest_after_alarm(score, self._quiet, self.threshold, self.rest)
        return score

    def _nonconformity(self, reference: np.ndarray, window: np.ndarray, own: bool = False) -> float:
        """Sum of the Mahalanobis distances to the ``k`` nearest reference windows."""
        with np.errstate(all="ignore"):
            diff = reference - window
            dist = np.einsum("ij,jk,ik->i", diff, self._inverse, diff)
        k = self.k + own  # a reference window's own distance (zero) does not count
        return float(np.sum(np.partition(dist, k - 1)[:k]))


def _inverse_gram(reference: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """Pseudo-inverse of the reference windows' Gram matrix (the Mahalanobis metric); the
    previous one, or the identity, where it cannot be computed (overflowing values)."""
    with np.errstate(all="ignore"):
        gram = reference.T @ reference
    if np.all(np.isfinite(gram)):
        try:
            return np.linalg.pinv(gram)
        except np.linalg.LinAlgError:
            pass
    return previous if previous is not None else np.eye(reference.shape[1])
