"""The shared contract every part of qloop speaks, and the lowest layer of the tree.

Topics, partitions and the payload codec (``protocol``), the fault vocabulary (``faults``), the
injected clock (``clock``), the one MQTT link (``mqtt``, the only module that imports paho) and
the base of qloop's own errors (``errors``). Nothing here imports anything else of qloop.
"""
