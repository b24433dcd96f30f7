//! [`AwsAdapters`]: the SDK clients of one process, and each function's
//! [`Wiring`] built from them for `eventline_app::compose`. Each method is
//! behind the cargo features of the services its function uses, so a
//! function that does not use a service neither builds its client nor
//! links its SDK crate.

// A client or helper is used only by the wirings of functions whose
// services are all enabled: with every feature on (the default) each is,
// and is checked; a partial set leaves some unused.
#![cfg_attr(
    not(all(
        feature = "dynamodb",
        feature = "sqs",
        feature = "eventbridge",
        feature = "s3",
        feature = "sesv2"
    )),
    allow(dead_code, unused_imports)
)]

use aws_config::SdkConfig;
use eventline_app::{compose::Wiring, ports::SystemClock, Settings};
use std::sync::Arc;

/// The SDK clients of one process, built once per cold start from one
/// [`SdkConfig`] and shared by every adapter made from them (a client is a
/// handle to one connection pool).
#[derive(Debug, Clone)]
pub struct AwsAdapters {
    #[cfg(feature = "dynamodb")]
    dynamodb: aws_sdk_dynamodb::Client,
    #[cfg(feature = "sqs")]
    sqs: aws_sdk_sqs::Client,
    #[cfg(feature = "eventbridge")]
    eventbridge: aws_sdk_eventbridge::Client,
    #[cfg(feature = "s3")]
    s3: aws_sdk_s3::Client,
    #[cfg(feature = "sesv2")]
    ses: aws_sdk_sesv2::Client,
}

/// The S3 outbox or SES v2, as `MAIL_TRANSPORT` says.
#[cfg(all(feature = "s3", feature = "sesv2"))]
pub type AwsMail = eventline_app::mail::EitherMailer<
    eventline_app::mail::OutboxMailer<crate::s3::S3BlobStore>,
    crate::ses::SesMailer,
>;
/// user-processor's ports on AWS.
#[cfg(all(feature = "dynamodb", feature = "sqs", feature = "eventbridge"))]
pub type UserProcessorPorts = eventline_app::user_processor::Ports<
    crate::dynamodb::DynamoUserStore,
    crate::sqs::SqsNotificationQueue,
    crate::eventbridge::EventBridgePublisher,
    SystemClock,
>;
/// notification-processor's ports on AWS.
#[cfg(all(feature = "dynamodb", feature = "s3", feature = "sesv2"))]
pub type NotificationProcessorPorts = eventline_app::notification_processor::Ports<
    crate::dynamodb::DynamoUserStore,
    AwsMail,
    crate::mail_ledger::DynamoMailLedger,
    SystemClock,
>;
/// welcome-email's ports on AWS.
#[cfg(all(feature = "dynamodb", feature = "s3", feature = "sesv2"))]
pub type WelcomeEmailPorts =
    eventline_app::welcome_email::Ports<AwsMail, crate::mail_ledger::DynamoMailLedger, SystemClock>;
/// profile-creator's ports on AWS.
#[cfg(all(feature = "dynamodb", feature = "s3"))]
pub type ProfileCreatorPorts = eventline_app::profile_creator::Ports<
    crate::dynamodb::DynamoProfileStore,
    crate::s3::S3BlobStore,
    SystemClock,
>;

