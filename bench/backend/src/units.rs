//! Billable units of one call, in what AWS bills each service by, so a
//! benchmark can price what was actually sent rather than assume it:
//! DynamoDB write and read request units (from item sizes, see
//! `dynamodb::size`), SQS requests (each 64 KiB chunk of a call's payload),
//! EventBridge events (each 64 KiB chunk of an accepted entry), S3 PUT and
//! GET requests, and SES emails (one per recipient).

use serde_json::{Map, Value};

/// SQS bills each 64 KiB chunk of a request's payload as one request;
/// EventBridge each 64 KiB chunk of an entry as one event.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Billing chunks of a payload: at least one.
pub(crate) fn chunks(bytes: usize) -> f64 {
    bytes.div_ceil(CHUNK).max(1) as f64
}

/// Units of one call (or a sum of calls).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Units {
    pub wru: f64,
    pub rru: f64,
    pub sqs_requests: f64,
    pub events: f64,
    pub s3_put: f64,
    pub s3_get: f64,
    pub ses_emails: f64,
}

impl Units {
    pub fn wru(wru: f64) -> Self {
        Self {
            wru,
            ..Self::default()
        }
    }

    pub fn add(&mut self, other: &Units) {
        self.wru += other.wru;
        self.rru += other.rru;
        self.sqs_requests += other.sqs_requests;
        self.events += other.events;
        self.s3_put += other.s3_put;
        self.s3_get += other.s3_get;
        self.ses_emails += other.ses_emails;
    }

    fn fields(self) -> [(&'static str, f64); 7] {
        [
            ("wru", self.wru),
            ("rru", self.rru),
            ("sqs_requests", self.sqs_requests),
            ("events", self.events),
            ("s3_put", self.s3_put),
            ("s3_get", self.s3_get),
            ("ses_emails", self.ses_emails),
        ]
    }

    pub fn is_zero(self) -> bool {
        self.fields().iter().all(|(_, v)| *v == 0.0)
    }

    /// Every unit, zeros included (the totals).
    pub fn to_json(self) -> Value {
        Value::Object(
            self.fields()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), number(v)))
                .collect(),
        )
    }

    /// The units that are not zero (per operation, per app).
    pub fn to_json_nonzero(self) -> Value {
        let map: Map<String, Value> = self
            .fields()
            .into_iter()
            .filter(|(_, v)| *v != 0.0)
            .map(|(k, v)| (k.to_owned(), number(v)))
            .collect();
        Value::Object(map)
    }
}

/// Whole numbers as integers in JSON (`4`, not `4.0`), halves as they are.
pub(crate) fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::from(v as i64)
    } else {
        Value::from(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_billed_in_64_kib_chunks_and_at_least_one() {
        assert_eq!(chunks(0), 1.0);
        assert_eq!(chunks(CHUNK), 1.0);
        assert_eq!(chunks(CHUNK + 1), 2.0);
    }

    #[test]
    fn units_add_up_and_print_whole_numbers_as_integers() {
        let mut u = Units::wru(2.0);
        u.add(&Units {
            rru: 0.5,
            ..Units::default()
        });
        assert_eq!(
            u.to_json_nonzero(),
            serde_json::json!({"wru": 2, "rru": 0.5})
        );
        assert_eq!(u.to_json()["events"], 0);
        assert!(!u.is_zero());
        assert!(Units::default().is_zero());
    }
}
