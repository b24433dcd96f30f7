//! The AWS regions a stack works with, and each user's **home region**: the
//! one region whose welcome-email sends that user's welcome email
//! (docs/multi-region.md, "The home region").
//!
//! Every region must compute the same home for a user without talking to
//! the others, so the choice is a pure function of the user id and the
//! region set, and the set is normalised (sorted, deduplicated, empty
//! entries ignored) before use: two stacks listing the same regions in a
//! different order agree.
//!
//! ```text
//! home_region(user_id) = sorted_regions[ fnv1a64(utf8(user_id)) mod len(sorted_regions) ]
//! ```
//!
//! [`fnv1a64`] is 64-bit FNV-1a (offset basis `0xcbf29ce484222325`, prime
//! `0x100000001b3`, one byte at a time: `hash ^= byte; hash *= prime`,
//! wrapping), chosen because it is a few lines in any language and has no
//! seed. The same in Python, to check a user's home from a shell:
//!
//! ```text
//! h = 0xcbf29ce484222325
//! for b in user_id.encode(): h = ((h ^ b) * 0x100000001b3) % 2**64
//! home = sorted(set(regions))[h % len(set(regions))]
//! ```

use crate::UserId;
use std::fmt;
use thiserror::Error;

/// An AWS region name such as `us-west-2`: two lower-case letters, one or
/// more `-word`s, `-` and a digit (the template's `AllowedPattern`
/// `^[a-z]{2}(-[a-z]+)+-[0-9]$`), at most 32 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Region(String);

impl Region {
    /// Longest accepted name, in characters.
    pub const MAX_LEN: usize = 32;

