//! Mail transports that need no mail service: the outbox, and the choice
//! between transports made by configuration.
//!
//! The default transport writes each email as a JSON object to the bucket
//! under `outbox/<message_id>.json`, create-if-absent: keyed by the
//! deterministic message id, a duplicate send finds the object and writes
//! nothing (no second object event for a relay), so duplicates are
//! idempotent by construction. Something downstream (a relay, a person in a
//! demo) reads the outbox. `MAIL_TRANSPORT=ses` selects SES v2 (adapter in
//! `eventline-aws`).
//!
//! And what both mail-sending functions share: an email is sent at most
//! once *ever* under its sent marker (`mail-sent#<message_id>`), which is
//! the message's own lock while it is sent and then the durable fact that
//! it was ([`settle_marker`], [`send_held`]); each mailbox gets at most
//! `MAIL_DAILY_CAP_PER_RECIPIENT` distinct messages a UTC day.

use crate::ports::{Admission, BlobStore, MailLedger, MailMarker, Mailer, PortError, Put, Sent};
use crate::Error;
use eventline_domain::{EmailAddress, OutgoingEmail};
use eventline_powertools::env::Env;
use eventline_powertools::idempotency::IdempotencyError;
use eventline_powertools::item_lock::{classify, Claim, Finish, Found, ItemLock, Locked};
use serde::Serialize;

/// Which transport delivers email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailTransport {
    /// JSON objects in the bucket under `outbox/`.
    Outbox {
        /// Bucket name (`BUCKET_NAME`).
        bucket: String,
    },
    /// Amazon SES v2 `SendEmail`.
    Ses,
}

/// Mail settings: `MAIL_TRANSPORT` (`outbox`, the default, or `ses`),
/// `MAIL_FROM` (sender address), `BUCKET_NAME` (for the outbox) and
/// `MAIL_DAILY_CAP_PER_RECIPIENT` (distinct emails one address may get per
/// UTC day, default [`DEFAULT_DAILY_CAP`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    /// The transport.
    pub transport: MailTransport,
    /// The sender.
    pub from: EmailAddress,
    /// Distinct emails per recipient per UTC day.
    pub daily_cap: u32,
}

/// Default of `MAIL_DAILY_CAP_PER_RECIPIENT`: a signup causes two emails
/// (confirmation, welcome); five leaves room for a legitimate re-signup.
pub const DEFAULT_DAILY_CAP: u32 = 5;

impl MailConfig {
    /// Reads the settings, recording problems in `env`. Like
    /// [`Env::required`], it answers a placeholder for a missing or invalid
    /// value: [`Env::finish`] then refuses, so it is never used.
    pub fn from_env(env: &mut Env) -> Self {
        let transport = match env.optional("MAIL_TRANSPORT").as_deref() {
            None | Some("outbox") => MailTransport::Outbox {
                bucket: env.required("BUCKET_NAME"),
            },
            Some("ses") => MailTransport::Ses,
            Some(_) => {
                env.reject("MAIL_TRANSPORT", "must be 'outbox' or 'ses'");
                MailTransport::Ses
            }
        };
        let from = EmailAddress::parse(&env.required("MAIL_FROM")).unwrap_or_else(|_| {
            if env.optional("MAIL_FROM").is_some() {
                env.reject("MAIL_FROM", "not a valid address");
            }
            EmailAddress::from_stored("")
        });
        let daily_cap = env.parsed_or("MAIL_DAILY_CAP_PER_RECIPIENT", DEFAULT_DAILY_CAP);
        if daily_cap == 0 {
            env.reject("MAIL_DAILY_CAP_PER_RECIPIENT", "must be at least 1");
        }
        Self {
            transport,
            from,
            daily_cap,
        }
    }
}

impl MailConfig {
    /// The transport these settings name: the outbox over the bucket
    /// `outbox` makes from its name, or the SES transport `ses` makes.
    pub fn mailer<B: BlobStore, S>(
        &self,
        outbox: impl FnOnce(&str) -> B,
        ses: impl FnOnce() -> S,
    ) -> EitherMailer<OutboxMailer<B>, S> {
        match &self.transport {
            MailTransport::Outbox { bucket } => {
                EitherMailer::Left(OutboxMailer::new(outbox(bucket), self.from.clone()))
            }
            MailTransport::Ses => EitherMailer::Right(ses()),
        }
    }
}

/// The outbox transport over any [`BlobStore`].
#[derive(Debug, Clone)]
pub struct OutboxMailer<B> {
    blobs: B,
    from: EmailAddress,
}

