//! SES v2 (REST-JSON): `SendEmail` (`POST /v2/email/outbound-emails`).
//! Nothing is sent or kept; the request must name a destination and
//! content as SES requires, and the answer is a `MessageId`. A sent email
//! is billed once per recipient (To, Cc and Bcc; one for a raw message
//! without a destination), as SES bills.

use crate::random::Ids;
use crate::reply::{rest_json, ApiError, Reply};
use crate::units::Units;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendEmail {
    destination: Option<Value>,
    content: Option<EmailContent>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EmailContent {
    simple: Option<Value>,
    raw: Option<Value>,
    template: Option<Value>,
}

pub(crate) const SEND_EMAIL_PATH: &str = "/v2/email/outbound-emails";

fn bad_request(message: &str) -> ApiError {
    ApiError::new(400, "BadRequestException", message)
}

/// Recipients of a destination: its To, Cc and Bcc addresses.
fn recipients(destination: &Value) -> usize {
    ["ToAddresses", "CcAddresses", "BccAddresses"]
        .iter()
        .filter_map(|k| destination.get(*k)?.as_array().map(Vec::len))
        .sum()
}

pub(crate) fn send_email(ids: &Ids, body: &[u8]) -> Reply {
    let mut emails = 0;
    let result = serde_json::from_slice::<SendEmail>(body)
        .map_err(|e| bad_request(&e.to_string()))
        .and_then(|request| {
            let content = request
                .content
                .ok_or_else(|| bad_request("Content is required"))?;
            let kinds = [&content.simple, &content.raw, &content.template]
                .iter()
                .filter(|c| c.is_some())
                .count();
            if kinds != 1 {
                return Err(bad_request(
                    "Content must have exactly one of Simple, Raw or Template",
                ));
            }
            if request.destination.is_none() && content.raw.is_none() {
                return Err(bad_request("Destination is required"));
            }
            emails = request.destination.as_ref().map_or(1, recipients).max(1);
            Ok(json!({ "MessageId": format!("{}-000000", ids.uuid()) }))
        });
    let mut reply = rest_json(result);
    reply.units = Units {
        ses_emails: emails as f64,
        ..Units::default()
    };
    reply
}