    /// Validates `raw` (surrounding whitespace ignored).
    pub fn parse(raw: &str) -> Result<Self, RegionError> {
        let raw = raw.trim();
        if is_region_name(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(RegionError::NotARegion(
                raw.chars().take(Self::MAX_LEN).collect(),
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `^[a-z]{2}(-[a-z]+)+-[0-9]$`, at most [`Region::MAX_LEN`] bytes.
fn is_region_name(raw: &str) -> bool {
    if raw.len() > Region::MAX_LEN {
        return false;
    }
    let mut parts = raw.split('-');
    let prefix_ok = parts
        .next()
        .is_some_and(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_lowercase()));
    let rest: Vec<&str> = parts.collect();
    let Some((number, words)) = rest.split_last() else {
        return false;
    };
    prefix_ok
        && number.len() == 1
        && number.bytes().all(|b| b.is_ascii_digit())
        && !words.is_empty()
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Why a region or a region set was refused. Region names are not personal
/// data, so the messages quote them (cut to [`Region::MAX_LEN`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegionError {
    /// Not a region name.
    #[error("{0:?} is not a region name (like us-west-2)")]
    NotARegion(String),
    /// The set does not list the region the process runs in.
    #[error("does not list this function's own region {0}")]
    WithoutOwnRegion(Region),
}

/// The regions a stack works with, sorted and deduplicated, and the one
/// this process runs in (always a member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionSet {
    own: Region,
    regions: Vec<Region>,
}

impl RegionSet {
    /// This region alone: a single-region stack.
    pub fn single(own: Region) -> Self {
        Self {
            regions: vec![own.clone()],
            own,
        }
    }

    /// The regions of `list` (comma-separated; empty entries ignored;
    /// sorted and deduplicated), which must include `own`.
    pub fn parse(own: Region, list: &str) -> Result<Self, RegionError> {
        let mut regions = list
            .split(',')
            .filter(|entry| !entry.trim().is_empty())
            .map(Region::parse)
            .collect::<Result<Vec<_>, _>>()?;
        regions.sort_unstable();
        regions.dedup();
        if !regions.contains(&own) {
            return Err(RegionError::WithoutOwnRegion(own));
        }
        Ok(Self { own, regions })
    }

    /// The region this process runs in.
    pub fn own(&self) -> &Region {
        &self.own
    }

    /// Every region of the set, sorted.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The home region of `user_id` (see the module doc): always a member,
    /// and the same in every region with the same set.
    pub fn home_region(&self, user_id: &UserId) -> &Region {
        // Never empty: `own` is always a member. The remainder is below
        // the length, so it fits a usize on any target.
        let index = fnv1a64(user_id.as_str().as_bytes()) % self.regions.len() as u64;
        &self.regions[index as usize]
    }
}

/// 64-bit FNV-1a of `bytes` (see the module doc for its constants).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn region(name: &str) -> Region {
        Region::parse(name).unwrap()
    }

    fn three() -> RegionSet {
        RegionSet::parse(region("us-east-1"), "us-west-2,us-east-1,eu-west-1").unwrap()
    }

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn region_names_follow_the_template_pattern() {
        for good in [
            "us-west-2",
            "eu-west-1",
            "ap-southeast-1",
            "us-gov-west-1",
            " us-east-1 ",
        ] {
            assert!(Region::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "us",
            "us-west",
            "US-WEST-2",
            "us-west-12",
            "usa-west-2",
            "us--west-2",
            "us-west-2-",
            "us-2",
            "us-wést-2",
            "us-west-x",
        ] {
            assert_eq!(
                Region::parse(bad),
                Err(RegionError::NotARegion(bad.trim().to_owned())),
                "{bad}"
            );
        }
        let long = format!("us-{}-1", "a".repeat(40));
        assert_eq!(
            Region::parse(&long).unwrap_err().to_string(),
            format!("{:?} is not a region name (like us-west-2)", &long[..32])
        );
    }

    #[test]
    fn a_set_is_sorted_deduplicated_and_ignores_empty_entries() {
        let set = RegionSet::parse(
            region("us-west-2"),
            " us-west-2,,eu-west-1,us-east-1,us-west-2, ",
        )
        .unwrap();
        let names: Vec<_> = set.regions().iter().map(Region::as_str).collect();
        assert_eq!(names, ["eu-west-1", "us-east-1", "us-west-2"]);
        assert_eq!(set.own().as_str(), "us-west-2");
        assert_eq!(
            RegionSet::parse(region("us-west-2"), "us-west-2"),
            Ok(RegionSet::single(region("us-west-2")))
        );
    }

    #[test]
    fn a_set_without_the_own_region_or_with_a_bad_name_is_refused() {
        assert_eq!(
            RegionSet::parse(region("ap-south-1"), "us-west-2,eu-west-1")
                .unwrap_err()
                .to_string(),
            "does not list this function's own region ap-south-1"
        );
        assert_eq!(
            RegionSet::parse(region("us-west-2"), ""),
            Err(RegionError::WithoutOwnRegion(region("us-west-2")))
        );
        assert_eq!(
            RegionSet::parse(region("us-west-2"), "us-west-2,eu-west"),
            Err(RegionError::NotARegion("eu-west".into()))
        );
    }

    #[test]
    fn a_single_region_is_everyones_home() {
        let set = RegionSet::single(region("eu-west-1"));
        for id in ["u-1", "u-1001", "x"] {
            assert_eq!(set.home_region(&user(id)).as_str(), "eu-west-1");
        }
    }

    #[test]
    fn known_homes_over_the_seed_regions() {
        // Computed independently with the Python lines of the module doc.
        let set = three();
        for (id, home) in [
            ("u-0", "eu-west-1"),
            ("u-1", "us-west-2"),
            ("u-2", "us-east-1"),
            ("u-1001", "eu-west-1"),
            ("u-1003", "us-east-1"),
        ] {
            assert_eq!(set.home_region(&user(id)).as_str(), home, "{id}");
        }
    }

    #[test]
    fn users_spread_roughly_evenly_over_three_regions() {
        let set = three();
        let mut counts = std::collections::BTreeMap::new();
        for i in 0..3000 {
            *counts
                .entry(set.home_region(&user(&format!("u-{i}"))).as_str())
                .or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 3, "{counts:?}");
        assert!(
            counts.values().all(|&n| (900..=1100).contains(&n)),
            "{counts:?}"
        );
    }

    /// Any list of the seed regions (any order, repeats, empty entries)
    /// that includes `own`.
    fn listing() -> impl Strategy<Value = (String, String)> {
        let names = ["us-west-2", "us-east-1", "eu-west-1"];
        (
            prop::sample::select(names.to_vec()),
            prop::collection::vec(
                prop::sample::select(vec!["us-west-2", "us-east-1", "eu-west-1", ""]),
                0..6,
            ),
        )
            .prop_map(move |(own, mut rest)| {
                rest.extend(names);
                (own.to_owned(), rest.join(","))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_region_computes_the_same_home_and_it_is_a_member(
            id in "[A-Za-z0-9_-]{1,64}",
            (own, list) in listing(),
            (other_own, other_list) in listing(),
        ) {
            let user_id = user(&id);
            let here = RegionSet::parse(region(&own), &list).unwrap();
            let there = RegionSet::parse(region(&other_own), &other_list).unwrap();
            let home = here.home_region(&user_id);
            prop_assert_eq!(home, there.home_region(&user_id));
            prop_assert_eq!(home, here.home_region(&user_id), "deterministic");
            prop_assert!(here.regions().contains(home));
        }

        #[test]
        fn a_home_is_always_a_member_of_any_set(
            id in "[A-Za-z0-9_-]{1,64}",
            names in prop::collection::btree_set("[a-z]{2}-[a-z]{1,8}-[0-9]", 1..8),
        ) {
            let names: Vec<String> = names.into_iter().collect();
            let set = RegionSet::parse(region(&names[0]), &names.join(",")).unwrap();
            prop_assert!(set.regions().contains(set.home_region(&user(&id))));
        }
    }
}