/// What an outbox object holds.
#[derive(Serialize)]
struct OutboxMessage<'a> {
    message_id: &'a str,
    from: &'a EmailAddress,
    to: &'a EmailAddress,
    subject: &'a str,
    text: &'a str,
    html: &'a str,
}

impl<B: BlobStore> OutboxMailer<B> {
    /// Writes mail from `from` into `blobs`.
    pub fn new(blobs: B, from: EmailAddress) -> Self {
        Self { blobs, from }
    }

    /// Key of the outbox object for `message_id`.
    fn key(message_id: &str) -> String {
        format!("outbox/{message_id}.json")
    }
}

impl<B: BlobStore> Mailer for OutboxMailer<B> {
    async fn send(&self, email: &OutgoingEmail) -> Result<Sent, PortError> {
        let body = serde_json::to_string(&OutboxMessage {
            message_id: &email.message_id,
            from: &self.from,
            to: &email.to,
            subject: &email.subject,
            text: &email.text,
            html: &email.html,
        })
        .map_err(|e| PortError::new("outbox serialise", e))?;
        // An object already there is this message, sent before.
        let put = self
            .blobs
            .put_new(&Self::key(&email.message_id), body, "application/json")
            .await?;
        Ok(match put {
            Put::Created => Sent::Now,
            Put::Exists => Sent::Before,
        })
    }
}

/// What sending an email at most once did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Sent now.
    Sent,
    /// Sent before (its marker says so): nothing was sent.
    AlreadySent,
}

/// What an email's marker said once settled: this attempt holds the
/// message's lock, or the message was sent before.
#[derive(Debug)]
pub(crate) enum Marker {
    /// The marker carries this lock: send, then record it.
    Held(ItemLock),
    /// It was sent (by an attempt of any age): send nothing.
    AlreadySent,
}

/// The mail-sent marker's answer to an attempt: the same rules as every
/// item lock ([`classify`]), the fact being `sent`; a marker without a
/// payload hash (written before hashes lived on markers) is the same payload.
fn judge(stored: &Locked<MailMarker>, payload_hash: &str, ours: &ItemLock, now_ms: u64) -> Found {
    let same = stored
        .value
        .payload_hash
        .as_deref()
        .is_none_or(|h| h == payload_hash);
    classify(stored.lock.as_ref(), stored.value.sent, same, ours, now_ms)
}

/// Settles what [`MailLedger::lock`] answered (`claim`) for `message_id`:
/// held (also when the SDK resent our own write), already sent, in progress
/// elsewhere (an expected retry), another payload (a rejection), or a lapsed
/// attempt's marker, whose lock is then taken over (one more call).
pub(crate) async fn settle_marker<L: MailLedger>(
    ledger: &L,
    message_id: &str,
    payload_hash: &str,
    lock: ItemLock,
    claim: Result<Claim<MailMarker>, PortError>,
    now_ms: u64,
) -> Result<Marker, Error> {
    let stored = match claim? {
        Claim::Held => return Ok(Marker::Held(lock)),
        Claim::Found(stored) => stored,
    };
    let found = match judge(&stored, payload_hash, &lock, now_ms) {
        Found::Lapsed => match ledger.take_over(message_id, &lock, now_ms).await? {
            Claim::Held => {
                tracing::info!(
                    message_id,
                    "an earlier attempt's mail lock lapsed; taking it over"
                );
                return Ok(Marker::Held(lock));
            }
            // Taken meanwhile by someone else: whatever it is now, not lapsed.
            Claim::Found(now) => match judge(&now, payload_hash, &lock, now_ms) {
                Found::Lapsed => Found::InProgress,
                other => other,
            },
        },
        other => other,
    };
    match found {
        Found::Ours => Ok(Marker::Held(lock)),
        Found::Done => Ok(Marker::AlreadySent),
        Found::Conflict => Err(Error::Idempotency(IdempotencyError::PayloadMismatch {
            key: marker_key(message_id),
        })),
        Found::InProgress | Found::Lapsed => {
            Err(Error::Idempotency(IdempotencyError::InProgress {
                key: marker_key(message_id),
            }))
        }
    }
}

fn marker_key(message_id: &str) -> String {
    format!("mail-sent#{message_id}")
}

