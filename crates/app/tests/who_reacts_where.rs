//! Three regions of the same stack, each with its own in-memory adapters and
//! the use cases composed as its functions compose them, with this test
//! playing EventBridge (docs/multi-region.md, "Who reacts where"): every
//! `User Created` reaches every region's bus (its origin's, and each peer's
//! forwarded once), and each bus invokes the targets whose rule matches it.
//! The rules are not the test's own: their patterns are read from
//! template.yaml ([`Rule::of`]), so welcome-email runs where the deployed
//! rule says, on the detail user-processor stamped. Emails are counted as
//! sends (the SES transport's record of each call), not as outbox keys,
//! which a second send would overwrite.

use eventline_app::memory::{FixedClock, MemoryAdapters, SETTINGS};
use eventline_app::{compose, profile_creator, user_processor, welcome_email, Settings};
use eventline_domain::{Region, RegionSet, Timestamp, UserCreated, UserId};
use eventline_powertools::batch::Message;
use eventline_powertools::env::Env;
use serde_json::{json, Value};

/// A rule of template.yaml, as far as this test needs: the `detail` fields
/// its multi-region pattern matches to the stack's own region
/// (`field: [!Ref AWS::Region]`). Both rules also match source
/// `user.service` and detail-type `User Created`, which every event here has.
struct Rule {
    own_region_fields: Vec<String>,
}

impl Rule {
    /// The pattern of the rule named `<AppName>-<Stage>-<name>`: its
    /// `MultiRegion` branch when it has one, else its only pattern.
    fn of(name: &str) -> Self {
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
                .expect("template.yaml");
        let rule_name = format!("RuleName: !Sub \"${{AppName}}-${{Stage}}-{name}\"");
        let lines: Vec<&str> = template.lines().collect();
        let start = lines
            .iter()
            .position(|l| l.trim() == rule_name)
            .unwrap_or_else(|| panic!("no rule {name} in template.yaml"));
        let pattern: Vec<&str> = lines[start..]
            .iter()
            .skip_while(|l| !l.trim_start().starts_with("Pattern:"))
            .take_while(|l| !l.trim_start().starts_with("RetryPolicy:"))
            .copied()
            .collect();
        assert!(!pattern.is_empty(), "rule {name} has no Pattern");
        // With `!If [MultiRegion, a, b]` the first pattern is the multi-region one.
        let multi_region: Vec<&str> = if pattern[0].contains("!If") {
            let branches: Vec<usize> = pattern
                .iter()
                .enumerate()
                .filter(|(_, l)| l.trim_start().starts_with("- source:"))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(branches.len(), 2, "rule {name}: two branches");
            pattern[branches[0]..branches[1]].to_vec()
        } else {
            pattern
        };
        let own_region_fields = multi_region
            .iter()
            .filter_map(|l| l.trim().strip_suffix(": [!Ref AWS::Region]"))
            .map(str::to_owned)
            .collect();
        Self { own_region_fields }
    }

    /// Whether the rule on `region`'s bus matches `payload`.
    fn matches(&self, payload: &Value, region: &str) -> bool {
        self.own_region_fields
            .iter()
            .all(|field| payload["detail"][field.as_str()] == region)
    }
}

const REGIONS: &str = "us-west-2,us-east-1,eu-west-1";

/// Every invocation's deadline, after every stack's clock.
const DEADLINE_MS: u64 = 60_000;

/// A region's stack: its name and its stores.
struct Stack {
    region: &'static str,
    world: MemoryAdapters,
}

impl Stack {
    /// The stack of `region`, whose clock says `now_ms`.
    fn new(region: &'static str, now_ms: u64) -> Self {
        Self {
            region,
            world: MemoryAdapters {
                clock: FixedClock(Timestamp::from_unix_millis(now_ms)),
                ..MemoryAdapters::default()
            },
        }
    }

    /// A function's settings in this region, as the template sets them,
    /// but mail through the SES transport, whose in-memory double records
    /// every send.
    fn settings<C>(&self, read: fn(&mut Env) -> C) -> Settings<C> {
        let region = [
            ("AWS_REGION", self.region),
            ("REGIONS", REGIONS),
            ("MAIL_TRANSPORT", "ses"),
        ];
        let vars = SETTINGS.iter().chain(&region).copied();
        Settings::from_env(Env::from_map(vars), read).expect("complete settings")
    }

    /// user-processor's answer to one signup message.
    async fn sign_up(&self, message_id: &str, body: &str) {
        let settings = self.settings(user_processor::Config::from_env);
        let processor =
            compose::user_processor(self.world.user_processor_wiring(&settings), &settings);
        let report = processor
            .handle(vec![Message::new(message_id, body)], DEADLINE_MS)
            .await
            .expect("a batch report");
        assert!(report.unhandled().is_empty(), "{report:?}");
    }

