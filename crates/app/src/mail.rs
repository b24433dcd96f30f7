//! Mail transports that need no mail service: the outbox, and the choice
//! between transports made by configuration.
//!
//! The default transport writes each email as a JSON object to the bucket
//! under `outbox/<message_id>.json`. Keyed by the deterministic message id, a
//! duplicate send overwrites the same object with the same content, so
//! duplicates are idempotent by construction. Something downstream (a relay,
//! a person in a demo) reads the outbox. `MAIL_TRANSPORT=ses` selects SES v2
//! (adapter in `eventline-aws`).

use crate::ports::{Admission, BlobStore, MailLedger, Mailer, PortError};
use crate::Error;
use eventline_domain::{EmailAddress, OutgoingEmail, Timestamp};
use eventline_powertools::env::Env;
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
    pub fn key(message_id: &str) -> String {
        format!("outbox/{message_id}.json")
    }
}

impl<B: BlobStore> Mailer for OutboxMailer<B> {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), PortError> {
        let body = serde_json::to_string(&OutboxMessage {
            message_id: &email.message_id,
            from: &self.from,
            to: &email.to,
            subject: &email.subject,
            text: &email.text,
            html: &email.html,
        })
        .map_err(|e| PortError::new("outbox serialise", e))?;
        self.blobs
            .put(&Self::key(&email.message_id), body, "application/json")
            .await
    }
}

/// What [`deliver_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Delivery {
    /// Sent now.
    Sent,
    /// Sent before (its durable marker exists): nothing was sent.
    AlreadySent,
}

/// Sends `email` at most once *ever* and within its recipient's daily cap:
/// the ledger's sent marker (under the deterministic message id) outlives
/// any idempotency window, so a duplicate of any age sends nothing; a
/// recipient over the cap is a rejection (dead-lettered, never retried).
/// If the marker cannot be written after a send, the error makes the cause
/// retry, and the retry may send again: at least once, never lost.
pub(crate) async fn deliver_once<M: Mailer, L: MailLedger>(
    mailer: &M,
    ledger: &L,
    email: &OutgoingEmail,
    now: Timestamp,
    daily_cap: u32,
) -> Result<Delivery, Error> {
    match ledger.admit(email, &now.utc_date(), daily_cap).await? {
        Admission::AlreadySent => Ok(Delivery::AlreadySent),
        Admission::OverQuota => Err(Error::OverQuota),
        Admission::Admitted => {
            mailer.send(email).await?;
            ledger.record_sent(&email.message_id).await?;
            Ok(Delivery::Sent)
        }
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
    async fn send(&self, email: &OutgoingEmail) -> Result<(), PortError> {
        match self {
            Self::Left(m) => m.send(email).await,
            Self::Right(m) => m.send(email).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
