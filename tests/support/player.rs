//! The four functions in-process, as the devstack runner's "Lambda": each
//! use case composed as its function's `main` composes it (from the
//! function's deployed environment, through `eventline_app::compose`),
//! invoked through the same entrypoints. [`Functions::over_aws`] wires them
//! to the AWS adapters (the multi-region tests, once per region); chaos
//! wraps each wiring's ports in its counters first and hands the composed
//! use cases to [`Functions::new`].

use crate::{invoke, settings};
use eventline_app::notification_processor::NotificationProcessor;
use eventline_app::ports::{
    BlobStore, Clock, EventPublisher, MailLedger, Mailer, NotificationQueue, ProfileStore,
    UserStore,
};
use eventline_app::profile_creator::ProfileCreator;
use eventline_app::user_processor::UserProcessor;
use eventline_app::welcome_email::WelcomeEmail;
use eventline_app::{
    compose, notification_processor, profile_creator, user_processor, welcome_email, Settings,
};
use eventline_aws::AwsAdapters;
use eventline_devstack::invoke::{Invocation, Invoke, InvokeError};
use eventline_devstack::manifest::Manifest;
use eventline_powertools::env::Env;
use eventline_powertools::{eventbridge, sqs};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Sees each invocation's function and payload before it runs.
pub type Observer = Arc<dyn Fn(&str, &Value) + Send + Sync>;

/// One function in-process: payload and deadline to the runtime's answer.
type Function = Box<
    dyn Fn(Value, u64) -> Pin<Box<dyn Future<Output = Result<Invocation, InvokeError>> + Send>>
        + Send
        + Sync,
>;

/// The four use cases of one stack, composed.
pub struct Functions {
    users: Function,
    notifications: Function,
    welcome: Function,
    profiles: Function,
    observer: Option<Observer>,
}

/// Each function's settings from `manifest`'s stack: its deployed
/// environment with the `AWS_REGION` Lambda adds to it.
pub struct StackSettings<'a>(pub &'a Manifest);

impl StackSettings<'_> {
    /// `function`'s settings, read with `read` as its `main` reads them.
    pub fn of<C>(&self, function: &str, read: fn(&mut Env) -> C) -> Settings<C> {
        let mut environment = self
            .0
            .function(function)
            .unwrap_or_else(|| panic!("{function} not in the manifest"))
            .environment
            .clone();
        environment.insert("AWS_REGION".to_owned(), self.0.region.clone());
        settings(environment, read)
    }
}

/// The four functions' settings in `manifest`'s stack.
pub struct AllSettings {
    /// user-processor's.
    pub up: Settings<user_processor::Config>,
    /// notification-processor's.
    pub np: Settings<notification_processor::Config>,
    /// welcome-email's.
    pub we: Settings<welcome_email::Config>,
    /// profile-creator's.
    pub pc: Settings<profile_creator::Config>,
}

impl AllSettings {
    /// Each function's settings from `manifest` ([`StackSettings`]).
    pub fn of(manifest: &Manifest) -> Self {
        let stack = StackSettings(manifest);
        Self {
            up: stack.of(user_processor::FUNCTION, user_processor::Config::from_env),
            np: stack.of(
                notification_processor::FUNCTION,
                notification_processor::Config::from_env,
            ),
            we: stack.of(welcome_email::FUNCTION, welcome_email::Config::from_env),
            pc: stack.of(profile_creator::FUNCTION, profile_creator::Config::from_env),
        }
    }
}

impl Functions {
    /// The functions of `manifest`'s stack over `adapters`, as the mains
    /// wire them.
    pub fn over_aws(adapters: &AwsAdapters, manifest: &Manifest) -> Self {
        let AllSettings { up, np, we, pc } = AllSettings::of(manifest);
        Self::new(
            compose::user_processor(adapters.user_processor_wiring(&up), &up),
            compose::notification_processor(adapters.notification_processor_wiring(&np), &np),
            compose::welcome_email(adapters.welcome_email_wiring(&we), &we),
            compose::profile_creator(adapters.profile_creator_wiring(&pc), &pc),
        )
    }

    /// The four composed use cases, each behind its entrypoint.
    #[allow(clippy::type_complexity)]
    pub fn new<U1, Q, P1, C1, U2, M2, L2, C2, M3, L3, C3, P4, B4, C4>(
        users: UserProcessor<U1, Q, P1, C1>,
        notifications: NotificationProcessor<U2, M2, L2, C2>,
        welcome: WelcomeEmail<M3, L3, C3>,
        profiles: ProfileCreator<P4, B4, C4>,
    ) -> Self
    where
        U1: UserStore + 'static,
        Q: NotificationQueue + 'static,
        P1: EventPublisher + 'static,
        C1: Clock + 'static,
        U2: UserStore + 'static,
        M2: Mailer + 'static,
        L2: MailLedger + 'static,
        C2: Clock + 'static,
        M3: Mailer + 'static,
        L3: MailLedger + 'static,
        C3: Clock + 'static,
        P4: ProfileStore + 'static,
        B4: BlobStore + 'static,
        C4: Clock + 'static,
    {
        let users = Arc::new(users);
        let notifications = Arc::new(notifications);
        let welcome = Arc::new(welcome);
        let profiles = Arc::new(profiles);
        Self {
            users: Box::new(move |payload, deadline_ms| {
                let users = Arc::clone(&users);
                Box::pin(async move {
                    let event = sqs_event("user-processor", payload)?;
                    let service = sqs::service(|m, deadline_ms| users.handle(m, deadline_ms));
                    Ok(answer(invoke(service, event, deadline_ms).await))
                })
            }),
            notifications: Box::new(move |payload, deadline_ms| {
                let notifications = Arc::clone(&notifications);
                Box::pin(async move {
                    let event = sqs_event("notification-processor", payload)?;
                    let service =
                        sqs::service(|m, deadline_ms| notifications.handle(m, deadline_ms));
                    Ok(answer(invoke(service, event, deadline_ms).await))
                })
            }),
            welcome: Box::new(move |payload, deadline_ms| {
                let welcome = Arc::clone(&welcome);
                Box::pin(async move {
                    let service =
                        eventbridge::service(|p, deadline_ms| welcome.handle(p, deadline_ms));
                    Ok(answer(invoke(service, payload, deadline_ms).await))
                })
            }),
            profiles: Box::new(move |payload, deadline_ms| {
                let profiles = Arc::clone(&profiles);
                Box::pin(async move {
                    let service =
                        eventbridge::service(|p, deadline_ms| profiles.handle(p, deadline_ms));
                    Ok(answer(invoke(service, payload, deadline_ms).await))
                })
            }),
            observer: None,
        }
    }

    /// Calls `observer` with each invocation's function and payload.
    pub fn observed_by(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }
}

/// `payload` as the SQS event `function` takes.
fn sqs_event(function: &str, payload: Value) -> Result<sqs::SqsEvent, InvokeError> {
    serde_json::from_value(payload).map_err(|e| InvokeError {
        function: function.to_owned(),
        reason: format!("not an SQS event: {e}"),
    })
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
#[derive(Clone)]
pub struct Lambda(pub Arc<Functions>);

impl Invoke for Lambda {
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
        // Through the entrypoints the functions' mains run.
        let run = match function {
            "user-processor" => &this.users,
            "notification-processor" => &this.notifications,
            "welcome-email" => &this.welcome,
            "profile-creator" => &this.profiles,
            other => {
                return Err(InvokeError {
                    function: other.to_owned(),
                    reason: "no such function".to_owned(),
                })
            }
        };
        run(payload, deadline_ms).await
    }
}
