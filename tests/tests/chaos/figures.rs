//! What a scenario ended with ([`Figures`]), its row of the table `make
//! chaos` prints, and the check every scenario ends with: each valid user
//! had exactly one of each effect ([`assert_once_each`]).

use super::counted::Effects;
use eventline_devstack::runner::FunctionStats;
use eventline_devstack::state::StackState;
use eventline_tests::fault_proxy::Faulted;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a scenario ended with.
pub(crate) struct Figures {
    pub(crate) scenario: &'static str,
    pub(crate) sent: usize,
    pub(crate) deliveries: u64,
    pub(crate) faulted: Faulted,
    pub(crate) state: StackState,
    pub(crate) effects: Arc<Effects>,
    pub(crate) stats: BTreeMap<String, FunctionStats>,
}

impl Figures {
    pub(crate) fn print(&self) {
        let (_, max_user) = self.effects.of("user write");
        let users = self.state.items_in("USERS_TABLE") as usize;
        let (welcome, max_welcome) = self.effects.of("welcome email sent");
        let (notes, max_notes) = self.effects.of("notification email sent");
        let (profiles, max_profiles) = self.effects.of("profile write");
        let dlq = self.state.dead_letters_in("user-processor DLQ");
        let cell = |n: usize, max: u32| format!("{n} (max {max}x)");
        println!(
            "| {:<40} | {:>4} | {:>10} | {:>7} | {:>12} | {:>12} | {:>14} | {:>13} | {:>3} |",
            self.scenario,
            self.sent,
            self.deliveries,
            self.faulted.total(),
            cell(users, max_user),
            cell(profiles, max_profiles),
            cell(welcome, max_welcome),
            cell(notes, max_notes),
            dlq
        );
    }

    pub(crate) fn stats(&self, function: &str) -> FunctionStats {
        self.stats.get(function).copied().unwrap_or_default()
    }
}

pub(crate) fn header() {
    println!(
        "| {:<40} | sent | deliveries | faulted | {:>12} | {:>12} | {:>14} | {:>13} | DLQ |",
        "scenario", "users", "profiles", "welcome emails", "notifications"
    );
    println!(
        "|{:-<42}|------|------------|---------|{:-<14}|{:-<14}|{:-<16}|{:-<15}|-----|",
        "", "", "", "", ""
    );
}

/// Every valid user ended with exactly one of each effect, and the stack's
/// state agrees.
pub(crate) fn assert_once_each(f: &Figures, users: usize) {
    // No user is ever written twice. (A crash can cut a batch's other writes
    // off after DynamoDB applied them but before their answer was counted,
    // so the table, checked below, is the count of users written.)
    // The same holds for profile rows: an outage can cut the answer of a
    // write DynamoDB applied; its retry finds the row and completes it.
    for kind in ["user write", "profile write"] {
        let (_, most_writes) = f.effects.of(kind);
        assert_eq!(most_writes, 1, "{}: a {kind} happened twice", f.scenario);
    }
    // No email goes out twice. Every one went out is the stack's outbox,
    // checked below: an email whose answer a fault cut went out unseen
    // (its retry finds the object, `Sent::Before`), so the count seen may
    // be short of `users`, never over it.
    for kind in ["welcome email sent", "notification email sent"] {
        let (sent, most) = f.effects.of(kind);
        assert!(most <= 1, "{}: a {kind} went out twice", f.scenario);
        assert!(sent <= users, "{}: {kind}: {sent} of {users}", f.scenario);
    }
    // Messages between functions are at-least-once: one whose answer was
    // lost is sent again (the consumers above act once). None is missing.
    for kind in ["notification enqueued", "event published"] {
        assert_eq!(f.effects.of(kind).0, users, "{}: {kind}", f.scenario);
    }
    // Every profile document and sent marker was written for every user
    // (mail is counted above, as the outbox objects created). Objects are
    // created once (`If-None-Match: *`); distinct keys are what must match.
    let documents = f.effects.keys_of("object put");
    assert_eq!(
        documents
            .iter()
            .filter(|k| k.starts_with("profiles/"))
            .count(),
        users,
        "{}: profile documents put",
        f.scenario
    );
    assert_eq!(
        f.effects.of("sent marker").0,
        2 * users,
        "{}: sent markers (welcome and confirmation)",
        f.scenario
    );
    for (what, found) in [
        ("users", f.state.items_in("USERS_TABLE")),
        ("profiles", f.state.items_in("PROFILES_TABLE")),
        ("welcome emails", f.state.objects_of("outbox/welcome")),
        (
            "confirmations",
            f.state.objects_of("outbox/signup_confirmation"),
        ),
        ("profile documents", f.state.objects_of("profiles/")),
    ] {
        assert_eq!(found, users as u64, "{}: {what}", f.scenario);
    }
}
