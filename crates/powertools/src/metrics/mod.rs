//! Custom CloudWatch metrics in the Embedded Metric Format (EMF).
//!
//! A function adds values to a [`Metrics`] while it works and flushes them at
//! the end of each invocation; [`Metrics::flush_to_stdout`] prints one JSON
//! document per line, and CloudWatch Logs turns each into metric data points:
//! no `PutMetricData` call, no extra latency, no IAM permission. The
//! documents follow the [EMF specification] and stay within its limits (100
//! metrics per document and 100 values per metric, split over more
//! documents beyond; 30 dimensions, the 31st refused). Every metric has the
//! dimensions `service` and `function_name`, as in Powertools.
//!
//! `POWERTOOLS_METRICS_DISABLED` and `POWERTOOLS_DEV` stop the writing as
//! Powertools does; values are still collected and dropped at each flush.
//! A document's shape and the rule in full: docs/observability.md
//! ("Metrics: the EMF documents").
//!
//! This module is the EMF writer only (`emf.rs` renders a document, `unit.rs`
//! spells the units): it knows no metric names. Which metrics an invocation
//! records and when they are flushed is the metrics layer's job.
//!
//! [EMF specification]: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

mod emf;
#[cfg(test)]
mod tests;
mod unit;

pub use unit::Unit;

use emf::Document;
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
