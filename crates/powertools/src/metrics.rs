//! CloudWatch Embedded Metric Format (placeholder; being written).
