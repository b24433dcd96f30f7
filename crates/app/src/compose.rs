//! One composition function per Lambda function: its use case built from
//! the ports an adapter set gives it and the function's [`Settings`].
//!
//! An adapter set (`eventline_aws::AwsAdapters`,
//! `memory::MemoryAdapters` with feature `test-util`) has one method per
//! function, e.g. `user_processor_wiring(&settings)`, that builds that
//! function's [`Wiring`]: its use case's `Ports` and its dead-letter sink.
//! The functions here turn a wiring into the use case (batch processor,
//! daily cap, timeout), once for every adapter set:
//!
//! ```text
//! compose::user_processor(adapters.user_processor_wiring(&settings), &settings)
//! ```
//!
//! Why this shape: a port added to a function is one field of its `Ports`
//! and one line in each adapter set's method for it, with no factory trait
//! to forward; a test wrapper (the chaos tests' counting) wraps the ports
//! of a wiring, not a factory. `eventline-aws` gates each method on the
//! cargo features of the services that function uses, so a function links
//! only the SDK crates it calls.

use crate::notification_processor::NotificationProcessor;
use crate::ports::{
    BlobStore, Clock, EventPublisher, MailLedger, Mailer, NotificationQueue, ProfileStore,
    UserStore,
};
use crate::profile_creator::ProfileCreator;
use crate::user_processor::UserProcessor;
use crate::welcome_email::WelcomeEmail;
use crate::{notification_processor, profile_creator, user_processor, welcome_email, Settings};
use eventline_powertools::batch::{BatchProcessor, DeadLetterSink};
use std::num::NonZeroUsize;
use std::sync::Arc;

/// What one function needs from an adapter set: the ports its use case
/// drives, and where its records (or events) that can never succeed go.
pub struct Wiring<P> {
    /// The use case's ports (its module's `Ports`).
    pub ports: P,
    /// The function's dead-letter queue (or failure queue).
    pub dead_letters: Arc<dyn DeadLetterSink>,
}

/// user-processor: users (with their locks), notifications, events;
/// rejected signups to the signup DLQ.
pub fn user_processor<U, Q, P, C>(
    wiring: Wiring<user_processor::Ports<U, Q, P, C>>,
    settings: &Settings<user_processor::Config>,
) -> UserProcessor<U, Q, P, C>
where
    U: UserStore,
    Q: NotificationQueue,
    P: EventPublisher,
    C: Clock,
{
    let config = &settings.config;
    UserProcessor::new(
        wiring.ports,
        batch(config.concurrency, wiring.dead_letters),
        settings.idempotency.function_timeout,
    )
    .with_regions(config.regions.clone())
}

/// notification-processor: users read, mail sent once within the cap;
/// rejected notifications to the notification DLQ.
pub fn notification_processor<U, M, L, C>(
    wiring: Wiring<notification_processor::Ports<U, M, L, C>>,
    settings: &Settings<notification_processor::Config>,
) -> NotificationProcessor<U, M, L, C>
where
    U: UserStore,
    M: Mailer,
    L: MailLedger,
    C: Clock,
{
    let config = &settings.config;
    NotificationProcessor::new(
        wiring.ports,
        batch(config.concurrency, wiring.dead_letters),
        config.mail.daily_cap,
        settings.idempotency.function_timeout,
    )
}

/// welcome-email: the welcome mail sent once within the cap; rejected
/// events to its failure queue.
pub fn welcome_email<M, L, C>(
    wiring: Wiring<welcome_email::Ports<M, L, C>>,
    settings: &Settings<welcome_email::Config>,
) -> WelcomeEmail<M, L, C>
where
    M: Mailer,
    L: MailLedger,
    C: Clock,
{
    WelcomeEmail::new(
        wiring.ports,
        Some(wiring.dead_letters),
        settings.config.mail.daily_cap,
        settings.idempotency.function_timeout,
    )
}

/// profile-creator: the profile row and document; rejected events to its
/// failure queue.
pub fn profile_creator<P, B, C>(
    wiring: Wiring<profile_creator::Ports<P, B, C>>,
    settings: &Settings<profile_creator::Config>,
) -> ProfileCreator<P, B, C>
where
    P: ProfileStore,
    B: BlobStore,
    C: Clock,
{
    ProfileCreator::new(
        wiring.ports,
        Some(wiring.dead_letters),
        settings.idempotency.function_timeout,
    )
}

/// The batch processor of an SQS function: `concurrency` records at once,
/// rejected records to `dead_letters`.
fn batch(concurrency: NonZeroUsize, dead_letters: Arc<dyn DeadLetterSink>) -> BatchProcessor {
    BatchProcessor::new()
        .with_concurrency(concurrency)
        .with_dead_letters(dead_letters)
}
