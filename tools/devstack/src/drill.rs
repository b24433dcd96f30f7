//! The region failure drill (`devstack drill`, `make drill`): signups keep
//! arriving in every region while one region's functions are not invoked
//! ([`crate::runner::Outage`]: its queues and rule taps keep accumulating,
//! as on AWS when a region's Lambda is impaired), then that region recovers.
//!
//! [`Plan`] says what is sent where and when; [`check`] reads back what the
//! regions hold and says, claim by claim, whether anything was lost or done
//! twice. Only the drill's own users count (their ids carry the run's
//! prefix), so a drill can run against a stack that holds other data.

use crate::manifest::Manifest;
use crate::state::StackState;
use crate::DevstackError;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::time::Duration;

/// One signup message of the drill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signup {
    /// When to send it, after the run starts.
    pub at: Duration,
    /// The region (index into [`Plan::regions`]) whose signup queue takes it.
    pub region: usize,
    /// The user.
    pub user_id: String,
}

impl Signup {
    /// The SignupQueue message body.
    pub fn body(&self) -> String {
        serde_json::json!({
            "user_id": self.user_id,
            "email": format!("{}@example.com", self.user_id),
            "name": format!("Drill user {}", self.user_id),
        })
        .to_string()
    }
}

/// What the drill sends, and which region is down when.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The regions, in the manifests' order.
    pub regions: Vec<String>,
    /// The region whose functions stop.
    pub down: usize,
    /// When its outage starts, after the run starts.
    pub outage_from: Duration,
    /// How long it lasts.
    pub outage_length: Duration,
    /// Every signup message, in the order sent.
    pub signups: Vec<Signup>,
    /// The prefix of every drill user id.
    pub prefix: String,
}

impl Plan {
    /// `users` users dealt round the regions, sent evenly from the start
    /// until the outage ends; every `twice_every`-th user (0: none) also
    /// signs up in the next region at the same moment.
    pub fn new(
        regions: Vec<String>,
        down: usize,
        outage_from: Duration,
        outage_length: Duration,
        users: usize,
        twice_every: usize,
        prefix: impl Into<String>,
    ) -> Self {
        let prefix = prefix.into();
        let span = outage_from + outage_length;
        let n = regions.len().max(1);
        let mut signups = Vec::new();
        for i in 0..users {
            // Spread over [0, span): the last one still arrives during the outage.
            let at = span.mul_f64(i as f64 / users.max(1) as f64);
            let user_id = format!("{prefix}{i:04}");
            signups.push(Signup {
                at,
                region: i % n,
                user_id: user_id.clone(),
            });
            if twice_every > 0 && n > 1 && i % twice_every == twice_every - 1 {
                signups.push(Signup {
                    at,
                    region: (i + 1) % n,
                    user_id,
                });
            }
        }
        Self {
            regions,
            down,
            outage_from,
            outage_length,
            signups,
            prefix,
        }
    }

    /// The drill's users.
    pub fn users(&self) -> BTreeSet<String> {
        self.signups.iter().map(|s| s.user_id.clone()).collect()
    }

    /// The users who signed up in region `region`.
    pub fn users_in(&self, region: usize) -> BTreeSet<String> {
        self.signups
            .iter()
            .filter(|s| s.region == region)
            .map(|s| s.user_id.clone())
            .collect()
    }

    /// The users who signed up in two regions at once.
    pub fn in_two_regions(&self) -> usize {
        self.signups.len() - self.users().len()
    }
}

/// What one region holds of the drill's users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    /// User ids in its users table.
    pub users: BTreeSet<String>,
    /// User ids in its profiles table.
    pub profiles: BTreeSet<String>,
    /// User id of each welcome email in its outbox (one entry per object).
    pub welcome_emails: Vec<String>,
    /// User id of each signup confirmation in its outbox.
    pub confirmations: Vec<String>,
    /// Its stack's state (dead letters).
    pub state: StackState,
}

impl Holdings {
    /// Reads what the region of `manifest` holds of users whose id starts with `prefix`.
    pub async fn read(
        manifest: &Manifest,
        sdk: &aws_config::SdkConfig,
        prefix: &str,
    ) -> Result<Self, DevstackError> {
        let env = |var: &str| {
            manifest
                .functions
                .iter()
                .find_map(|f| f.environment.get(var).cloned())
                .ok_or_else(|| DevstackError::Usage(format!("{var} is not in the manifest")))
        };
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(sdk)
                .force_path_style(true)
                .build(),
        );
        let bucket = env("BUCKET_NAME")?;
        let outbox = |kind: &'static str| {
            let (s3, bucket) = (&s3, &bucket);
            async move {
                let mut users = Vec::new();
                let key_prefix = format!("outbox/{kind}.{prefix}");
                let mut pages = s3
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(&key_prefix)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| DevstackError::aws("S3 ListObjectsV2", e))?;
                    users.extend(page.contents().iter().filter_map(|o| {
                        let key = o.key()?.strip_prefix(&format!("outbox/{kind}."))?;
                        Some(key.trim_end_matches(".json").to_owned())
                    }));
                }
                Ok::<_, DevstackError>(users)
            }
        };
        Ok(Self {
            users: user_ids(&dynamodb, &env("USERS_TABLE")?, prefix).await?,
            profiles: user_ids(&dynamodb, &env("PROFILES_TABLE")?, prefix).await?,
            welcome_emails: outbox("welcome").await?,
            confirmations: outbox("signup_confirmation").await?,
            state: StackState::read(manifest, sdk).await?,
        })
    }
}

