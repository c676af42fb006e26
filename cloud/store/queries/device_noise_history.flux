// A device's noise history: its operating noise per window (mean and max), split by fan speed,
// since noise is only comparable at the same fan speed (noise_rise, CONTRACTS.md §3).
//
// @param bucket string = "qloop": the bucket the worker writes to
// @param device string: the device id, e.g. "ac-000123"
// @param start time = -30d: first instant (RFC 3339 time or a negative duration from now)
// @param stop time = now(): end of the range, exclusive
// @param every duration = 1h: window length
//
// Result "noise_db": one table per fan speed (column fan_speed; "none" for rows without one),
// columns _time (window end), mean and max (noise_db in dB), fan_speed.

from(bucket: bucket)
    |> range(start: start, stop: stop)
    |> filter(fn: (r) => r._measurement == "telemetry" and r.device == device)
    |> filter(fn: (r) => r._field == "noise_db" or r._field == "fan_speed")
    |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
    |> filter(fn: (r) => exists r.noise_db)
    |> map(fn: (r) => ({
        _time: r._time,
        _value: r.noise_db,
        fan_speed: if exists r.fan_speed then string(v: r.fan_speed) else "none",
    }))
    |> group(columns: ["fan_speed"])
    |> window(every: every, createEmpty: false)
    |> reduce(
        identity: {n: 0.0, sum: 0.0, max: -1000.0},
        fn: (r, accumulator) => ({
            n: accumulator.n + 1.0,
            sum: accumulator.sum + r._value,
            max: if r._value > accumulator.max then r._value else accumulator.max,
        }),
    )
    |> map(fn: (r) => ({_time: r._stop, fan_speed: r.fan_speed, mean: r.sum / r.n, max: r.max}))
    |> group(columns: ["fan_speed"])
    |> sort(columns: ["_time"])
    |> yield(name: "noise_db")
