//! Email rendering: plain text plus HTML for every message the pipeline sends.
//!
//! The only user-supplied value in a message is the display name, and it can
//! forge nothing:
//! - header values (subject) never contain user input, so no header injection;
//! - [`DisplayName`] refuses control characters, line breaks, bidi controls
//!   and invisible characters, so the name is one visible line;
//! - the name cannot carry a link: mail clients turn `https://…`, `www.…`,
//!   `evil.example` and `a@evil.example` into links in plain text (and many
//!   in HTML text too), so in both parts a space follows every `.`, `:` and
//!   `@` of the name that is not already followed by whitespace
//!   (`evil. example`, `https: //`). This is done at rendering, not by
//!   refusing names at signup, because real names contain dots (`J.R.R.
//!   Tolkien`, `St.John`), and it costs them at most a space;
//! - the HTML part escapes the name, so it cannot inject markup.
//!
//! It also says which mailbox an address reaches ([`EmailAddress::mailbox`]),
//! so the daily mail cap counts mailboxes, not the many addresses that
//! deliver to one (see [`EmailAddress::mailbox`] for the rules).

use crate::{DisplayName, EmailAddress, Notification, NotificationKind, User, UserCreated};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt::{self, Write};

impl EmailAddress {
    /// The mailbox this address delivers to, as the mail cap counts it:
    /// - the domain lower-cased (DNS names are case-insensitive);
    /// - the local part lower-cased: RFC 5321 lets a server tell `Ada` from
    ///   `ada`, but no provider in common use does, and for a cap merging
    ///   two mailboxes errs on the safe side;
    /// - a sub-address tag dropped: `ada+anything` is `ada`'s mailbox
    ///   (`+` is the separator of Gmail, Outlook, iCloud, Fastmail and
    ///   Proton; `-`, which a few use, is too common in real local parts);
    /// - at `gmail.com` / `googlemail.com`, which ignore dots in the local
    ///   part and are one domain, the dots dropped and the domain `gmail.com`.
    ///
    /// Delivery still goes to the address as given.
    pub fn mailbox(&self) -> String {
        let address = self.as_str();
        let Some((local, domain)) = address.rsplit_once('@') else {
            return address.to_lowercase();
        };
        let local = local.to_lowercase();
        let domain = domain.to_ascii_lowercase();
        // A local part that is all tag (`+x`) is its own mailbox.
        let base = match local.split_once('+') {
            Some((base, _)) if !base.is_empty() => base,
            _ => local.as_str(),
        };
        if domain == "gmail.com" || domain == "googlemail.com" {
            format!("{}@gmail.com", base.replace('.', ""))
        } else {
            format!("{base}@{domain}")
        }
    }

    /// The key of [`EmailAddress::mailbox`]: what the mail cap is counted
    /// under and what a notification carries, so neither holds an address.
    pub fn mailbox_key(&self) -> MailboxKey {
        MailboxKey(format!("{:x}", Sha256::digest(self.mailbox().as_bytes())))
    }
}

/// The SHA-256 (64 lower-case hex digits) of a normalised mailbox
/// ([`EmailAddress::mailbox`]). For an address that is already its own
/// mailbox it is the hash of the lower-cased address, which is what the
/// quota was keyed by before mailboxes were.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct MailboxKey(String);

