//! [`AwsAdapters`]: the AWS side of `eventline_app::compose`, each factory
//! behind the cargo feature of its service, so a function that does not
//! use a service neither builds its client nor links its SDK crate.

use aws_config::SdkConfig;
use eventline_app::compose;
use eventline_app::ports::SystemClock;
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
    /// Where the idempotency guards count replays and lost completions.
    #[cfg(feature = "dynamodb")]
    metrics: Arc<eventline_powertools::metrics::Metrics>,
}

impl AwsAdapters {
    /// Clients for every enabled service from `sdk`; the guards count their
    /// events in `metrics`.
    // Without DynamoDB there is no guard to count for (and without any
    // service, nothing to build).
    #[cfg_attr(not(feature = "dynamodb"), allow(unused_variables))]
    pub fn new(sdk: &SdkConfig, metrics: Arc<eventline_powertools::metrics::Metrics>) -> Self {
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
            #[cfg(feature = "dynamodb")]
            metrics,
        }
    }
}

#[cfg(feature = "dynamodb")]
impl compose::UserStores for AwsAdapters {
    type Users = crate::dynamodb::DynamoUserStore;
    fn user_store(&self, table: &str) -> Self::Users {
        crate::dynamodb::DynamoUserStore::new(self.dynamodb.clone(), table)
    }
}

#[cfg(feature = "dynamodb")]
impl compose::ProfileStores for AwsAdapters {
    type Profiles = crate::dynamodb::DynamoProfileStore;
    fn profile_store(&self, table: &str) -> Self::Profiles {
        crate::dynamodb::DynamoProfileStore::new(self.dynamodb.clone(), table)
    }
}

#[cfg(feature = "dynamodb")]
impl compose::MailLedgers for AwsAdapters {
    type Ledger = crate::mail_ledger::DynamoMailLedger;
    fn mail_ledger(&self, table: &str) -> Self::Ledger {
        crate::mail_ledger::DynamoMailLedger::new(self.dynamodb.clone(), table)
    }
}

#[cfg(feature = "dynamodb")]
impl compose::Guards for AwsAdapters {
    type Records = crate::idempotency::DynamoIdempotencyStore;
    fn guard(
        &self,
        config: &eventline_app::IdempotencyConfig,
        scope: &str,
    ) -> eventline_powertools::idempotency::Idempotency<Self::Records> {
        crate::idempotency::guard(self.dynamodb.clone(), config.clone(), scope, &self.metrics)
    }
}

#[cfg(feature = "sqs")]
impl compose::NotificationQueues for AwsAdapters {
    type Notifications = crate::sqs::SqsNotificationQueue;
    fn notification_queue(&self, queue_url: &str) -> Self::Notifications {
        crate::sqs::SqsNotificationQueue::new(self.sqs.clone(), queue_url)
    }
}

#[cfg(feature = "sqs")]
impl compose::DeadLetters for AwsAdapters {
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
}

#[cfg(feature = "eventbridge")]
impl compose::EventPublishers for AwsAdapters {
    type Events = crate::eventbridge::EventBridgePublisher;
    fn event_publisher(&self, bus_name: &str) -> Self::Events {
        crate::eventbridge::EventBridgePublisher::new(self.eventbridge.clone(), bus_name)
    }
}

#[cfg(feature = "s3")]
impl compose::BlobStores for AwsAdapters {
    type Blobs = crate::s3::S3BlobStore;
    fn blob_store(&self, bucket: &str) -> Self::Blobs {
        crate::s3::S3BlobStore::new(self.s3.clone(), bucket)
    }
}

/// The S3 outbox or SES v2, as `MAIL_TRANSPORT` says.
#[cfg(all(feature = "s3", feature = "sesv2"))]
impl compose::Mailers for AwsAdapters {
    type Mailer = eventline_app::mail::EitherMailer<
        eventline_app::mail::OutboxMailer<crate::s3::S3BlobStore>,
        crate::ses::SesMailer,
    >;
    fn mailer(&self, config: &eventline_app::mail::MailConfig) -> Self::Mailer {
        use eventline_app::mail::{EitherMailer, MailTransport, OutboxMailer};
        match &config.transport {
            MailTransport::Outbox { bucket } => EitherMailer::Left(OutboxMailer::new(
                crate::s3::S3BlobStore::new(self.s3.clone(), bucket),
                config.from.clone(),
            )),
            MailTransport::Ses => EitherMailer::Right(crate::ses::SesMailer::new(
                self.ses.clone(),
                config.from.clone(),
            )),
        }
    }
}

/// The system clock: AWS time is wall-clock time.
impl compose::Clocks for AwsAdapters {
    type Clock = SystemClock;
    fn clock(&self) -> SystemClock {
        SystemClock
    }
}
