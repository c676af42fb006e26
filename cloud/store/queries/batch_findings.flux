// Findings per batch: for each production batch of a model and each fault, how many findings
// the detectors reported and on how many distinct units, with the highest score.
//
// @param bucket string = "qloop": the bucket the worker writes to
// @param model string: the product model, e.g. "KFR-35GW"
// @param start time = -30d: first instant (RFC 3339 time or a negative duration from now)
// @param stop time = now(): end of the range, exclusive
//
// Result "findings": one table, one row per (batch, fault), columns batch, fault, findings,
// devices, max_score; sorted by devices, most first. Only active findings count (active = 1;
// active = 0 says a unit is back at its baseline).

active = from(bucket: bucket)
    |> range(start: start, stop: stop)
    |> filter(fn: (r) => r._measurement == "finding" and r.model == model)
    |> filter(fn: (r) => r._field == "score" or r._field == "active")
    |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
    |> filter(fn: (r) => r.active == 1.0)
    |> group(columns: ["batch", "fault"])

counts = active
    |> reduce(
        identity: {findings: 0, max_score: 0.0},
        fn: (r, accumulator) => ({
            findings: accumulator.findings + 1,
            max_score: if r.score > accumulator.max_score then r.score else accumulator.max_score,
        }),
    )

units = active
    |> distinct(column: "device")
    |> count()
    |> rename(columns: {_value: "devices"})

join(tables: {c: counts, u: units}, on: ["batch", "fault"])
    |> keep(columns: ["batch", "fault", "findings", "devices", "max_score"])
    |> group()
    |> sort(columns: ["devices", "findings"], desc: true)
    |> yield(name: "findings")