/// The `user_id`s starting with `prefix` in `table`.
async fn user_ids(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    prefix: &str,
) -> Result<BTreeSet<String>, DevstackError> {
    let mut ids = BTreeSet::new();
    let mut start = None;
    loop {
        let page = dynamodb
            .scan()
            .table_name(table)
            .projection_expression("user_id")
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| DevstackError::aws("DynamoDB Scan", e))?;
        ids.extend(
            page.items()
                .iter()
                .filter_map(|item| match item.get("user_id") {
                    Some(AttributeValue::S(id)) if id.starts_with(prefix) => Some(id.clone()),
                    _ => None,
                }),
        );
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(ids);
        }
    }
}

/// One claim the drill makes, and whether it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// What is claimed.
    pub what: String,
    /// What was found, when it did not hold.
    pub failure: Option<String>,
}

/// Checks `holdings` (one per region, in the plan's order) against `plan`:
/// every user in every region, a profile per user per region, exactly one
/// welcome email per user worldwide, a confirmation for every user (from a
/// region it signed up in, never two from one region), and no dead letter.
pub fn check(plan: &Plan, holdings: &[Holdings]) -> Vec<Claim> {
    let users = plan.users();
    let mut claims = Vec::new();
    let mut claim = |what: String, failure: Option<String>| claims.push(Claim { what, failure });
    let missing = |want: &BTreeSet<String>, have: &BTreeSet<String>| {
        let gone: Vec<_> = want.difference(have).take(5).cloned().collect();
        let extra: Vec<_> = have.difference(want).take(5).cloned().collect();
        (!gone.is_empty() || !extra.is_empty()).then(|| {
            format!(
                "{} of {}: missing {gone:?}, unexpected {extra:?}",
                have.len(),
                want.len()
            )
        })
    };
    for (region, held) in plan.regions.iter().zip(holdings) {
        claim(
            format!("{region}: all {} users in its users table", users.len()),
            missing(&users, &held.users),
        );
        claim(
            format!("{region}: a profile for each of the {} users", users.len()),
            missing(&users, &held.profiles),
        );
    }
    let welcomed = count(holdings.iter().flat_map(|h| &h.welcome_emails));
    let not_once: Vec<_> = users
        .iter()
        .filter(|u| welcomed.get(*u) != Some(&1))
        .take(5)
        .map(|u| format!("{u}: {}", welcomed.get(u).copied().unwrap_or(0)))
        .collect();
    claim(
        format!(
            "exactly one welcome email per user worldwide ({})",
            users.len()
        ),
        (!not_once.is_empty() || welcomed.len() != users.len())
            .then(|| format!("{} users welcomed; not once: {not_once:?}", welcomed.len())),
    );
    // A signup whose user is already in the table (replicated from the
    // region that took its twin first) is a duplicate there and confirms
    // nothing; only signups that raced both confirm (docs/multi-region.md).
    let only_in = |i: usize| -> BTreeSet<String> {
        let elsewhere: BTreeSet<String> = (0..plan.regions.len())
            .filter(|j| *j != i)
            .flat_map(|j| plan.users_in(j))
            .collect();
        plan.users_in(i).difference(&elsewhere).cloned().collect()
    };
    let mut confirmations = BTreeMap::<String, u64>::new();
    for (i, (region, held)) in plan.regions.iter().zip(holdings).enumerate() {
        let (took, only) = (plan.users_in(i), only_in(i));
        let confirmed = count(&held.confirmations);
        let wrong: Vec<_> = confirmed
            .iter()
            .filter(|(u, n)| **n > 1 || !took.contains(*u))
            .take(5)
            .collect();
        let unconfirmed: Vec<_> = only
            .difference(&confirmed.keys().cloned().collect())
            .take(5)
            .cloned()
            .collect();
        claim(
            format!(
                "{region}: a confirmation for each of the {} users who signed up only there, none twice or unasked",
                only.len()
            ),
            (!wrong.is_empty() || !unconfirmed.is_empty())
                .then(|| format!("unconfirmed {unconfirmed:?}, twice or unasked {wrong:?}")),
        );
        for (user, n) in confirmed {
            *confirmations.entry(user).or_default() += n;
        }
    }
    let twins = plan.in_two_regions();
    let confirmed_twice = confirmations.values().filter(|n| **n > 1).count();
    let never: Vec<_> = users
        .iter()
        .filter(|u| !confirmations.contains_key(*u))
        .take(5)
        .collect();
    claim(
        format!(
            "every user confirmed; of the {twins} who signed up in two regions, {confirmed_twice} confirmed by both \
             (their signups raced) and {} once (the later signup found the replicated user)",
            twins.saturating_sub(confirmed_twice)
        ),
        (!never.is_empty()).then(|| format!("never confirmed: {never:?}")),
    );
    let dead: u64 = holdings
        .iter()
        .flat_map(|h| h.state.dead_letters.values())
        .map(|(_, n)| n)
        .sum();
    claim(
        "no dead letter in any region".to_owned(),
        (dead > 0).then(|| format!("{dead} dead letters")),
    );
    claims
}

