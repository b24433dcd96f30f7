//! What the control endpoint reports: calls by operation, items carried by
//! batch calls, answered errors, injected entry failures, conflicts and
//! throttles, billable units (overall, by operation, by app and per
//! invocation), the modelled latency by operation, and the calls'
//! timeline folded into round trips, overall and per invocation.
//!
//! A round trip is a maximal group of calls whose in-flight intervals
//! (request arrived → answer handed back) overlap: calls a client makes at
//! once form one, calls it makes one after the other form one each. The
//! count is meaningful when the latency is much larger than the client's
//! own time between two concurrent sends (at 0 ms almost no calls overlap).
//!
//! Per invocation: a Lambda function's SDK sends the invocation's X-Ray
//! trace id (`X-Amzn-Trace-Id`, from `_X_AMZN_TRACE_ID`, which the runtime
//! sets per invocation), so the calls of one invocation can be told apart
//! from those of the instances running beside it, and folded into round
//! trips on their own even when many invocations overlap.

use crate::units::{number, Units};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// A fault the backend injected into a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    /// Answered with the service's throttling error (`--throttle-rate`).
    Throttle,
    /// A transaction cancelled with `TransactionConflict` (`--conflict-rate`).
    Conflict,
}

/// One finished call.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub operation: String,
    /// The SDK app name of the caller (`app/<name>` in its user agent).
    pub app: Option<String>,
    /// Since the backend started.
    pub start: Duration,
    pub end: Duration,
    /// The latency the model gave the call.
    pub latency: Duration,
    pub error: Option<String>,
    pub entries_failed: u64,
    /// Items the call carried, for batch calls.
    pub entries: u64,
    /// What the call is billed.
    pub units: Units,
    pub injected: Option<Injected>,
    /// The caller's invocation (the `Root` of its X-Ray trace header).
    pub trace: Option<String>,
}

type Interval = (Duration, Duration);

/// One invocation's calls: their intervals and what they were billed.
#[derive(Debug, Default)]
struct Invocation {
    intervals: Vec<Interval>,
    units: Units,
}

/// Counters since the last reset.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    calls: BTreeMap<String, u64>,
    entries: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    entries_failed: BTreeMap<String, u64>,
    throttled: BTreeMap<String, u64>,
    conflicts: BTreeMap<String, u64>,
    units: Units,
    units_by_operation: BTreeMap<String, Units>,
    units_by_app: BTreeMap<String, Units>,
    /// The modelled latency summed by operation.
    latency: BTreeMap<String, Duration>,
    by_app: BTreeMap<String, BTreeMap<String, u64>>,
    intervals: Vec<Interval>,
    /// Calls by app, then by invocation.
    invocations: BTreeMap<String, HashMap<String, Invocation>>,
}

/// The calls' intervals folded together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Timeline {
    pub round_trips: usize,
    /// First arrival → last answer.
    pub span: Duration,
    /// Time with at least one call in flight.
    pub busy: Duration,
}

