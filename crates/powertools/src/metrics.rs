//! Custom CloudWatch metrics in the Embedded Metric Format (EMF).
//!
//! A function adds values to a [`Metrics`] while it works and flushes them at
//! the end of each invocation; [`Metrics::flush_to_stdout`] prints one JSON
//! document per line, and CloudWatch Logs turns each into metric data points
//! — no `PutMetricData` call, no extra latency, no IAM permission. The
//! documents follow the [EMF specification] and stay within its limits:
//!
//! - at most 100 metrics per document: more are split over several documents;
//! - at most 100 values per metric: a metric added several times in one flush
//!   is written as an array of values, split over documents beyond 100;
//! - at most 30 dimensions ([`Metrics::with_dimension`] refuses the 31st).
//!
//! Every metric has the dimensions `service` and `function_name` (the latter
//! omitted when unknown), as in Powertools, plus any added ones:
//!
//! ```json
//! {"_aws":{"CloudWatchMetrics":[{"Dimensions":[["service","function_name"]],
//!   "Metrics":[{"Name":"RecordsProcessed","Unit":"Count"},{"Name":"RecordsFailed","Unit":"Count"}],
//!   "Namespace":"eventline"}],"Timestamp":1714564800123},
//!  "service":"user-processor","function_name":"eventline-user-processor","RecordsProcessed":9,"RecordsFailed":1}
//! ```
//!
//! `POWERTOOLS_METRICS_DISABLED` (true) stops [`Metrics::flush_to`] and
//! [`Metrics::flush_to_stdout`] from writing anything; `POWERTOOLS_DEV`
//! (true) does too unless `POWERTOOLS_METRICS_DISABLED` is set, which then
//! decides. That is Powertools' rule (Python's `is_metrics_disabled`,
//! TypeScript's `getMetricsDisabled`). Both variables read as [`crate::env::flag`];
//! an unreadable value counts as unset. Values are still collected and
//! dropped at each flush, so memory stays bounded.
//!
//! This module is the EMF writer only: it knows no metric names. Which
//! metrics an invocation records (`ColdStart`, the records' outcomes, the
//! idempotency events) and when they are flushed is [`crate::layer`]'s job.
//!
//! [EMF specification]: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::json;
use std::io::Write;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// EMF: a `Metrics` array holds at most 100 metric definitions.
const MAX_METRICS_PER_DOCUMENT: usize = 100;
/// EMF: a metric's value array holds at most 100 values.
const MAX_VALUES_PER_METRIC: usize = 100;
/// EMF: a dimension set holds at most 30 dimensions.
const MAX_DIMENSIONS: usize = 30;
/// CloudWatch: metric and dimension names are 1 to 255 characters.
const MAX_NAME_LEN: usize = 255;
const DEFAULT_NAMESPACE: &str = "eventline";

/// A dimension [`Metrics::with_dimension`] refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetricsError {
    /// EMF allows at most 30 dimensions per dimension set.
    #[error("cannot add dimension {name}: metrics already have the maximum of 30 dimensions")]
    TooManyDimensions {
        /// The refused dimension.
        name: String,
    },
    /// CloudWatch needs names and values of 1 to 255 characters, and a
    /// dimension must not be named like a metric's `_aws` metadata.
    #[error("invalid dimension {name:?}: names and values must be 1 to 255 characters and the name must not be _aws")]
    InvalidDimension {
        /// The refused dimension.
        name: String,
    },
}

/// CloudWatch metric units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // The names are CloudWatch's.
pub enum Unit {
    Seconds,
    Microseconds,
    Milliseconds,
    Bytes,
    Kilobytes,
    Megabytes,
    Gigabytes,
    Terabytes,
    Bits,
    Kilobits,
    Megabits,
    Gigabits,
    Terabits,
    Percent,
    Count,
    BytesPerSecond,
    KilobytesPerSecond,
    MegabytesPerSecond,
    GigabytesPerSecond,
    TerabytesPerSecond,
    BitsPerSecond,
    KilobitsPerSecond,
    MegabitsPerSecond,
    GigabitsPerSecond,
    TerabitsPerSecond,
    CountPerSecond,
    None,
}

