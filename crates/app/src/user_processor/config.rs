//! user-processor's settings ([`Config`]), the regions among them.

use eventline_domain::{Region, RegionSet};
use eventline_powertools::env::Env;
use std::num::NonZeroUsize;

/// Settings: `USERS_TABLE`, `NOTIFICATION_QUEUE_URL`, `EVENT_BUS_NAME`,
/// `SIGNUP_DLQ_URL`, optional `BATCH_CONCURRENCY` (records processed at
/// once, default 10), and the regions: `AWS_REGION` (set by Lambda) and
/// optional `REGIONS` (this region and its peers, comma-separated; default
/// this region alone). `AWS_REGION` is required when `REGIONS` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// DynamoDB table of users.
    pub users_table: String,
    /// SQS queue for notifications.
    pub notification_queue_url: String,
    /// EventBridge bus name.
    pub event_bus_name: String,
    /// Where signups that can never succeed go, with their reason.
    pub dead_letter_queue_url: String,
    /// Records processed at once.
    pub concurrency: NonZeroUsize,
    /// This region and the set home regions are picked from; `None` when
    /// neither `AWS_REGION` nor `REGIONS` is set (outside Lambda): the
    /// events then name no region.
    pub regions: Option<RegionSet>,
}

impl Config {
    /// Reads the settings, recording problems in `env`.
    pub fn from_env(env: &mut Env) -> Self {
        Self {
            users_table: env.required("USERS_TABLE"),
            notification_queue_url: env.required("NOTIFICATION_QUEUE_URL"),
            event_bus_name: env.required("EVENT_BUS_NAME"),
            dead_letter_queue_url: env.required("SIGNUP_DLQ_URL"),
            concurrency: env.parsed_or("BATCH_CONCURRENCY", crate::DEFAULT_CONCURRENCY),
            regions: regions_from_env(env),
        }
    }
}

/// `AWS_REGION` and `REGIONS`, as [`Config::regions`] describes them.
fn regions_from_env(env: &mut Env) -> Option<RegionSet> {
    let list = env.optional("REGIONS");
    let own = match list {
        Some(_) => Some(env.required("AWS_REGION")).filter(|own| !own.is_empty()),
        None => env.optional("AWS_REGION"),
    }?;
    let own = Region::parse(&own)
        .map_err(|e| env.reject("AWS_REGION", e))
        .ok()?;
    match list {
        None => Some(RegionSet::single(own)),
        Some(list) => RegionSet::parse(own, &list)
            .map_err(|e| env.reject("REGIONS", e))
            .ok(),
    }
}