/// Merges overlapping intervals; each merged group is one round trip.
pub(crate) fn timeline(intervals: &[(Duration, Duration)]) -> Timeline {
    let mut sorted = intervals.to_vec();
    sorted.sort();
    let mut out = Timeline::default();
    let mut group: Option<(Duration, Duration)> = None;
    for (start, end) in sorted {
        group = match group {
            Some((g_start, g_end)) if start <= g_end => Some((g_start, g_end.max(end))),
            Some((g_start, g_end)) => {
                out.round_trips += 1;
                out.busy += g_end - g_start;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((g_start, g_end)) = group {
        out.round_trips += 1;
        out.busy += g_end - g_start;
    }
    if let (Some(first), Some(last)) = (
        intervals.iter().map(|i| i.0).min(),
        intervals.iter().map(|i| i.1).max(),
    ) {
        out.span = last - first;
    }
    out
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

impl Stats {
    pub fn record(&mut self, call: Call) {
        *self.calls.entry(call.operation.clone()).or_default() += 1;
        if call.entries > 0 {
            *self.entries.entry(call.operation.clone()).or_default() += call.entries;
        }
        if let Some(code) = &call.error {
            *self
                .errors
                .entry(format!("{} {code}", call.operation))
                .or_default() += 1;
        }
        if call.entries_failed > 0 {
            *self
                .entries_failed
                .entry(call.operation.clone())
                .or_default() += call.entries_failed;
        }
        match call.injected {
            Some(Injected::Throttle) => {
                *self.throttled.entry(call.operation.clone()).or_default() += 1;
            }
            Some(Injected::Conflict) => {
                *self.conflicts.entry(call.operation.clone()).or_default() += 1;
            }
            None => {}
        }
        *self.latency.entry(call.operation.clone()).or_default() += call.latency;
        let app = call.app.unwrap_or_else(|| "-".to_owned());
        self.units.add(&call.units);
        if !call.units.is_zero() {
            self.units_by_operation
                .entry(call.operation.clone())
                .or_default()
                .add(&call.units);
            self.units_by_app
                .entry(app.clone())
                .or_default()
                .add(&call.units);
        }
        if let Some(trace) = call.trace {
            let invocation = self
                .invocations
                .entry(app.clone())
                .or_default()
                .entry(trace)
                .or_default();
            invocation.intervals.push((call.start, call.end));
            invocation.units.add(&call.units);
        }
        *self
            .by_app
            .entry(app)
            .or_default()
            .entry(call.operation)
            .or_default() += 1;
        self.intervals.push((call.start, call.end));
    }

    /// Per app: invocations seen, how many made N calls in M round trips
    /// consuming W write units (`calls`, `round_trips` and `wru` map N, M
    /// or W to a count), and the units of all of them (`units`).
    fn invocations_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        for (app, traces) in &self.invocations {
            let mut calls: BTreeMap<usize, u64> = BTreeMap::new();
            let mut round_trips: BTreeMap<usize, u64> = BTreeMap::new();
            // write units in tenths, so the keys sort and halves survive
            let mut wru: BTreeMap<u64, u64> = BTreeMap::new();
            let mut units = Units::default();
            for invocation in traces.values() {
                *calls.entry(invocation.intervals.len()).or_default() += 1;
                *round_trips
                    .entry(timeline(&invocation.intervals).round_trips)
                    .or_default() += 1;
                *wru.entry((invocation.units.wru * 10.0).round() as u64)
                    .or_default() += 1;
                units.add(&invocation.units);
            }
            let keyed = |m: BTreeMap<usize, u64>| -> BTreeMap<String, u64> {
                m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            };
            let wru: BTreeMap<String, u64> = wru
                .into_iter()
                .map(|(k, v)| (format!("{}", k as f64 / 10.0), v))
                .collect();
            out.insert(
                app.clone(),
                json!({
                    "count": traces.len(),
                    "calls": keyed(calls),
                    "round_trips": keyed(round_trips),
                    "wru": wru,
                    "units": units.to_json_nonzero(),
                }),
            );
        }
        Value::Object(out)
    }

    /// The counters as the stats endpoint answers them.
    pub fn to_json(&self) -> Value {
        let t = timeline(&self.intervals);
        json!({
            "calls": self.calls,
            "entries": self.entries,
            "total": self.calls.values().sum::<u64>(),
            "round_trips": t.round_trips,
            "span_ms": if self.intervals.is_empty() { Value::Null } else { json!(ms(t.span)) },
            "busy_ms": ms(t.busy),
            "errors": self.errors,
            "entries_failed": self.entries_failed,
            "throttled": self.throttled,
            "conflicts": self.conflicts,
            "units": self.units.to_json(),
            "units_by_operation": self.units_by_operation.iter()
                .map(|(op, u)| (op.clone(), u.to_json_nonzero()))
                .collect::<serde_json::Map<_, _>>(),
            "units_by_app": self.units_by_app.iter()
                .map(|(app, u)| (app.clone(), u.to_json_nonzero()))
                .collect::<serde_json::Map<_, _>>(),
            "latency_ms_by_operation": self.latency.iter()
                .map(|(op, d)| (op.clone(), number(ms(*d))))
                .collect::<serde_json::Map<_, _>>(),
            "by_app": self.by_app,
            "invocations": self.invocations_json(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start_ms: u64, end_ms: u64) -> (Duration, Duration) {
        (
            Duration::from_millis(start_ms),
            Duration::from_millis(end_ms),
        )
    }

    #[test]
    fn concurrent_calls_are_one_round_trip_and_sequential_ones_one_each() {
        // A wave of three, then two in sequence, then a wave of two.
        let calls = [
            at(0, 10),
            at(1, 11),
            at(2, 12),
            at(13, 23),
            at(24, 34),
            at(35, 45),
            at(36, 46),
        ];
        let t = timeline(&calls);
        assert_eq!(t.round_trips, 4);
        assert_eq!(t.span, Duration::from_millis(46));
        assert_eq!(t.busy, Duration::from_millis(12 + 10 + 10 + 11));
    }

    #[test]
    fn a_call_inside_another_joins_its_round_trip() {
        let t = timeline(&[at(0, 50), at(10, 20), at(30, 40), at(60, 70)]);
        assert_eq!(t.round_trips, 2);
    }

    #[test]
    fn no_calls_no_round_trips() {
        assert_eq!(timeline(&[]), Timeline::default());
    }

    #[test]
    fn stats_count_by_operation_error_and_app() {
        let mut stats = Stats::default();
        for (op, error, failed, entries) in [
            ("DynamoDB.PutItem", None, 0, 0),
            (
                "DynamoDB.PutItem",
                Some("ConditionalCheckFailedException"),
                0,
                0,
            ),
            ("SQS.SendMessageBatch", None, 2, 10),
        ] {
            stats.record(Call {
                operation: op.into(),
                app: Some("fn-a".into()),
                start: Duration::ZERO,
                end: Duration::from_millis(10),
                latency: Duration::from_millis(10),
                error: error.map(str::to_owned),
                entries_failed: failed,
                entries,
                units: Units::wru(if op.starts_with("DynamoDB") { 1.0 } else { 0.0 }),
                injected: None,
                trace: None,
            });
        }
        let json = stats.to_json();
        assert_eq!(json["calls"]["DynamoDB.PutItem"], 2);
        assert_eq!(json["total"], 3);
        assert_eq!(json["round_trips"], 1);
        assert_eq!(
            json["errors"]["DynamoDB.PutItem ConditionalCheckFailedException"],
            1
        );
        assert_eq!(json["entries_failed"]["SQS.SendMessageBatch"], 2);
        assert_eq!(json["entries"]["SQS.SendMessageBatch"], 10);
        assert_eq!(json["entries"].get("DynamoDB.PutItem"), None);
        assert_eq!(json["by_app"]["fn-a"]["SQS.SendMessageBatch"], 1);
        // a failed conditional write is billed too
        assert_eq!(json["units"]["wru"], 2);
        assert_eq!(json["units_by_operation"]["DynamoDB.PutItem"]["wru"], 2);
        assert_eq!(json["units_by_app"]["fn-a"], json!({"wru": 2}));
        assert_eq!(json["latency_ms_by_operation"]["DynamoDB.PutItem"], 20);
    }

    #[test]
    fn overlapping_invocations_are_folded_into_round_trips_one_by_one() {
        // Two instances of one function, each an invocation of two waves,
        // overlapping in time: as a whole one round trip, each alone two.
        let mut stats = Stats::default();
        let calls = [
            ("a", at(0, 10)),
            ("a", at(1, 11)),
            ("b", at(5, 15)),
            ("a", at(12, 22)),
            ("b", at(16, 26)),
            ("b", at(17, 27)),
        ];
        for (trace, (start, end)) in calls {
            stats.record(Call {
                operation: "DynamoDB.PutItem".into(),
                app: Some("fn".into()),
                start,
                end,
                latency: Duration::from_millis(10),
                error: None,
                entries_failed: 0,
                entries: 0,
                units: Units::wru(1.0),
                injected: (trace == "b").then_some(Injected::Throttle),
                trace: Some(trace.into()),
            });
        }
        let json = stats.to_json();
        assert_eq!(json["round_trips"], 1);
        let fun = &json["invocations"]["fn"];
        assert_eq!(fun["count"], 2);
        assert_eq!(fun["round_trips"], json!({"2": 2}));
        assert_eq!(fun["calls"], json!({"3": 2}));
        assert_eq!(fun["wru"], json!({"3": 2}));
        assert_eq!(fun["units"], json!({"wru": 6}));
        assert_eq!(json["throttled"]["DynamoDB.PutItem"], 3);
    }
}
