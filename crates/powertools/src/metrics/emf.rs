//! One EMF document, as CloudWatch Logs reads it.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::json;

use super::Metric;

/// One EMF document: metadata, dimension values, metric values.
pub(super) struct Document<'a> {
    pub(super) timestamp: u64,
    pub(super) namespace: &'a str,
    pub(super) dimensions: &'a [(String, String)],
    pub(super) metrics: &'a [(&'a Metric, &'a [f64])],
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
