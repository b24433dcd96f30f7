//! SES v2 adapter: sends email through Amazon SES (`MAIL_TRANSPORT=ses`).
//!
//! SES has no idempotency token: duplicates are prevented upstream by the
//! functions' idempotency layer keyed on the email's deterministic message id.
//! Error messages from SES can quote addresses, so only error codes are kept.

use crate::{sdk_error, Detail};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageTag};
use aws_sdk_sesv2::Client;
use eventline_app::ports::{Mailer, Sent};
use eventline_app::PortError;
use eventline_domain::{EmailAddress, OutgoingEmail};

/// Builds the SES v2 client.
pub fn client(config: &aws_config::SdkConfig) -> Client {
    Client::new(config)
}

/// Sends from one address.
#[derive(Debug, Clone)]
pub struct SesMailer {
    client: Client,
    from: EmailAddress,
}

fn utf8(text: &str) -> Result<Content, PortError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| PortError::new("SES build message", e))
}

impl SesMailer {
    /// Adapter sending as `from`.
    pub fn new(client: Client, from: EmailAddress) -> Self {
        Self { client, from }
    }
}

impl Mailer for SesMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<Sent, PortError> {
        let message = Message::builder()
            .subject(utf8(&email.subject)?)
            .body(
                Body::builder()
                    .text(utf8(&email.text)?)
                    .html(utf8(&email.html)?)
                    .build(),
            )
            .build();
        // Tag values allow [A-Za-z0-9_-]; message ids use '.' as separator.
        let tag = MessageTag::builder()
            .name("message_id")
            .value(email.message_id.replace('.', "_"))
            .build()
            .map_err(|e| PortError::new("SES build message", e))?;
        self.client
            .send_email()
            .from_email_address(self.from.as_str())
            .destination(
                Destination::builder()
                    .to_addresses(email.to.as_str())
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .email_tags(tag)
            .send()
            .await
            .map_err(|e| sdk_error("SES SendEmail", &e, Detail::CodeOnly))?;
        Ok(Sent::Now)
    }
}
