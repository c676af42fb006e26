// One device's telemetry field over a time range, every point as stored: what the ticket pages'
// evidence charts read when InfluxDB is the store in use (cloud/store/readback.py).
//
// @param bucket string = "qloop": the bucket the worker writes to
// @param device string: the device id, e.g. "ac-000123"
// @param field string: the telemetry field, e.g. "supply_c"
// @param start time = -30d: first instant (RFC 3339 time or a negative duration from now)
// @param stop time = now(): end of the range, exclusive
//
// Result "series": one table, columns _time and _value, in time order. A firmware update starts
// a new series (firmware is a tag); group() joins them into one line again.

from(bucket: bucket)
    |> range(start: start, stop: stop)
    |> filter(fn: (r) => r._measurement == "telemetry" and r.device == device)
    |> filter(fn: (r) => r._field == field)
    |> group()
    |> keep(columns: ["_time", "_value"])
    |> sort(columns: ["_time"])
    |> yield(name: "series")