impl Unit {
    /// The unit as CloudWatch spells it (`"Count/Second"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Seconds => "Seconds",
            Self::Microseconds => "Microseconds",
            Self::Milliseconds => "Milliseconds",
            Self::Bytes => "Bytes",
            Self::Kilobytes => "Kilobytes",
            Self::Megabytes => "Megabytes",
            Self::Gigabytes => "Gigabytes",
            Self::Terabytes => "Terabytes",
            Self::Bits => "Bits",
            Self::Kilobits => "Kilobits",
            Self::Megabits => "Megabits",
            Self::Gigabits => "Gigabits",
            Self::Terabits => "Terabits",
            Self::Percent => "Percent",
            Self::Count => "Count",
            Self::BytesPerSecond => "Bytes/Second",
            Self::KilobytesPerSecond => "Kilobytes/Second",
            Self::MegabytesPerSecond => "Megabytes/Second",
            Self::GigabytesPerSecond => "Gigabytes/Second",
            Self::TerabytesPerSecond => "Terabytes/Second",
            Self::BitsPerSecond => "Bits/Second",
            Self::KilobitsPerSecond => "Kilobits/Second",
            Self::MegabitsPerSecond => "Megabits/Second",
            Self::GigabitsPerSecond => "Gigabits/Second",
            Self::TerabitsPerSecond => "Terabits/Second",
            Self::CountPerSecond => "Count/Second",
            Self::None => "None",
        }
    }
}

/// One metric's values since the last flush.
#[derive(Debug)]
struct Metric {
    name: &'static str,
    unit: Unit,
    values: Vec<f64>,
}

/// Metric values accumulated during an invocation, for one namespace and one
/// set of dimensions. Build it once per cold start and share `&Metrics`.
#[derive(Debug)]
pub struct Metrics {
    namespace: String,
    /// `(name, value)`, in the order they are written.
    dimensions: Vec<(String, String)>,
    /// Metrics in the order they were first added.
    pending: Mutex<Vec<Metric>>,
    /// Flushes write nothing (`POWERTOOLS_METRICS_DISABLED`, `POWERTOOLS_DEV`).
    disabled: bool,
}

