"""One simulated air conditioner as an edge sensor source (``[source] kind = "simulated"``).

:class:`SimulatedUnitSource` runs a one-unit :class:`simulators.fleet.Fleet` and moves it to the
time of each read, so the edge agent can be developed, demonstrated and benchmarked on a machine
with no air conditioner attached. The unit's physics, weather and faults are the simulator's;
the device id only names it (the fleet's own ids are ignored). Same seed, same read times, same
readings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from edge_agent.config import setting
from edge_agent.core import Identity
from simulators.aircon import AIRCON_FIELDS
from simulators.fleet import Fleet
from simulators.scenario import BatchSpec, FaultSpec, Scenario


class SimulatedUnitSource:
    """``device``'s readings from a simulated unit of ``model`` with optional ``faults``
    (:class:`simulators.scenario.FaultSpec`, share 1.0; onsets count from the first read).

    The fleet is built at the first read, with that read's time as the scenario's start.
    A read at a time before the previous one gets the unit as it was at the previous one (the
    physics only runs forward: a wall clock stepped back must not stop the agent).
    """

    fields: tuple[str, ...] = AIRCON_FIELDS[1:]

    def __init__(
        self,
        device: str,
        seed: int = 0,
        *,
        model: str = "KFR-35GW",
        batch: str = "SIM",
        faults: Sequence[FaultSpec] = (),
    ) -> None:
        self.device = device
        self.seed = seed
        self.model = model
        self.batch = batch
        self.faults = tuple(replace(f, share=1.0) for f in faults)
        self._fleet: Fleet | None = None

    def _build(self, ts: float) -> Fleet:
        scenario = Scenario(
            name=f"edge-{self.device}",
            seed=self.seed,
            start_ts=ts,
            duration_s=365 * 86400.0,
            sample_period_s=1.0,
            batches=(BatchSpec(self.batch, self.model, 1, self.faults),),
        )
        return Fleet(scenario)

    def read(self, ts: float) -> Sequence[object]:
        if self._fleet is None:
            self._fleet = self._build(ts)
        rows, online = self._fleet.step(max(ts, self._fleet.ts))
        if not online[0]:
            return [None] * len(self.fields)
        return [float(x) for x in rows[0, 1:]]


def from_edge_config(cfg: Mapping[str, Any], identity: Identity) -> SimulatedUnitSource:
    """``[source] kind = "simulated"`` of an edge config (``seed``, ``model``): the factory the
    ``qloop`` command hands to :func:`edge_agent.config.build_agent`."""
    return SimulatedUnitSource(
        identity.device,
        seed=setting(cfg, "source", "seed", 0, int),
        model=setting(cfg, "source", "model", identity.model),
    )


EDGE_SOURCES = {"simulated": from_edge_config}
"""The simulator's edge source kinds, by their ``[source] kind`` name."""
