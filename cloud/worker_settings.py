"""What a cloud worker is told by whoever starts it (:class:`WorkerSettings`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cloud.ticketing.policy import TicketPolicy
from contract.mqtt import BrokerAddress


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker is told by whoever starts it (the ``qloop`` command builds it from its
    options, ``qloop/settings.py``, which hold the defaults of the deployment's options); the
    fields with defaults here are internal tuning no operator option sets."""

    broker: BrokerAddress
    partitions: Sequence[int]
    db_url: str  # the ticket database; "" runs the worker without ticketing
    journal_path: str
    queue_size: int
    influx_url: str | None = None  # None: no InfluxDB
    influx_token: str | None = None
    influx_org: str | None = None
    influx_bucket: str | None = None
    # a database the workers share for detector checkpoints (cloud/store/checkpoints.py); None:
    # the worker's own journal, enough unless partitions move to a worker on another host
    checkpoint_db: str | None = None
    client_id: str | None = None  # None: derived from the partitions
    ticket_policy: TicketPolicy | None = None  # None: the policy's own defaults
    clock_tolerance_s: float | None = None  # None: the clock check's own default
    # the outdoor temperature the models are rated to run at (cloud/anomaly/envelope.py): one
    # for every model (None: ISO 5151 T1) and the models rated otherwise
    rated_max_outdoor_c: float | None = None
    rated_max_outdoor_models: Mapping[str, float] = field(default_factory=dict)
    rated_max_indoor_c: float | None = None  # None: the maximum operating test's 32 °C
    batch_size: int = 500
    batch_wait_s: float = 0.05
    # with checkpoint_db: messages held unacknowledged until a checkpoint covers them at most
    # (below the broker's max_inflight_messages, 1000 in the shipped configurations)
    ack_window: int = 800
    checkpoint_every_s: float = 30.0
    # journal messages received longer ago are deleted (cloud/store/journal.py); None: kept
    journal_retention_s: float | None = None
    stats_every_s: float = 60.0  # how often the worker logs its counters
    snapshot_every_s: float = 1.0  # how often it hands its counters to ``on_snapshot``
    # how often a snapshot recounts lost seqs at most: a pass over every device (about 2 µs
    # each, 0.2 s at 100,000), too much for every second; and at most 1 % of the worker thread
    # (so every 100 s at 500,000 devices; a checkpoint's count serves too): the gauge may lag
    lost_every_s: float = 10.0
    # where MQTT is received: "process" (a child process, contract/mqtt_process.py) or "thread"
    # (paho's thread in this process)
    receiver: str = "thread"
    generic_detectors: bool = True  # the generic detector on fields no domain detector knows

    def mqtt_client_id(self) -> str:
        if self.client_id:
            return self.client_id
        p = list(self.partitions)
        return f"qloop-cloud-{p[0]:02d}-{p[-1]:02d}-{len(p)}"