impl Metrics {
    /// Namespace `POWERTOOLS_METRICS_NAMESPACE` (default `eventline`),
    /// `service` from `POWERTOOLS_SERVICE_NAME`, else `AWS_LAMBDA_FUNCTION_NAME`
    /// (as in the logs), `function_name` from `AWS_LAMBDA_FUNCTION_NAME`;
    /// disabled by `POWERTOOLS_METRICS_DISABLED` or `POWERTOOLS_DEV` (module docs).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let metrics = Self::new(
            var("POWERTOOLS_METRICS_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            crate::env::service_name(&var),
            var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
        );
        metrics.disabled(disabled_by(&var))
    }

    /// The same metrics, writing nothing when `disabled`.
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    /// Metrics in `namespace` with the dimensions `service` and
    /// `function_name`; an empty value leaves its dimension out (CloudWatch
    /// refuses empty dimension values).
    pub fn new(
        namespace: impl Into<String>,
        service: impl Into<String>,
        function_name: impl Into<String>,
    ) -> Self {
        let dimensions = [
            ("service", service.into()),
            ("function_name", function_name.into()),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        Self {
            namespace: namespace.into(),
            dimensions,
            pending: Mutex::new(Vec::new()),
            disabled: false,
        }
    }

    /// Adds a dimension to every metric of these `Metrics` (replacing the
    /// value of one with the same name).
    pub fn with_dimension(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, MetricsError> {
        let (name, value) = (name.into(), value.into());
        let valid = |s: &str| !s.is_empty() && s.chars().count() <= MAX_NAME_LEN;
        if !valid(&name) || !valid(&value) || name == "_aws" {
            return Err(MetricsError::InvalidDimension { name });
        }
        if let Some((_, old)) = self.dimensions.iter_mut().find(|(n, _)| *n == name) {
            *old = value;
        } else if self.dimensions.len() == MAX_DIMENSIONS {
            return Err(MetricsError::TooManyDimensions { name });
        } else {
            self.dimensions.push((name, value));
        }
        Ok(self)
    }

    /// Adds one value of metric `name`, kept until the next flush.
    ///
    /// A value that would make the document invalid is dropped with a
    /// warning in the logs: a non-finite value, a name that is empty, longer
    /// than 255 characters or taken by a dimension, or a unit other than the
    /// one the metric was first added with since the last flush.
    pub fn add(&self, name: &'static str, unit: Unit, value: f64) {
        if !value.is_finite() {
            tracing::warn!(metric = name, "metric value dropped: not a finite number");
            return;
        }
        if name.is_empty()
            || name.chars().count() > MAX_NAME_LEN
            || name == "_aws"
            || self.dimensions.iter().any(|(d, _)| d == name)
        {
            tracing::warn!(metric = name, "metric value dropped: invalid metric name");
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        match pending.iter_mut().find(|m| m.name == name) {
            Some(metric) if metric.unit != unit => tracing::warn!(
                metric = name,
                unit = unit.as_str(),
                first_unit = metric.unit.as_str(),
                "metric value dropped: unit differs from the metric's first one"
            ),
            Some(metric) => metric.values.push(value),
            None => pending.push(Metric {
                name,
                unit,
                values: vec![value],
            }),
        }
    }

    /// Renders the values added since the last flush as EMF documents, one
    /// JSON object per string, and forgets them. Nothing added, no documents.
    pub fn flush(&self) -> Vec<String> {
        let pending =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let mut documents = Vec::new();
        // Round n carries each metric's n-th slice of 100 values.
        for round in 0.. {
            let slices: Vec<(&Metric, &[f64])> = pending
                .iter()
                .filter_map(|m| {
                    m.values
                        .chunks(MAX_VALUES_PER_METRIC)
                        .nth(round)
                        .map(|c| (m, c))
                })
                .collect();
            if slices.is_empty() {
                break;
            }
            for metrics in slices.chunks(MAX_METRICS_PER_DOCUMENT) {
                let document = Document {
                    timestamp,
                    namespace: &self.namespace,
                    dimensions: &self.dimensions,
                    metrics,
                };
                // Names, strings and finite numbers always serialize.
                documents.push(serde_json::to_string(&document).unwrap_or_default());
            }
        }
        documents
    }

    /// [`flush`](Self::flush)es to stdout, one document per line, where
    /// Lambda hands them to CloudWatch Logs. Call at the end of each invocation.
    pub fn flush_to_stdout(&self) {
        self.flush_to(&mut std::io::stdout().lock());
    }

    /// [`flush`](Self::flush)es to `out`, one document per line; writes
    /// nothing (and forgets the values) when disabled.
    pub fn flush_to(&self, out: &mut dyn Write) {
        if self.disabled {
            self.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
            return;
        }
        for document in self.flush() {
            // Metrics that cannot be written have nowhere better to go.
            let _ = writeln!(out, "{document}");
        }
    }
}

/// Powertools' rule: `POWERTOOLS_METRICS_DISABLED` decides when it is set;
/// otherwise `POWERTOOLS_DEV` true disables.
fn disabled_by(var: &dyn Fn(&str) -> Option<String>) -> bool {
    let flag = |name| crate::env::flag(var, name).ok().flatten();
    match flag("POWERTOOLS_METRICS_DISABLED") {
        Some(disabled) => disabled,
        None => flag("POWERTOOLS_DEV").unwrap_or(false),
    }
}

/// One EMF document: metadata, dimension values, metric values.
struct Document<'a> {
    timestamp: u64,
    namespace: &'a str,
    dimensions: &'a [(String, String)],
    metrics: &'a [(&'a Metric, &'a [f64])],
}

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let dimension_names: Vec<&str> = self.dimensions.iter().map(|(n, _)| n.as_str()).collect();
        let definitions: Vec<_> = self
            .metrics
            .iter()
            .map(|(m, _)| json!({"Name": m.name, "Unit": m.unit.as_str()}))
            .collect();
        let metadata = json!({
            "Timestamp": self.timestamp,
            "CloudWatchMetrics": [{
                "Namespace": self.namespace,
                "Dimensions": [dimension_names],
                "Metrics": definitions,
            }],
        });
        let mut map =
            serializer.serialize_map(Some(1 + self.dimensions.len() + self.metrics.len()))?;
        map.serialize_entry("_aws", &metadata)?;
        for (name, value) in self.dimensions {
            map.serialize_entry(name, value)?;
        }
        for (metric, values) in self.metrics {
            match values {
                [one] => map.serialize_entry(metric.name, &Number(*one))?,
                many => map.serialize_entry(
                    metric.name,
                    &many.iter().copied().map(Number).collect::<Vec<_>>(),
                )?,
            }
        }
        map.end()
    }
}

