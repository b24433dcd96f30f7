//! [`MemoryAdapters`]: one in-memory adapter of each kind, shared, and
//! each function's wiring over them; [`SETTINGS`] for every function.

use super::{
    FixedClock, MemoryBlobStore, MemoryDeadLetters, MemoryEventBus, MemoryMailLedger, MemoryMailer,
    MemoryProfileStore, MemoryQueue, MemoryUserStore,
};
use crate::compose::Wiring;
use crate::mail::{EitherMailer, MailConfig, OutboxMailer};
use crate::{notification_processor, profile_creator, user_processor, welcome_email, Settings};
use std::sync::Arc;

/// Every function's settings for [`MemoryAdapters`], as
/// `eventline_powertools::env::Env::from_map(SETTINGS)`: the names are
/// placeholders (the adapters share one store of each kind), the rest is
/// the template's defaults (outbox mail, a 10 s function timeout).
pub const SETTINGS: [(&str, &str); 13] = [
    ("USERS_TABLE", "users"),
    ("PROFILES_TABLE", "profiles"),
    ("NOTIFICATION_QUEUE_URL", "notifications"),
    ("EVENT_BUS_NAME", "bus"),
    ("BUCKET_NAME", "bucket"),
    ("MAIL_FROM", "no-reply@example.com"),
    ("IDEMPOTENCY_TABLE", "idempotency"),
    ("FUNCTION_TIMEOUT_SECONDS", "10"),
    ("SIGNUP_DLQ_URL", "dead-letters"),
    ("NOTIFICATION_DLQ_URL", "dead-letters"),
    ("WELCOME_EMAIL_DLQ_URL", "dead-letters"),
    ("PROFILE_CREATOR_DLQ_URL", "dead-letters"),
    ("MAIL_TRANSPORT", "outbox"),
];

/// One in-memory adapter of each kind, shared: every function's wiring
/// gets the same store whatever table, queue, bus or bucket its settings
/// name, as the deployed stack shares its resources between functions, and
/// tests inspect them here. Clones share the stores; a clone with a field
/// replaced (a later `clock`) shares the rest.
#[derive(Debug, Clone, Default)]
pub struct MemoryAdapters {
    /// The UsersTable.
    pub users: Arc<MemoryUserStore>,
    /// The ProfilesTable.
    pub profiles: Arc<MemoryProfileStore>,
    /// The NotificationQueue.
    pub notifications: Arc<MemoryQueue>,
    /// The event bus.
    pub events: Arc<MemoryEventBus>,
    /// The bucket: profile documents and the mail outbox.
    pub bucket: Arc<MemoryBlobStore>,
    /// The SES transport (`MAIL_TRANSPORT=ses`).
    pub ses: Arc<MemoryMailer>,
    /// Sent markers and quotas.
    pub ledger: Arc<MemoryMailLedger>,
    /// Every function's dead-letter queue.
    pub dead_letters: Arc<MemoryDeadLetters>,
    /// The time.
    pub clock: FixedClock,
}

/// The mail transport the settings name, over the shared bucket or SES.
pub type MemoryMail = EitherMailer<OutboxMailer<Arc<MemoryBlobStore>>, Arc<MemoryMailer>>;
/// user-processor's ports in memory.
pub type UserProcessorPorts =
    user_processor::Ports<Arc<MemoryUserStore>, Arc<MemoryQueue>, Arc<MemoryEventBus>, FixedClock>;
/// notification-processor's ports in memory.
pub type NotificationProcessorPorts = notification_processor::Ports<
    Arc<MemoryUserStore>,
    MemoryMail,
    Arc<MemoryMailLedger>,
    FixedClock,
>;
/// welcome-email's ports in memory.
pub type WelcomeEmailPorts = welcome_email::Ports<MemoryMail, Arc<MemoryMailLedger>, FixedClock>;
/// profile-creator's ports in memory.
pub type ProfileCreatorPorts =
    profile_creator::Ports<Arc<MemoryProfileStore>, Arc<MemoryBlobStore>, FixedClock>;

impl MemoryAdapters {
    /// user-processor's ports (see [`crate::compose`]).
    pub fn user_processor_wiring(
        &self,
        _settings: &Settings<user_processor::Config>,
    ) -> Wiring<UserProcessorPorts> {
        self.wiring(user_processor::Ports {
            users: self.users.clone(),
            notifications: self.notifications.clone(),
            events: self.events.clone(),
            clock: self.clock,
        })
    }

    /// notification-processor's ports.
    pub fn notification_processor_wiring(
        &self,
        settings: &Settings<notification_processor::Config>,
    ) -> Wiring<NotificationProcessorPorts> {
        self.wiring(notification_processor::Ports {
            users: self.users.clone(),
            mailer: self.mailer(&settings.config.mail),
            ledger: self.ledger.clone(),
            clock: self.clock,
        })
    }

    /// welcome-email's ports.
    pub fn welcome_email_wiring(
        &self,
        settings: &Settings<welcome_email::Config>,
    ) -> Wiring<WelcomeEmailPorts> {
        self.wiring(welcome_email::Ports {
            mailer: self.mailer(&settings.config.mail),
            ledger: self.ledger.clone(),
            clock: self.clock,
        })
    }

    /// profile-creator's ports.
    pub fn profile_creator_wiring(
        &self,
        _settings: &Settings<profile_creator::Config>,
    ) -> Wiring<ProfileCreatorPorts> {
        self.wiring(profile_creator::Ports {
            profiles: self.profiles.clone(),
            documents: self.bucket.clone(),
            clock: self.clock,
        })
    }

    fn wiring<P>(&self, ports: P) -> Wiring<P> {
        Wiring {
            ports,
            dead_letters: self.dead_letters.clone(),
        }
    }

    fn mailer(&self, config: &MailConfig) -> MemoryMail {
        config.mailer(|_bucket| self.bucket.clone(), || self.ses.clone())
    }
}
