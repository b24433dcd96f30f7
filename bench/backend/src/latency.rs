//! How long each operation takes: a multiple of the base latency
//! (`--latency-ms`, a single-item DynamoDB write), plus a share of it per
//! item beyond the first for calls that carry several, so a transaction
//! is slower than a single write and a 10-entry batch a little slower than
//! one entry. `--latency-model uniform` answers every call after the base
//! latency, as the backend did before the table existed.
//!
//! The factors and where they come from are in bench/README.md ("Latency
//! per operation"); the ones marked there as assumptions are not
//! published figures.

use std::time::Duration;

/// Which latency each call gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Model {
    /// Per operation, from [`TABLE`].
    #[default]
    Aws,
    /// Every call after the base latency.
    Uniform,
}

impl std::str::FromStr for Model {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "aws" => Ok(Self::Aws),
            "uniform" => Ok(Self::Uniform),
            other => Err(format!("latency model '{other}': expected aws or uniform")),
        }
    }
}

impl Model {
    /// The name `--latency-model` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::Uniform => "uniform",
        }
    }
}

/// One operation's latency: `base × (factor + per_item × (items − 1))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// Multiple of the base for the call (its first item).
    pub factor: f64,
    /// Multiple of the base added per item beyond the first.
    pub per_item: f64,
}

const fn cost(factor: f64, per_item: f64) -> Cost {
    Cost { factor, per_item }
}

/// The per-operation table, by the counters' operation names. An
/// operation not listed takes the base latency.
pub const TABLE: &[(&str, Cost)] = &[
    // Single-item reads and writes: the base ("single-digit millisecond").
    ("DynamoDB.GetItem", cost(1.0, 0.0)),
    ("DynamoDB.PutItem", cost(1.0, 0.0)),
    ("DynamoDB.UpdateItem", cost(1.0, 0.0)),
    ("DynamoDB.DeleteItem", cost(1.0, 0.0)),
    // Items written in parallel on their partitions; the call waits for
    // the slowest (assumption).
    ("DynamoDB.BatchWriteItem", cost(1.0, 0.04)),
    // Two phases in sequence (prepare on every item, then commit) through
    // a transaction coordinator, each waiting for the slowest of the
    // items' storage nodes (assumption for the per-item share).
    ("DynamoDB.TransactWriteItems", cost(2.0, 0.1)),
    ("SQS.SendMessage", cost(1.0, 0.0)),
    ("SQS.SendMessageBatch", cost(1.0, 0.05)),
    ("EventBridge.PutEvents", cost(1.0, 0.05)),
    // S3 Standard answers in tens of milliseconds where DynamoDB answers in
    // single digits (assumption: 2x).
    ("S3.PutObject", cost(2.0, 0.0)),
    ("S3.GetObject", cost(2.0, 0.0)),
    ("S3.HeadObject", cost(2.0, 0.0)),
    ("SESv2.SendEmail", cost(2.0, 0.0)),
];

/// The cost of `operation` in the table (the base when it is not listed).
pub fn cost_of(operation: &str) -> Cost {
    TABLE
        .iter()
        .find(|(op, _)| *op == operation)
        .map_or(cost(1.0, 0.0), |(_, c)| *c)
}

/// The latency of one call of `operation` carrying `items` items (0 or 1
/// for single-item calls).
pub fn latency(model: Model, base: Duration, operation: &str, items: usize) -> Duration {
    match model {
        Model::Uniform => base,
        Model::Aws => {
            let c = cost_of(operation);
            let extra = items.saturating_sub(1) as f64;
            base.mul_f64(c.factor + c.per_item * extra)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(10);

    #[test]
    fn a_transaction_is_slower_than_a_single_write_and_grows_with_its_items() {
        let put = latency(Model::Aws, BASE, "DynamoDB.PutItem", 0);
        let two = latency(Model::Aws, BASE, "DynamoDB.TransactWriteItems", 2);
        let twenty = latency(Model::Aws, BASE, "DynamoDB.TransactWriteItems", 20);
        assert_eq!(put, BASE);
        assert_eq!(two, Duration::from_millis(21));
        assert_eq!(twenty, Duration::from_millis(39));
        assert_eq!(
            latency(Model::Aws, BASE, "SQS.SendMessageBatch", 10),
            Duration::from_micros(14_500)
        );
    }

    #[test]
    fn the_uniform_model_and_unknown_operations_take_the_base() {
        assert_eq!(
            latency(Model::Uniform, BASE, "DynamoDB.TransactWriteItems", 20),
            BASE
        );
        assert_eq!(latency(Model::Aws, BASE, "Kinesis.PutRecord", 3), BASE);
        assert_eq!(
            latency(Model::Aws, Duration::ZERO, "S3.PutObject", 1),
            Duration::ZERO
        );
        assert_eq!("uniform".parse::<Model>(), Ok(Model::Uniform));
        assert!("fast".parse::<Model>().is_err());
    }
}