impl AwsAdapters {
    /// Clients for every enabled service from `sdk`.
    // Without any service there is nothing to build.
    #[cfg_attr(
        not(any(
            feature = "dynamodb",
            feature = "sqs",
            feature = "eventbridge",
            feature = "s3",
            feature = "sesv2"
        )),
        allow(unused_variables)
    )]
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            #[cfg(feature = "dynamodb")]
            dynamodb: crate::dynamodb::client(sdk),
            #[cfg(feature = "sqs")]
            sqs: crate::sqs::client(sdk),
            #[cfg(feature = "eventbridge")]
            eventbridge: crate::eventbridge::client(sdk),
            #[cfg(feature = "s3")]
            s3: crate::s3::client(sdk),
            #[cfg(feature = "sesv2")]
            ses: crate::ses::client(sdk),
        }
    }

    /// user-processor: DynamoDB users, SQS notifications and dead letters,
    /// EventBridge events, the system clock (AWS time is wall-clock time).
    #[cfg(all(feature = "dynamodb", feature = "sqs", feature = "eventbridge"))]
    pub fn user_processor_wiring(
        &self,
        settings: &Settings<eventline_app::user_processor::Config>,
    ) -> Wiring<UserProcessorPorts> {
        let config = &settings.config;
        Wiring {
            ports: eventline_app::user_processor::Ports {
                users: self.users(&config.users_table),
                notifications: crate::sqs::SqsNotificationQueue::new(
                    self.sqs.clone(),
                    &config.notification_queue_url,
                ),
                events: crate::eventbridge::EventBridgePublisher::new(
                    self.eventbridge.clone(),
                    &config.event_bus_name,
                ),
                clock: SystemClock,
            },
            dead_letters: self.dead_letters(
                &config.dead_letter_queue_url,
                eventline_app::user_processor::FUNCTION,
            ),
        }
    }

    /// notification-processor: DynamoDB users and mail ledger, the mail
    /// transport, SQS dead letters.
    #[cfg(all(
        feature = "dynamodb",
        feature = "sqs",
        feature = "s3",
        feature = "sesv2"
    ))]
    pub fn notification_processor_wiring(
        &self,
        settings: &Settings<eventline_app::notification_processor::Config>,
    ) -> Wiring<NotificationProcessorPorts> {
        let config = &settings.config;
        Wiring {
            ports: eventline_app::notification_processor::Ports {
                users: self.users(&config.users_table),
                mailer: self.mailer(&config.mail),
                ledger: self.ledger(&settings.idempotency.table),
                clock: SystemClock,
            },
            dead_letters: self.dead_letters(
                &config.dead_letter_queue_url,
                eventline_app::notification_processor::FUNCTION,
            ),
        }
    }

    /// welcome-email: the mail transport, the DynamoDB mail ledger, its SQS
    /// failure queue.
    #[cfg(all(
        feature = "dynamodb",
        feature = "sqs",
        feature = "s3",
        feature = "sesv2"
    ))]
    pub fn welcome_email_wiring(
        &self,
        settings: &Settings<eventline_app::welcome_email::Config>,
    ) -> Wiring<WelcomeEmailPorts> {
        let config = &settings.config;
        Wiring {
            ports: eventline_app::welcome_email::Ports {
                mailer: self.mailer(&config.mail),
                ledger: self.ledger(&settings.idempotency.table),
                clock: SystemClock,
            },
            dead_letters: self.dead_letters(
                &config.dead_letter_queue_url,
                eventline_app::welcome_email::FUNCTION,
            ),
        }
    }

    /// profile-creator: DynamoDB profiles, S3 documents, its SQS failure
    /// queue.
    #[cfg(all(feature = "dynamodb", feature = "sqs", feature = "s3"))]
    pub fn profile_creator_wiring(
        &self,
        settings: &Settings<eventline_app::profile_creator::Config>,
    ) -> Wiring<ProfileCreatorPorts> {
        let config = &settings.config;
        Wiring {
            ports: eventline_app::profile_creator::Ports {
                profiles: crate::dynamodb::DynamoProfileStore::new(
                    self.dynamodb.clone(),
                    &config.profiles_table,
                ),
                documents: crate::s3::S3BlobStore::new(self.s3.clone(), &config.bucket),
                clock: SystemClock,
            },
            dead_letters: self.dead_letters(
                &config.dead_letter_queue_url,
                eventline_app::profile_creator::FUNCTION,
            ),
        }
    }

    /// The users in `table`.
    #[cfg(feature = "dynamodb")]
    fn users(&self, table: &str) -> crate::dynamodb::DynamoUserStore {
        crate::dynamodb::DynamoUserStore::new(self.dynamodb.clone(), table)
    }

    /// Sent markers and mailbox quotas in `table` (the idempotency table).
    #[cfg(feature = "dynamodb")]
    fn ledger(&self, table: &str) -> crate::mail_ledger::DynamoMailLedger {
        crate::mail_ledger::DynamoMailLedger::new(self.dynamodb.clone(), table)
    }

    /// Where records of `function` that can never succeed go: the queue at
    /// `queue_url`.
    #[cfg(feature = "sqs")]
    fn dead_letters(
        &self,
        queue_url: &str,
        function: &str,
    ) -> Arc<dyn eventline_powertools::batch::DeadLetterSink> {
        Arc::new(crate::dead_letter::SqsDeadLetters::new(
            self.sqs.clone(),
            queue_url,
            function,
        ))
    }

    /// The transport `config` names.
    #[cfg(all(feature = "s3", feature = "sesv2"))]
    fn mailer(&self, config: &eventline_app::mail::MailConfig) -> AwsMail {
        config.mailer(
            |bucket| crate::s3::S3BlobStore::new(self.s3.clone(), bucket),
            || crate::ses::SesMailer::new(self.ses.clone(), config.from.clone()),
        )
    }
}
