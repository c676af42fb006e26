"""The simulated models' nameplate data: what a unit of each model is built to (cooling capacity
and COP at ISO 5151 T1, airflow, fan noise, power and vibration by fan speed, the protection
limit of its edge's overcurrent rule). :mod:`simulators.aircon` draws units around it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """Nameplate data of one indoor/outdoor model (cooling at ISO 5151 T1)."""

    name: str
    rated_capacity_w: float
    rated_cop: float
    airflow_m3h: tuple[float, float, float]  # fan speeds 1, 2, 3
    fan_noise_db: tuple[float, float, float]
    fan_power_w: tuple[float, float, float]
    fan_vibration_g: tuple[float, float, float]
    # the firmware's overcurrent protection (edge safety rule); a 3 HP unit runs at 9-12 A
    overcurrent_limit_a: float = 10.0
    # an inverter compressor (simulators/inverter.py): its speed follows the room
    inverter: bool = False


MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec("KFR-26GW", 2600.0, 3.4, (380.0, 450.0, 520.0), (30.0, 35.0, 40.0),
                  (14.0, 20.0, 28.0), (0.008, 0.012, 0.018)),
        ModelSpec("KFR-35GW", 3500.0, 3.3, (480.0, 560.0, 640.0), (32.0, 37.0, 42.0),
                  (18.0, 26.0, 36.0), (0.010, 0.015, 0.022)),
        ModelSpec("KFR-50GW", 5000.0, 3.1, (680.0, 800.0, 900.0), (35.0, 40.0, 45.0),
                  (28.0, 40.0, 55.0), (0.012, 0.018, 0.026)),
        # a 3 HP floor-standing unit for a living room or a shop: 16 A supply and protection
        ModelSpec("KFR-72LW", 7200.0, 3.0, (950.0, 1100.0, 1250.0), (38.0, 43.0, 48.0),
                  (45.0, 65.0, 90.0), (0.012, 0.018, 0.026), overcurrent_limit_a=16.0),
        # inverter (变频, "BP") versions: the same coils and fans, a compressor whose speed runs
        # 30-130 % of rated; protection allows for the top speed on a hot day
        ModelSpec("KFR-26GW/BP", 2600.0, 3.6, (380.0, 450.0, 520.0), (30.0, 35.0, 40.0),
                  (14.0, 20.0, 28.0), (0.008, 0.012, 0.018), inverter=True),
        ModelSpec("KFR-35GW/BP", 3500.0, 3.5, (480.0, 560.0, 640.0), (32.0, 37.0, 42.0),
                  (18.0, 26.0, 36.0), (0.010, 0.015, 0.022), inverter=True),
        ModelSpec("KFR-50GW/BP", 5000.0, 3.3, (680.0, 800.0, 900.0), (35.0, 40.0, 45.0),
                  (28.0, 40.0, 55.0), (0.012, 0.018, 0.026), overcurrent_limit_a=16.0,
                  inverter=True),
    )
}  # fmt: skip
