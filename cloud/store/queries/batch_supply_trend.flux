// A batch's supply-air trend: the mean supply-air temperature over all units of one production
// batch, per window, with how many units reported in that window. A rising trend while the
// compressors run is the batch-level face of cooling_decline (CONTRACTS.md §3).
//
// @param bucket string = "qloop": the bucket the worker writes to
// @param model string: the product model, e.g. "KFR-35GW"
// @param batch string: the production batch, e.g. "B20240517"
// @param start time = -30d: first instant (RFC 3339 time or a negative duration from now)
// @param stop time = now(): end of the range, exclusive
// @param every duration = 1h: window length
//
// Result "supply_c": one table, columns _time (window end), _value (mean supply_c in °C).
// Result "units": one table, columns _time (window end), _value (units that reported).

supply = from(bucket: bucket)
    |> range(start: start, stop: stop)
    |> filter(fn: (r) => r._measurement == "telemetry" and r._field == "supply_c")
    |> filter(fn: (r) => r.model == model and r.batch == batch)

supply
    |> group()
    |> aggregateWindow(every: every, fn: mean, createEmpty: false)
    |> keep(columns: ["_time", "_value"])
    |> yield(name: "supply_c")

supply
    |> aggregateWindow(every: every, fn: count, createEmpty: false)
    |> group()
    |> aggregateWindow(every: every, fn: count, createEmpty: false)
    |> keep(columns: ["_time", "_value"])
    |> yield(name: "units")
