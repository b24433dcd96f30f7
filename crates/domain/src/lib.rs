//! The eventline domain: what a signup is, what a user is, which events and
//! notifications the pipeline exchanges, and how emails and profiles look.
//!
//! This crate is pure. It does no I/O, knows nothing of AWS or of an async
//! runtime, and reads no clock: time comes in as a [`Timestamp`] argument.
//! Everything crossing a process boundary (SQS bodies, EventBridge details,
//! stored items) has its JSON schema documented in the module that parses it
//! ([`signup`]: SignupQueue bodies, [`notification`]: NotificationQueue
//! bodies, [`event`]: the `User Created` detail, [`profile`]: the stored
//! profile; the UsersTable item is mapped by eventline-aws's `dynamodb`
//! adapter) and is parsed there, once, into validated types ("parse, don't
//! validate").
#![warn(missing_docs)]

pub mod correlation;
pub mod email;
pub mod error;
pub mod event;
pub mod notification;
pub mod profile;
#[cfg(test)]
mod proptests;
pub mod region;
pub mod signup;
pub mod timestamp;
pub mod user;

pub use correlation::CorrelationId;
pub use email::{MailboxKey, OutgoingEmail};
pub use error::{FieldError, FieldErrors, ParseError};
pub use event::UserCreated;
pub use notification::{Notification, NotificationKind};
pub use profile::Profile;
pub use region::{Region, RegionError, RegionSet};
pub use signup::{DisplayName, EmailAddress, Signup, UserId};
pub use timestamp::Timestamp;
pub use user::{User, UserConflict};

/// Largest message body (bytes) the pipeline accepts, checked before any
/// parsing so an oversized record costs nothing but a length comparison.
/// A valid signup is well under 1 KiB; 16 KiB leaves room for growth.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
