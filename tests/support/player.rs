//! The four functions in-process, as the devstack runner's "Lambda": each
//! use case composed as its function's `main` composes it (from the
//! function's deployed environment, over the adapters given), invoked
//! through the same entrypoints. Chaos composes them over counting,
//! faulted adapters; the multi-region tests once per region.

use crate::{invoke, settings};
use eventline_app::compose::{
    self, BlobStores, Clocks, DeadLetters, EventPublishers, Guards, MailLedgers, Mailers,
    NotificationQueues, ProfileStores, UserStores,
};
use eventline_app::{notification_processor, profile_creator, user_processor, welcome_email};
use eventline_devstack::invoke::{Invocation, Invoke, InvokeError};
use eventline_devstack::manifest::Manifest;
use eventline_powertools::{eventbridge, sqs};
use serde_json::Value;
use std::sync::Arc;

/// Every factory a function's composition asks of its adapters.
pub trait Adapters:
    NotificationQueues
    + EventPublishers
    + Clocks
    + Guards
    + DeadLetters
    + UserStores
    + Mailers
    + MailLedgers
    + ProfileStores
    + BlobStores
{
}

impl<A> Adapters for A where
    A: NotificationQueues
        + EventPublishers
        + Clocks
        + Guards
        + DeadLetters
        + UserStores
        + Mailers
        + MailLedgers
        + ProfileStores
        + BlobStores
{
}

/// Sees each invocation's function and payload before it runs.
pub type Observer = Arc<dyn Fn(&str, &Value) + Send + Sync>;

/// The four use cases of one stack, composed.
pub struct Functions<A: Adapters> {
    users: compose::UserProcessorOf<A>,
    notifications: compose::NotificationProcessorOf<A>,
    welcome: compose::WelcomeEmailOf<A>,
    profiles: compose::ProfileCreatorOf<A>,
    observer: Option<Observer>,
}

impl<A: Adapters> Functions<A> {
    /// The functions of `manifest`'s stack, composed from `adapters` and
    /// each function's deployed environment, with the `AWS_REGION` Lambda
    /// adds to it.
    pub fn compose(adapters: &A, manifest: &Manifest) -> Self {
        let environment = |function: &str| {
            let mut environment = manifest
                .function(function)
                .unwrap_or_else(|| panic!("{function} not in the manifest"))
                .environment
                .clone();
            environment.insert("AWS_REGION".to_owned(), manifest.region.clone());
            environment
        };
        Self {
            users: compose::user_processor(
                adapters,
                &settings(
                    environment("user-processor"),
                    user_processor::Config::from_env,
                ),
            ),
            notifications: compose::notification_processor(
                adapters,
                &settings(
                    environment("notification-processor"),
                    notification_processor::Config::from_env,
                ),
            ),
            welcome: compose::welcome_email(
                adapters,
                &settings(
                    environment("welcome-email"),
                    welcome_email::Config::from_env,
                ),
            ),
            profiles: compose::profile_creator(
                adapters,
                &settings(
                    environment("profile-creator"),
                    profile_creator::Config::from_env,
                ),
            ),
            observer: None,
        }
    }

    /// Calls `observer` with each invocation's function and payload.
    pub fn observed_by(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }
}

/// What the runtime would answer for a service's `result`.
fn answer<T: serde::Serialize, E: Into<lambda_runtime::Diagnostic>>(
    result: Result<T, E>,
) -> Invocation {
    match result.map_err(Into::into) {
        Ok(v) => Invocation::Response(serde_json::to_value(v).expect("a serializable response")),
        Err(e) => Invocation::FunctionError {
            error_type: e.error_type,
            message: e.error_message,
        },
    }
}

/// The in-process functions as an [`Invoke`] (cheap to clone, shared by runs).
pub struct Lambda<A: Adapters>(pub Arc<Functions<A>>);

impl<A: Adapters> Clone for Lambda<A> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<A> Invoke for Lambda<A>
where
    A: Adapters + 'static,
    Functions<A>: Send + Sync,
{
    async fn invoke(
        &self,
        function: &str,
        payload: Value,
        deadline_ms: u64,
    ) -> Result<Invocation, InvokeError> {
        let this = &self.0;
        if let Some(observe) = &this.observer {
            observe(function, &payload);
        }
        let event = || {
            serde_json::from_value::<sqs::SqsEvent>(payload.clone()).map_err(|e| InvokeError {
                function: function.to_owned(),
                reason: format!("not an SQS event: {e}"),
            })
        };
        // Through the entrypoints the functions' mains run.
        Ok(match function {
            "user-processor" => {
                let service = sqs::service(|m, deadline_ms| this.users.handle(m, deadline_ms));
                answer(invoke(service, event()?, deadline_ms).await)
            }
            "notification-processor" => {
                let service =
                    sqs::service(|m, deadline_ms| this.notifications.handle(m, deadline_ms));
                answer(invoke(service, event()?, deadline_ms).await)
            }
            "welcome-email" => {
                let service =
                    eventbridge::service(|p, deadline_ms| this.welcome.handle(p, deadline_ms));
                answer(invoke(service, payload, deadline_ms).await)
            }
            "profile-creator" => {
                let service =
                    eventbridge::service(|p, deadline_ms| this.profiles.handle(p, deadline_ms));
                answer(invoke(service, payload, deadline_ms).await)
            }
            other => {
                return Err(InvokeError {
                    function: other.to_owned(),
                    reason: "no such function".to_owned(),
                })
            }
        })
    }
}