/// Sends `email` under its marker's `lock`, if `slot` (the quota, taken
/// beside the lock or after it) admits it, and records it sent. Nothing
/// sent (over quota, the slot or the send failed): the lock is released
/// (with the unsent marker) so a retry need not wait for it. Sent but not recorded (the record failed):
/// an error, and the lock stays until it lapses; the retry then sends again
/// with the same message id: at least once, never lost.
pub(crate) async fn send_held<M: Mailer, L: MailLedger>(
    mailer: &M,
    ledger: &L,
    email: &OutgoingEmail,
    lock: ItemLock,
    slot: Result<Admission, PortError>,
) -> Result<Delivery, Error> {
    let id = email.message_id.as_str();
    let sent = async {
        match slot? {
            Admission::OverQuota => Err(Error::OverQuota),
            Admission::Admitted => Ok(mailer.send(email).await.map(|_| ())?),
        }
    }
    .await;
    if let Err(e) = sent {
        release(ledger, id, &lock).await;
        return Err(e);
    }
    if let Finish::NotHeld(_) = ledger.record_sent(id, &lock).await? {
        // Another attempt took the lapsed lock over; it sends with the same
        // id and records it.
        tracing::warn!(
            message_id = id,
            "mail lock was taken over before the send was recorded"
        );
    }
    Ok(Delivery::Sent)
}

/// Gives a marker's lock up (after nothing was sent); a failure only
/// means the retry waits for the lock to lapse.
pub(crate) async fn release<L: MailLedger>(ledger: &L, message_id: &str, lock: &ItemLock) {
    if let Err(e) = ledger.release(message_id, lock).await {
        tracing::warn!(message_id, error = %e, "could not release a mail lock; it lapses at its deadline");
    }
}

/// One of two mailers, chosen at cold start from [`MailConfig`].
#[derive(Debug, Clone)]
pub enum EitherMailer<A, B> {
    /// The first kind (by convention the outbox).
    Left(A),
    /// The second kind (by convention SES).
    Right(B),
}

impl<A: Mailer, B: Mailer> Mailer for EitherMailer<A, B> {
    async fn send(&self, email: &OutgoingEmail) -> Result<Sent, PortError> {
        match self {
            Self::Left(m) => m.send(email).await,
            Self::Right(m) => m.send(email).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::memory::MemoryMailLedger;

    fn marker(hash: Option<&str>, sent: bool, lock: Option<ItemLock>) -> Claim<MailMarker> {
        Claim::Found(Locked {
            value: MailMarker {
                payload_hash: hash.map(str::to_owned),
                sent,
            },
            lock,
        })
    }

    #[tokio::test]
    async fn a_marker_carrying_our_own_lock_is_our_resent_write() {
        let ledger = MemoryMailLedger::default();
        let ours = ItemLock {
            attempt: "ours".into(),
            until_ms: 100,
        };
        let claim = marker(Some("h"), false, Some(ours.clone()));
        let settled = settle_marker(&ledger, "m", "h", ours.clone(), Ok(claim), 50).await;
        assert!(matches!(settled, Ok(Marker::Held(l)) if l == ours));
        // Another payload is a conflict, whoever holds it.
        let claim = marker(Some("other"), false, Some(ours.clone()));
        let settled = settle_marker(&ledger, "m", "h", ours, Ok(claim), 50).await;
        assert_eq!(settled.unwrap_err().kind(), "PayloadConflict");
    }

    #[test]
    fn outbox_is_the_default_and_needs_a_bucket() {
        let mut env = Env::from_map([("MAIL_FROM", "no-reply@example.com")]);
        let config = MailConfig::from_env(&mut env);
        assert_eq!(
            env.finish().unwrap_err().to_string(),
            "missing environment variables: BUCKET_NAME"
        );
        assert!(matches!(config.transport, MailTransport::Outbox { .. }));
    }

    #[test]
    fn rejects_unknown_transports_and_bad_senders() {
        let mut env = Env::from_map([("MAIL_TRANSPORT", "pigeon"), ("MAIL_FROM", "nobody")]);
        MailConfig::from_env(&mut env);
        assert_eq!(
            env.finish().unwrap_err().to_string(),
            "invalid environment variables: MAIL_TRANSPORT: must be 'outbox' or 'ses'; \
             MAIL_FROM: not a valid address"
        );
    }

    #[test]
    fn ses_needs_no_bucket() {
        let mut env = Env::from_map([("MAIL_TRANSPORT", "ses"), ("MAIL_FROM", "a@b.io")]);
        let config = MailConfig::from_env(&mut env);
        assert_eq!(config.transport, MailTransport::Ses);
        assert_eq!(env.finish(), Ok(()));
    }
}
