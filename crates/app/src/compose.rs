//! One composition function per Lambda function: its use case wired to its
//! ports from the function's [`Settings`], whatever adapters provide them.
//!
//! The functions' `main`s call these with the AWS adapters
//! (`eventline_aws::AwsAdapters`); the tests and the benchmark call them with
//! [`MemoryAdapters`](crate::memory::MemoryAdapters) or with a wrapper
//! around either (the chaos tests count every side effect that way), so the
//! wiring exists once. Adapters are asked for each port through one small
//! factory trait per port kind: a set of adapters implements only the kinds
//! it has, which lets `eventline-aws` implement each behind the cargo
//! feature of its service, so a function links only the SDK clients it
//! uses.

use crate::mail::MailConfig;
use crate::notification_processor::NotificationProcessor;
use crate::ports::{
    BlobStore, Clock, EventPublisher, MailLedger, Mailer, NotificationQueue, ProfileStore,
    UserStore,
};
use crate::profile_creator::ProfileCreator;
use crate::user_processor::UserProcessor;
use crate::welcome_email::WelcomeEmail;
use crate::{
    notification_processor, profile_creator, user_processor, welcome_email, IdempotencyConfig,
    Settings,
};
use eventline_powertools::batch::{BatchProcessor, DeadLetterSink};
use eventline_powertools::idempotency::{Idempotency, IdempotencyStore};
use std::num::NonZeroUsize;
use std::sync::Arc;

/// Makes the UsersTable port.
pub trait UserStores {
    /// The port.
    type Users: UserStore;
    /// The users in `table`.
    fn user_store(&self, table: &str) -> Self::Users;
}

/// Makes the ProfilesTable port.
pub trait ProfileStores {
    /// The port.
    type Profiles: ProfileStore;
    /// The profiles in `table`.
    fn profile_store(&self, table: &str) -> Self::Profiles;
}

/// Makes the NotificationQueue port.
pub trait NotificationQueues {
    /// The port.
    type Notifications: NotificationQueue;
    /// The queue at `queue_url`.
    fn notification_queue(&self, queue_url: &str) -> Self::Notifications;
}

/// Makes the event bus port.
pub trait EventPublishers {
    /// The port.
    type Events: EventPublisher;
    /// Publishes to the bus named `bus_name`.
    fn event_publisher(&self, bus_name: &str) -> Self::Events;
}

/// Makes the bucket port.
pub trait BlobStores {
    /// The port.
    type Blobs: BlobStore;
    /// The objects of `bucket`.
    fn blob_store(&self, bucket: &str) -> Self::Blobs;
}

/// Makes the mail transport the settings choose.
pub trait Mailers {
    /// The port.
    type Mailer: Mailer;
    /// The transport `config` names, sending from its address.
    fn mailer(&self, config: &MailConfig) -> Self::Mailer;
}

/// Makes the mail ledger port.
pub trait MailLedgers {
    /// The port.
    type Ledger: MailLedger;
    /// Sent markers and quotas in `table` (the idempotency table).
    fn mail_ledger(&self, table: &str) -> Self::Ledger;
}

/// Makes idempotency guards (`eventline_powertools::idempotency`). No
/// function's composition asks for one any more: each keeps its lock on the
/// item its effect concerns.
pub trait Guards {
    /// Where the guard keeps its records.
    type Records: IdempotencyStore;
    /// The guard for keys of `scope`, with records in `config`'s table.
    fn guard(&self, config: &IdempotencyConfig, scope: &str) -> Idempotency<Self::Records>;
}

/// Makes dead-letter sinks.
pub trait DeadLetters {
    /// Where records of `function` that can never succeed go: the queue at
    /// `queue_url`.
    fn dead_letters(&self, queue_url: &str, function: &str) -> Arc<dyn DeadLetterSink>;
}

/// Makes the clock.
pub trait Clocks {
    /// The port.
    type Clock: Clock;
    /// The clock.
    fn clock(&self) -> Self::Clock;
}

/// What [`user_processor()`] builds from adapters `A`.
pub type UserProcessorOf<A> = UserProcessor<
    <A as UserStores>::Users,
    <A as NotificationQueues>::Notifications,
    <A as EventPublishers>::Events,
    <A as Clocks>::Clock,
>;

/// What [`notification_processor()`] builds from adapters `A`.
pub type NotificationProcessorOf<A> = NotificationProcessor<
    <A as UserStores>::Users,
    <A as Mailers>::Mailer,
    <A as MailLedgers>::Ledger,
    <A as Clocks>::Clock,