/// A metric value; whole numbers are written without a fraction (`10`, not `10.0`).
struct Number(f64);

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        if self.0.fract() == 0.0 && self.0.abs() < EXACT {
            serializer.serialize_i64(self.0 as i64)
        } else {
            serializer.serialize_f64(self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::HashMap;

    fn metrics() -> Metrics {
        Metrics::new("eventline", "user-processor", "eventline-user-processor")
    }

    /// Parses `document` and checks it against the EMF specification;
    /// returns the parsed document.
    fn valid_emf(document: &str) -> Value {
        assert!(!document.contains('\n'), "one line: {document}");
        let doc: Value = serde_json::from_str(document).expect("a JSON document");
        let root = doc.as_object().expect("root is an object");
        let aws = root["_aws"].as_object().expect("_aws is an object");
        assert!(aws["Timestamp"].is_u64(), "Timestamp is an integer: {doc}");
        let directives = aws["CloudWatchMetrics"]
            .as_array()
            .expect("CloudWatchMetrics");
        assert!(!directives.is_empty());
        for directive in directives {
            assert!(directive["Namespace"]
                .as_str()
                .is_some_and(|n| !n.is_empty()));
            for set in directive["Dimensions"].as_array().expect("Dimensions") {
                let set = set.as_array().expect("a dimension set is an array");
                assert!(set.len() <= MAX_DIMENSIONS, "{} dimensions", set.len());
                for key in set {
                    let key = key.as_str().expect("dimension keys are strings");
                    assert!(
                        root.get(key)
                            .and_then(Value::as_str)
                            .is_some_and(|v| !v.is_empty()),
                        "dimension {key} is a top-level string: {doc}"
                    );
                }
            }
            let definitions = directive["Metrics"].as_array().expect("Metrics");
            assert!(
                definitions.len() <= MAX_METRICS_PER_DOCUMENT,
                "{} metrics",
                definitions.len()
            );
            for definition in definitions {
                let name = definition["Name"].as_str().expect("Name");
                let unit = definition["Unit"].as_str().expect("Unit");
                assert!(!unit.is_empty());
                match &root[name] {
                    Value::Number(_) => {}
                    Value::Array(values) => {
                        assert!(!values.is_empty() && values.len() <= MAX_VALUES_PER_METRIC);
                        assert!(values.iter().all(Value::is_number), "{name}: {values:?}");
                    }
                    other => panic!("metric {name} has no number or array of numbers: {other}"),
                }
            }
        }
        doc
    }

    fn metric_names(doc: &Value) -> Vec<String> {
        doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["Name"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn flush_renders_one_valid_emf_document() {
        let m = metrics();
        m.add("RecordsProcessed", Unit::Count, 10.0);
        m.add("Latency", Unit::Milliseconds, 12.5);
        let documents = m.flush();
        assert_eq!(documents.len(), 1);
        let doc = valid_emf(&documents[0]);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"],
            json!([{
                "Namespace": "eventline",
                "Dimensions": [["service", "function_name"]],
                "Metrics": [
                    {"Name": "RecordsProcessed", "Unit": "Count"},
                    {"Name": "Latency", "Unit": "Milliseconds"}
                ]
            }])
        );
        assert_eq!(doc["service"], "user-processor");
        assert_eq!(doc["function_name"], "eventline-user-processor");
        assert_eq!(doc["RecordsProcessed"], 10);
        assert_eq!(doc["Latency"], 12.5);
        assert!(documents[0].starts_with("{\"_aws\":"), "{}", documents[0]);
        assert!(
            documents[0].contains("\"RecordsProcessed\":10,"),
            "{}",
            documents[0]
        );
    }

    #[test]
    fn timestamp_is_the_flush_time_in_milliseconds() {
        let m = metrics();
        m.add("Sent", Unit::Count, 1.0);
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let doc = valid_emf(&m.flush()[0]);
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let timestamp = doc["_aws"]["Timestamp"].as_u64().unwrap();
        assert!(
            (before..=after).contains(&timestamp),
            "{before} <= {timestamp} <= {after}"
        );
    }

    #[test]
    fn repeated_adds_form_an_array() {
        let m = metrics();
        m.add("Latency", Unit::Milliseconds, 3.0);
        m.add("Latency", Unit::Milliseconds, 4.5);
        m.add("Latency", Unit::Milliseconds, 5.0);
        let doc = valid_emf(&m.flush()[0]);
        assert_eq!(doc["Latency"], json!([3, 4.5, 5]));
        assert_eq!(metric_names(&doc), ["Latency"]);
    }

    #[test]
    fn flush_clears_and_an_empty_flush_writes_nothing() {
        let m = metrics();
        m.add("Sent", Unit::Count, 1.0);
        assert_eq!(m.flush().len(), 1);
        assert!(m.flush().is_empty());
        m.add("Sent", Unit::Count, 2.0);
        let doc = valid_emf(&m.flush()[0]);
        assert_eq!(doc["Sent"], 2);
    }

    #[test]
    fn more_than_100_metrics_split_into_documents_of_100() {
        let m = metrics();
        for i in 0..=100 {
            // Metric names are &'static str: names made at run time are leaked.
            let name: &'static str = Box::leak(format!("M{i:03}").into_boxed_str());
            m.add(name, Unit::Count, 1.0);
        }
        let documents = m.flush();
        assert_eq!(documents.len(), 2);
        let first = valid_emf(&documents[0]);
        let second = valid_emf(&documents[1]);
        assert_eq!(metric_names(&first).len(), 100);
        assert_eq!(metric_names(&second), ["M100"]);
        assert_eq!(second["M100"], 1);
        assert_eq!(second["service"], "user-processor");
    }

    #[test]
    fn more_than_100_values_split_into_documents() {
        let m = metrics();
        for i in 0..250 {
            m.add("Latency", Unit::Milliseconds, f64::from(i));
        }
        m.add("Sent", Unit::Count, 1.0);
        let documents: Vec<Value> = m.flush().iter().map(|d| valid_emf(d)).collect();
        let lengths: Vec<usize> = documents
            .iter()
            .map(|d| d["Latency"].as_array().unwrap().len())
            .collect();
        assert_eq!(lengths, [100, 100, 50]);
        assert_eq!(documents[2]["Latency"][49], 249);
        assert_eq!(metric_names(&documents[0]), ["Latency", "Sent"]);
        assert_eq!(metric_names(&documents[1]), ["Latency"]);
    }

    #[test]
    fn invalid_values_and_names_are_dropped() {
        let m = metrics();
        m.add("Latency", Unit::Milliseconds, f64::NAN);
        m.add("Latency", Unit::Milliseconds, f64::INFINITY);
        m.add("service", Unit::Count, 1.0);
        m.add("", Unit::Count, 1.0);
        m.add("Sent", Unit::Count, 1.0);
        m.add("Sent", Unit::Milliseconds, 2.0);
        let documents = m.flush();
        assert_eq!(documents.len(), 1);
        let doc = valid_emf(&documents[0]);
        assert_eq!(metric_names(&doc), ["Sent"]);
        assert_eq!(doc["Sent"], 1);
    }

    #[test]
    fn dimensions_are_limited_to_30() {
        let mut m = metrics();
        for i in 2..MAX_DIMENSIONS {
            m = m.with_dimension(format!("d{i}"), "v").unwrap();
        }
        let m = m.with_dimension("d2", "replaced").unwrap();
        let err = m.with_dimension("one_too_many", "v").unwrap_err();
        assert_eq!(
            err,
            MetricsError::TooManyDimensions {
                name: "one_too_many".to_owned()
            }
        );
        let m = metrics().with_dimension("environment", "prod").unwrap();
        m.add("Sent", Unit::Count, 1.0);
        let doc = valid_emf(&m.flush()[0]);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["service", "function_name", "environment"]])
        );
        assert_eq!(doc["environment"], "prod");
        assert!(matches!(
            metrics().with_dimension("empty", ""),
            Err(MetricsError::InvalidDimension { .. })
        ));
    }

    #[test]
    fn dimensions_with_empty_values_are_left_out() {
        let m = Metrics::new("eventline", "svc", "");
        m.add("Sent", Unit::Count, 1.0);
        let doc = valid_emf(&m.flush()[0]);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["service"]])
        );
        assert!(doc.get("function_name").is_none());
    }

    #[test]
    fn from_env_reads_powertools_variables() {
        let vars = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let set = vars(&[
            ("POWERTOOLS_METRICS_NAMESPACE", "signups"),
            ("AWS_LAMBDA_FUNCTION_NAME", "eventline-user-processor"),
        ]);
        let m = Metrics::from_lookup(|name| set.get(name).cloned());
        assert_eq!(m.namespace, "signups");
        assert_eq!(
            m.dimensions,
            [
                ("service".to_owned(), "eventline-user-processor".to_owned()),
                (
                    "function_name".to_owned(),
                    "eventline-user-processor".to_owned()
                )
            ]
        );
        let m = Metrics::from_lookup(|_| None);
        assert_eq!(m.namespace, "eventline");
        assert_eq!(
            m.dimensions,
            [("service".to_owned(), "service_undefined".to_owned())]
        );
    }

    #[test]
    fn disabled_metrics_write_nothing_and_forget_their_values() {
        let m = metrics().disabled(true);
        m.add("Sent", Unit::Count, 1.0);
        let mut out = Vec::new();
        m.flush_to(&mut out);
        assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
        assert!(m.flush().is_empty(), "values are dropped at the flush");
        let enabled = metrics();
        enabled.add("Sent", Unit::Count, 1.0);
        enabled.flush_to(&mut out);
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 1);
    }

    #[test]
    fn metrics_disabled_decides_when_set_else_powertools_dev() {
        let disabled = |pairs: &[(&str, &str)]| {
            let set: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            Metrics::from_lookup(|name| set.get(name).cloned()).disabled
        };
        let (dev, off) = ("POWERTOOLS_DEV", "POWERTOOLS_METRICS_DISABLED");
        assert!(!disabled(&[]));
        assert!(disabled(&[(off, "true")]));
        assert!(disabled(&[(off, "1"), (dev, "false")]));
        assert!(disabled(&[(dev, "true")]));
        assert!(!disabled(&[(dev, "true"), (off, "false")]));
        assert!(!disabled(&[(dev, "0")]));
        // Unreadable: as if unset.
        assert!(!disabled(&[(off, "maybe")]));
        assert!(disabled(&[(off, "maybe"), (dev, "on")]));
    }

    #[test]
    fn units_are_spelled_as_cloudwatch_does() {
        assert_eq!(Unit::Count.as_str(), "Count");
        assert_eq!(Unit::CountPerSecond.as_str(), "Count/Second");
        assert_eq!(Unit::None.as_str(), "None");
    }

    #[test]
    fn metrics_are_shared_across_threads() {
        let m = metrics();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| m.add("Sent", Unit::Count, 1.0));
            }
        });
        let doc = valid_emf(&m.flush()[0]);
        assert_eq!(doc["Sent"], json!([1, 1, 1, 1]));
    }
}
