//! SES v2 (REST-JSON): `SendEmail` (`POST /v2/email/outbound-emails`).
//! Nothing is sent or kept; the request must name a destination and
//! content as SES requires, and the answer is a `MessageId`.

use crate::random::Ids;
use crate::reply::{rest_json, ApiError, Reply};
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

pub(crate) fn send_email(ids: &Ids, body: &[u8]) -> Reply {
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
            Ok(json!({ "MessageId": format!("{}-000000", ids.uuid()) }))
        });
    rest_json(result)
}