>;

/// What [`welcome_email()`] builds from adapters `A`.
pub type WelcomeEmailOf<A> =
    WelcomeEmail<<A as Mailers>::Mailer, <A as MailLedgers>::Ledger, <A as Clocks>::Clock>;

/// What [`profile_creator()`] builds from adapters `A`.
pub type ProfileCreatorOf<A> =
    ProfileCreator<<A as ProfileStores>::Profiles, <A as BlobStores>::Blobs, <A as Clocks>::Clock>;

/// user-processor: users (with their locks), notifications, events;
/// rejected signups to the signup DLQ.
pub fn user_processor<A>(
    adapters: &A,
    settings: &Settings<user_processor::Config>,
) -> UserProcessorOf<A>
where
    A: UserStores + NotificationQueues + EventPublishers + Clocks + DeadLetters,
{
    let (config, scope) = (&settings.config, user_processor::FUNCTION);
    UserProcessor::new(
        user_processor::Ports {
            users: adapters.user_store(&config.users_table),
            notifications: adapters.notification_queue(&config.notification_queue_url),
            events: adapters.event_publisher(&config.event_bus_name),
            clock: adapters.clock(),
        },
        batch(
            adapters,
            config.concurrency,
            &config.dead_letter_queue_url,
            scope,
        ),
        settings.idempotency.function_timeout,
    )
    .with_regions(config.regions.clone())
}

/// notification-processor: users read, mail sent once within the cap;
/// rejected notifications to the notification DLQ.
pub fn notification_processor<A>(
    adapters: &A,
    settings: &Settings<notification_processor::Config>,
) -> NotificationProcessorOf<A>
where
    A: UserStores + Mailers + MailLedgers + Clocks + DeadLetters,
{
    let (config, scope) = (&settings.config, notification_processor::FUNCTION);
    NotificationProcessor::new(
        notification_processor::Ports {
            users: adapters.user_store(&config.users_table),
            mailer: adapters.mailer(&config.mail),
            ledger: adapters.mail_ledger(&settings.idempotency.table),
            clock: adapters.clock(),
        },
        batch(
            adapters,
            config.concurrency,
            &config.dead_letter_queue_url,
            scope,
        ),
        config.mail.daily_cap,
        settings.idempotency.function_timeout,
    )
}

/// welcome-email: the welcome mail sent once within the cap; rejected
/// events to its failure queue.
pub fn welcome_email<A>(
    adapters: &A,
    settings: &Settings<welcome_email::Config>,
) -> WelcomeEmailOf<A>
where
    A: Mailers + MailLedgers + Clocks + DeadLetters,
{
    let (config, scope) = (&settings.config, welcome_email::FUNCTION);
    WelcomeEmail::new(
        welcome_email::Ports {
            mailer: adapters.mailer(&config.mail),
            ledger: adapters.mail_ledger(&settings.idempotency.table),
            clock: adapters.clock(),
            dead_letters: Some(adapters.dead_letters(&config.dead_letter_queue_url, scope)),
        },
        config.mail.daily_cap,
        settings.idempotency.function_timeout,
    )
}

/// profile-creator: the profile row and document; rejected events to its
/// failure queue.
pub fn profile_creator<A>(
    adapters: &A,
    settings: &Settings<profile_creator::Config>,
) -> ProfileCreatorOf<A>
where
    A: ProfileStores + BlobStores + Clocks + DeadLetters,
{
    let (config, scope) = (&settings.config, profile_creator::FUNCTION);
    ProfileCreator::new(
        profile_creator::Ports {
            profiles: adapters.profile_store(&config.profiles_table),
            documents: adapters.blob_store(&config.bucket),
            clock: adapters.clock(),
            dead_letters: Some(adapters.dead_letters(&config.dead_letter_queue_url, scope)),
        },
        settings.idempotency.function_timeout,
    )
}

/// The batch processor of an SQS function: `concurrency` records at once,
/// rejected records of `function` to the queue at `dead_letter_queue_url`.
fn batch(
    adapters: &impl DeadLetters,
    concurrency: NonZeroUsize,
    dead_letter_queue_url: &str,
    function: &str,
) -> BatchProcessor {
    BatchProcessor::new()
        .with_concurrency(concurrency)
        .with_dead_letters(adapters.dead_letters(dead_letter_queue_url, function))
}