impl MailboxKey {
    /// A key read back from a message: exactly 64 lower-case hex digits.
    pub fn parse(raw: &str) -> Result<Self, crate::FieldError> {
        if raw.len() == 64 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(crate::FieldError::new("mailbox", "not a mailbox key"))
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MailboxKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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

/// Appends `text` escaped for an HTML element body or a quoted attribute value.
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

/// Characters after which a linkifier continues a link (host labels,
/// schemes, mail addresses), with their full-width and ideographic forms,
/// which IDNA maps to the same.
fn continues_a_link(c: char) -> bool {
    matches!(
        c,
        '.' | ':' | '@' | '\u{3002}' | '\u{FF0E}' | '\u{FF61}' | '\u{FF1A}' | '\u{FF20}'
    )
}

/// `name` as shown in a message: a space after every link-continuing
/// character not already followed by whitespace, so no part of it forms a
/// link (see the module doc).
fn inert_name(name: &DisplayName) -> String {
    let mut out = String::with_capacity(name.as_str().len() + 8);
    let mut chars = name.as_str().chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if continues_a_link(c) && chars.peek().is_some_and(|next| !next.is_whitespace()) {
            out.push(' ');
        }
    }
    out
}

/// Wraps `paragraphs` in a minimal HTML document, greeting `name` (escaped).
fn html_document(subject: &str, name: &str, paragraphs: &[&str]) -> String {
    let mut html = String::with_capacity(256 + name.len());
    html.push_str("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>");
    push_escaped(&mut html, subject);
    html.push_str("</title></head><body><p>Hello ");
    push_escaped(&mut html, name);
    html.push_str(",</p>");
    for p in paragraphs {
        html.push_str("<p>");
        push_escaped(&mut html, p);
        html.push_str("</p>");
    }
    html.push_str("</body></html>");
    html
}

fn text_document(name: &str, paragraphs: &[&str]) -> String {
    let mut text = format!("Hello {name},\n");
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
    let name = inert_name(name);
    OutgoingEmail {
        message_id,
        to: to.clone(),
        subject: subject.to_owned(),
        text: text_document(&name, paragraphs),
        html: html_document(subject, &name, paragraphs),
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

    fn mailbox(address: &str) -> String {
        EmailAddress::parse(address).unwrap().mailbox()
    }

    #[test]
    fn sub_addresses_and_case_reach_one_mailbox() {
        assert_eq!(mailbox("victim+1@x.io"), "victim@x.io");
        assert_eq!(mailbox("victim+2@x.io"), "victim@x.io");
        assert_eq!(mailbox("Victim+Spam+More@X.IO"), "victim@x.io");
        assert_eq!(mailbox("victim@x.io"), "victim@x.io");
        // Only `+` tags: `-` and dots are part of most mailboxes' names.
        assert_eq!(mailbox("first-last@x.io"), "first-last@x.io");
        assert_eq!(mailbox("first.last@x.io"), "first.last@x.io");
        assert_eq!(mailbox("+tag@x.io"), "+tag@x.io");
        // Gmail ignores dots and answers for googlemail.com too.
        assert_eq!(mailbox("V.i.c.tim+1@GoogleMail.com"), "victim@gmail.com");
        assert_eq!(mailbox("vic.tim@gmail.com"), "victim@gmail.com");
    }

    #[test]
    fn the_mailbox_key_is_the_hash_of_the_mailbox_and_delivery_keeps_the_address() {
        let tagged = EmailAddress::parse("victim+1@x.io").unwrap();
        let plain = EmailAddress::parse("victim@x.io").unwrap();
        assert_eq!(tagged.mailbox_key(), plain.mailbox_key());
        assert_ne!(
            tagged.mailbox_key(),
            EmailAddress::parse("other@x.io").unwrap().mailbox_key()
        );
        // The hash of the lower-cased address, as quota items were keyed before.
        assert_eq!(
            plain.mailbox_key().as_str(),
            format!("{:x}", Sha256::digest(b"victim@x.io"))
        );
        assert_eq!(
            MailboxKey::parse(plain.mailbox_key().as_str()),
            Ok(plain.mailbox_key())
        );
        assert!(MailboxKey::parse("victim@x.io").is_err());
        assert!(MailboxKey::parse(&"A".repeat(64)).is_err());
        let created = UserCreated::from_user(&User {
            email: tagged,
            ..user("Ada")
        });
        assert_eq!(welcome(&created).to.as_str(), "victim+1@x.io");
    }

    #[test]
    fn escapes_every_special_character() {
        let mut out = String::new();
        push_escaped(&mut out, r#"<a href="x">Tom & 'Jerry'</a>"#);
        assert_eq!(
            out,
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

    /// What a linkifier would find in `text`: a scheme, or a `label.label`
    /// host (`www.x`, `evil.example`, ASCII or with IDNA dots), or `a@b`.
    fn has_link(text: &str) -> bool {
        let lower = text.to_lowercase();
        if lower.contains("://") {
            return true;
        }
        let chars: Vec<char> = lower.chars().collect();
        chars.windows(3).any(|w| {
            w[0].is_alphanumeric()
                && continues_a_link(w[1])
                && w[1] != ':'
                && w[2].is_alphanumeric()
        })
    }

    #[test]
    fn text_part_cannot_carry_a_link_from_the_name() {
        for name in [
            "Ada https://evil.example/login",
            "www.evil.example",
            "evil.example",
            "Call support at help@evil.example",
            "evil\u{3002}example",
            "EVIL．EXAMPLE",
            "1.2.3.4",
            "x:y@z",
        ] {
            assert!(has_link(name), "the check itself sees a link in {name:?}");
            let u = user(name);
            for email in [
                welcome(&UserCreated::from_user(&u)),
                notification(
                    &Notification::new(u.id.clone(), NotificationKind::SignupConfirmation),
                    &u,
                ),
            ] {
                let greeting = email.text.lines().next().unwrap_or_default();
                assert!(!has_link(greeting), "{greeting:?}");
                assert!(!has_link(&email.html), "{}", email.html);
            }
        }
        let email = welcome(&UserCreated::from_user(&user("Ada https://evil.example")));
        assert!(
            email
                .text
                .starts_with("Hello Ada https: //evil. example,\n"),
            "{}",
            email.text
        );
    }

    #[test]
    fn ordinary_names_are_shown_as_given_or_with_a_space_after_dots() {
        for (name, shown) in [
            ("Ada Lovelace", "Ada Lovelace"),
            ("J. R. R. Tolkien", "J. R. R. Tolkien"),
            ("J.R.R. Tolkien", "J. R. R. Tolkien"),
            ("Zoë", "Zoë"),
        ] {
            let email = welcome(&UserCreated::from_user(&user(name)));
            assert!(
                email.text.starts_with(&format!("Hello {shown},\n")),
                "{}",
                email.text
            );
        }
    }

    #[test]
    fn the_name_is_one_line_in_the_text_part() {
        let email = welcome(&UserCreated::from_user(&user("Ada")));
        assert_eq!(email.text.lines().next(), Some("Hello Ada,"));
        // Names that could add lines never become a user (see DisplayName);
        // a stored one is cleaned when read back.
        let stored = DisplayName::from_stored("Ada\r\nVisit evil.example");
        let mut u = user("Ada");
        u.name = stored;
        let email = welcome(&UserCreated::from_user(&u));
        assert_eq!(
            email.text.lines().next(),
            Some("Hello Ada  Visit evil. example,")
        );
    }
}