    /// What this region's bus does with `event`: each rule of template.yaml
    /// that matches it invokes its target.
    async fn deliver(&self, event: &UserCreated, envelope_id: &str, rules: &Rules) {
        let payload = json!({
            "version": "0", "id": envelope_id, "detail-type": UserCreated::DETAIL_TYPE,
            "source": UserCreated::SOURCE, "account": "123456789012",
            "time": "2026-11-27T09:24:26Z", "region": self.region, "resources": [],
            "detail": serde_json::from_str::<Value>(&event.to_detail_json()).expect("JSON"),
        });
        if rules.profile_creator.matches(&payload, self.region) {
            let settings = self.settings(profile_creator::Config::from_env);
            compose::profile_creator(self.world.profile_creator_wiring(&settings), &settings)
                .handle(payload.clone(), DEADLINE_MS)
                .await
                .expect("profile-creator succeeds");
        }
        if rules.welcome_email.matches(&payload, self.region) {
            let settings = self.settings(welcome_email::Config::from_env);
            compose::welcome_email(self.world.welcome_email_wiring(&settings), &settings)
                .handle(payload, DEADLINE_MS)
                .await
                .expect("welcome-email succeeds");
        }
    }

    /// How many times this region sent the email `message_id`.
    fn sends(&self, message_id: &str) -> usize {
        self.world
            .ses
            .sent()
            .iter()
            .filter(|email| email.message_id == message_id)
            .count()
    }
}

/// The two consumers' rules.
struct Rules {
    welcome_email: Rule,
    profile_creator: Rule,
}

/// The first of `u-0`, `u-1`, … whose home is `home`.
fn user_at_home(home: &str) -> String {
    let set = RegionSet::parse(Region::parse(home).unwrap(), REGIONS).unwrap();
    (0..)
        .map(|i| format!("u-{i}"))
        .find(|id| set.home_region(&UserId::parse(id).unwrap()).as_str() == home)
        .expect("some user lives there")
}

#[tokio::test]
async fn the_same_signup_in_two_regions_gives_one_welcome_email_and_one_profile_per_region() {
    // The user's home is the third region: both copies of the event reach
    // it by forwarding.
    let id = user_at_home("eu-west-1");
    let signup = json!({"user_id": id, "email": "ada@example.com", "name": "Ada"}).to_string();
    let stacks = [
        Stack::new("us-west-2", 1_000),
        Stack::new("us-east-1", 2_000),
        Stack::new("eu-west-1", 3_000),
    ];
    stacks[0].sign_up("m-west", &signup).await;
    stacks[1].sign_up("m-east", &signup).await;

    // Each origin published once, stamped with itself, the same home and
    // key, and its own signup message as the correlation id.
    let mut published = Vec::new();
    for origin in &stacks {
        for event in origin.world.events.published() {
            published.push((origin.region, event));
        }
    }
    let stamps: Vec<_> = published
        .iter()
        .map(|(origin, e)| {
            (
                *origin,
                e.origin_region.as_ref().map(Region::as_str),
                e.home_region.as_ref().map(Region::as_str),
                e.event_key(),
                e.correlation_id.as_ref().map(|c| c.to_string()),
            )
        })
        .collect();
    let key = format!("user-created/{id}");
    assert_eq!(
        stamps,
        [
            (
                "us-west-2",
                Some("us-west-2"),
                Some("eu-west-1"),
                key.clone(),
                Some("m-west".to_owned())
            ),
            (
                "us-east-1",
                Some("us-east-1"),
                Some("eu-west-1"),
                key,
                Some("m-east".to_owned())
            ),
        ]
    );
    assert_ne!(
        published[0].1.created_at, published[1].1.created_at,
        "two stored writes, two times"
    );

    // Every event reaches its origin's bus and, forwarded once, each peer's
    // (a new envelope id each time, as EventBridge gives).
    let rules = Rules {
        welcome_email: Rule::of("welcome-email"),
        profile_creator: Rule::of("profile-creator"),
    };
    for (n, (_, event)) in published.iter().enumerate() {
        for (m, stack) in stacks.iter().enumerate() {
            stack.deliver(event, &format!("e-{n}-{m}"), &rules).await;
        }
    }

    // Both copies reached the home region's welcome-email; it sent once.
    let welcome = format!("welcome.{id}");
    let sends: Vec<_> = stacks.iter().map(|s| s.sends(&welcome)).collect();
    assert_eq!(sends, [0, 0, 1], "one welcome email, from the home region");
    for stack in &stacks {
        assert_eq!(
            stack.world.profiles.profiles().len(),
            1,
            "{}: one profile",
            stack.region
        );
        assert!(
            stack
                .world
                .bucket
                .get(&format!("profiles/{id}.json"))
                .is_some(),
            "{}: its document",
            stack.region
        );
        assert_eq!(
            stack.world.dead_letters.letters(),
            [],
            "{}: the second copy is a duplicate, not a conflict",
            stack.region
        );
    }
    // The documented trade-off: each origin confirms the signup it took.
    let confirmations: Vec<_> = stacks
        .iter()
        .map(|s| s.world.notifications.sent().len())
        .collect();
    assert_eq!(confirmations, [1, 1, 0]);
}
