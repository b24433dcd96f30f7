//! Email rendering: plain text plus HTML for every message the pipeline sends.
//!
//! Every user-supplied value is HTML-escaped in the HTML part, and header
//! values (subject) never contain user input, so no input can inject markup
//! or headers.

use crate::{DisplayName, EmailAddress, Notification, NotificationKind, User, UserCreated};
use serde::Serialize;
use std::fmt::Write;

/// A rendered email, ready for a mail transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutgoingEmail {
    /// Deterministic id (`welcome.<user_id>`, or the notification id): a
    /// transport uses it to drop duplicates.
    pub message_id: String,
    /// Recipient.
    pub to: EmailAddress,
    /// Subject line (fixed text per template).
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// Escapes text for an HTML element body or a quoted attribute value.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    push_escaped(&mut out, text);
    out
}

fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Wraps `paragraphs` in a minimal HTML document, greeting `name` (escaped).
fn html_document(subject: &str, name: &DisplayName, paragraphs: &[&str]) -> String {
    let mut html = String::with_capacity(256 + name.as_str().len());
    html.push_str("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>");
    push_escaped(&mut html, subject);
    html.push_str("</title></head><body><p>Hello ");
    push_escaped(&mut html, name.as_str());
    html.push_str(",</p>");
    for p in paragraphs {
        html.push_str("<p>");
        push_escaped(&mut html, p);
        html.push_str("</p>");
    }
    html.push_str("</body></html>");
    html
}

fn text_document(name: &DisplayName, paragraphs: &[&str]) -> String {
    let mut text = format!("Hello {name},\n", name = name.as_str());
    for p in paragraphs {
        // Writing to a String cannot fail.
        let _ = write!(text, "\n{p}\n");
    }
    text
}

fn render(
    message_id: String,
    to: &EmailAddress,
    name: &DisplayName,
    subject: &str,
    paragraphs: &[&str],
) -> OutgoingEmail {
    OutgoingEmail {
        message_id,
        to: to.clone(),
        subject: subject.to_owned(),
        text: text_document(name, paragraphs),
        html: html_document(subject, name, paragraphs),
    }
}

/// The welcome email for a new user.
pub fn welcome(event: &UserCreated) -> OutgoingEmail {
    render(
        format!("welcome.{}", event.user_id),
        &event.email,
        &event.name,
        "Welcome to eventline",
        &[
            "Welcome aboard! Your account is ready.",
            "Reply to this email if you have any questions.",
        ],
    )
}

/// The email for a queued notification, addressed to `user`.
pub fn notification(notification: &Notification, user: &User) -> OutgoingEmail {
    let (subject, paragraphs): (&str, &[&str]) = match notification.kind {
        NotificationKind::SignupConfirmation => (
            "Your eventline account was created",
            &[
                "We have created your eventline account.",
                "If this was not you, reply to this email and we will close it.",
            ],
        ),
    };
    render(
        notification.notification_id.clone(),
        &user.email,
        &user.name,
        subject,
        paragraphs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Signup, Timestamp, UserId};

    fn user(name: &str) -> User {
        let body = serde_json::json!({"user_id":"u1","email":"a@b.io","name":name}).to_string();
        User::from_signup(
            Signup::parse(&body).unwrap(),
            Timestamp::from_unix_millis(0),
        )
    }

    #[test]
    fn escapes_every_special_character() {
        assert_eq!(
            escape_html(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn welcome_email_escapes_the_name_in_html_only() {
        let name = r#"<script>alert("x")</script> & Zoë"#;
        let email = welcome(&UserCreated::from_user(&user(name)));
        assert_eq!(email.message_id, "welcome.u1");
        assert_eq!(email.to.as_str(), "a@b.io");
        assert_eq!(email.subject, "Welcome to eventline");
        assert!(email.text.starts_with(&format!("Hello {name},\n")));
        assert!(email
            .html
            .contains("<p>Hello &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Zoë,</p>"));
        assert!(!email.html.contains("<script>"));
    }

    #[test]
    fn notification_email_uses_the_notification_id() {
        let n = Notification::new(
            UserId::parse("u1").unwrap(),
            NotificationKind::SignupConfirmation,
        );
        let email = notification(&n, &user("山田太郎"));
        assert_eq!(email.message_id, "signup_confirmation.u1");
        assert_eq!(email.subject, "Your eventline account was created");
        assert!(email.text.contains("Hello 山田太郎,"));
        assert!(email.html.contains("<p>Hello 山田太郎,</p>"));
    }
}