fn count<'a>(ids: impl IntoIterator<Item = &'a String>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for id in ids {
        *counts.entry(id.clone()).or_default() += 1;
    }
    counts
}

/// The claims as lines (`ok` or `FAILED`, and what was found).
pub fn render(claims: &[Claim]) -> String {
    let mut out = String::new();
    for c in claims {
        match &c.failure {
            None => {
                let _ = writeln!(out, "  ok      {}", c.what);
            }
            Some(found) => {
                let _ = writeln!(out, "  FAILED  {}: {found}", c.what);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan::new(
            vec!["a".into(), "b".into(), "c".into()],
            1,
            Duration::from_secs(10),
            Duration::from_secs(20),
            6,
            3,
            "d-",
        )
    }

    fn holdings(plan: &Plan) -> Vec<Holdings> {
        let users = plan.users();
        let welcome: Vec<Vec<String>> = vec![
            users.iter().take(2).cloned().collect(),
            users.iter().skip(2).cloned().collect(),
            vec![],
        ];
        (0..3)
            .map(|i| Holdings {
                users: users.clone(),
                profiles: users.clone(),
                welcome_emails: welcome[i].clone(),
                confirmations: plan.users_in(i).into_iter().collect(),
                state: StackState::default(),
            })
            .collect()
    }

    #[test]
    fn the_plan_sends_every_user_before_the_outage_ends_some_in_two_regions() {
        let plan = plan();
        assert_eq!(plan.users().len(), 6);
        assert_eq!(plan.in_two_regions(), 2);
        assert!(plan.signups.iter().all(|s| s.at < Duration::from_secs(30)));
        let regions: Vec<_> = plan.signups.iter().map(|s| s.region).collect();
        assert_eq!(regions, [0, 1, 2, 0, 0, 1, 2, 0]);
        assert_eq!(plan.users_in(0).len(), 4);
        let body: serde_json::Value = serde_json::from_str(&plan.signups[0].body()).unwrap();
        assert_eq!(body["user_id"], "d-0000");
        assert_eq!(body["email"], "d-0000@example.com");
    }

    #[test]
    fn a_complete_outcome_holds_every_claim() {
        let plan = plan();
        let claims = check(&plan, &holdings(&plan));
        assert_eq!(claims.len(), 12);
        assert!(claims.iter().all(|c| c.failure.is_none()), "{claims:?}");
    }

    #[test]
    fn a_lost_user_a_duplicate_email_and_a_dead_letter_each_fail_their_claim() {
        let plan = plan();
        let mut held = holdings(&plan);
        held[1].users.remove("d-0003");
        held[2].welcome_emails.push("d-0000".to_owned());
        held[0]
            .state
            .dead_letters
            .insert("signups DLQ".to_owned(), ("q".to_owned(), 1));
        let failed: Vec<_> = check(&plan, &held)
            .into_iter()
            .filter_map(|c| c.failure.map(|f| (c.what, f)))
            .collect();
        assert_eq!(failed.len(), 3, "{failed:?}");
        assert!(failed[0].0.starts_with("b: all 6 users"), "{failed:?}");
        assert!(failed[1].1.contains("d-0000: 2"), "{failed:?}");
        assert_eq!(failed[2].1, "1 dead letters");
    }

    #[test]
    fn a_twin_confirmed_once_holds_an_unconfirmed_user_fails() {
        let plan = plan();
        let mut held = holdings(&plan);
        // d-0002 signed up in c and a; a's signup found the replicated user.
        held[0].confirmations.retain(|u| u != "d-0002");
        assert!(check(&plan, &held).iter().all(|c| c.failure.is_none()));
        held[2].confirmations.retain(|u| u != "d-0002");
        let failed: Vec<_> = check(&plan, &held)
            .into_iter()
            .filter_map(|c| c.failure)
            .collect();
        assert_eq!(failed, ["never confirmed: [\"d-0002\"]"]);
    }
}
