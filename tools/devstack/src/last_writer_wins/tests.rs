//! The last-writer-wins rules, case by case.

use super::*;

const A: &str = "eu-west-1";
const B: &str = "us-east-1";
const C: &str = "us-west-2";

/// LastWriterWins whose regions' streams have all been read to the end once.
fn replication() -> LastWriterWins {
    let mut r = LastWriterWins::new([A, B, C].map(str::to_owned));
    for region in [A, B, C] {
        r.caught_up(region, 0);
    }
    r
}

fn key(id: &str) -> ItemKey {
    ItemKey::new(Item::from([(
        "user_id".to_owned(),
        AttributeValue::S(id.to_owned()),
    )]))
}

fn image(id: &str, name: &str) -> Option<Item> {
    Some(Item::from([
        ("user_id".to_owned(), AttributeValue::S(id.to_owned())),
        ("name".to_owned(), AttributeValue::S(name.to_owned())),
    ]))
}

fn version(time_ms: i64, region: &str, sequence: &str) -> Version {
    Version {
        time_ms,
        region: region.to_owned(),
        sequence: Sequence(sequence.to_owned()),
    }
}

/// Writes the winner into every region that needs it and shows each
/// write on that region's stream, as moto would.
fn replicate_all(r: &mut LastWriterWins, k: &ItemKey, seq: &mut u64) -> Vec<String> {
    let mut written = Vec::new();
    for region in r.regions_needing(k) {
        let write = r.start_write(&region, k).expect("needed");
        *seq += 1;
        let observed = r.observe(
            &region,
            k,
            write.image.clone(),
            version(999, &region, &seq.to_string()),
        );
        assert_eq!(observed, Observed::Echo, "{region}");
        written.push(region);
    }
    written
}

#[test]
fn a_local_write_goes_to_the_other_regions_once_and_its_echoes_go_nowhere() {
    let (mut r, k, mut seq) = (replication(), key("u-1"), 0);
    assert_eq!(
        r.observe(A, &k, image("u-1", "Ada"), version(10, A, "1")),
        Observed::Won
    );
    assert_eq!(replicate_all(&mut r, &k, &mut seq), [B, C]);
    // Every region holds the winner; the echoes planned nothing more.
    assert!(r.regions_needing(&k).is_empty());
    for region in [A, B, C] {
        assert_eq!(r.held(region, &k), r.winner(&k), "{region}");
    }
    assert_eq!(r.winner(&k).unwrap().version.region, A);
    assert_eq!(r.writes_in_flight(), 0);
}

#[test]
fn concurrent_writes_converge_on_the_later_one_everywhere() {
    let (mut r, k, mut seq) = (replication(), key("u-1"), 0);
    r.observe(A, &k, image("u-1", "Ada"), version(10, A, "1"));
    // B wrote without having A's version: concurrent writes, B's the later.
    assert_eq!(
        r.observe(B, &k, image("u-1", "Ada B"), version(20, B, "1")),
        Observed::WonConcurrently
    );
    assert_eq!(replicate_all(&mut r, &k, &mut seq), [A, C]);
    for region in [A, B, C] {
        assert_eq!(
            r.held(region, &k).unwrap().image,
            image("u-1", "Ada B"),
            "{region}"
        );
    }
    // One item, written concurrently by B (A wrote first, knowing of nothing).
    assert_eq!((r.contested_in(A), r.contested_in(B)), (0, 1));
}

#[test]
fn an_older_write_read_late_loses_and_is_not_replicated() {
    let (mut r, k) = (replication(), key("u-1"));
    r.observe(B, &k, image("u-1", "new"), version(20, B, "1"));
    assert_eq!(
        r.observe(A, &k, image("u-1", "old"), version(10, A, "1")),
        Observed::Lost
    );
    // A gets the winner back; nobody gets the loser.
    assert_eq!(r.regions_needing(&k), [A, C]);
    assert_eq!(r.start_write(A, &k).unwrap().image, image("u-1", "new"));
}

#[test]
fn a_replicated_write_landing_on_a_newer_local_one_is_repaired() {
    let (mut r, k) = (replication(), key("u-1"));
    r.observe(A, &k, image("u-1", "old"), version(10, A, "1"));
    let old = r.start_write(B, &k).unwrap();
    // Meanwhile B wrote a newer version locally; B's stream shows it, then the replicated old one.
    assert_eq!(
        r.observe(B, &k, image("u-1", "new"), version(20, B, "1")),
        Observed::WonConcurrently
    );
    assert_eq!(
        r.observe(B, &k, old.image, version(21, B, "2")),
        Observed::Echo
    );
    // B holds the loser now: the winner goes back into B (and to A and C).
    assert_eq!(r.regions_needing(&k), [A, B, C]);
    assert_eq!(r.start_write(B, &k).unwrap().image, image("u-1", "new"));
}

#[test]
fn a_write_made_after_the_winner_arrived_is_not_concurrent() {
    let (mut r, k, mut seq) = (replication(), key("u-1"), 0);
    r.observe(A, &k, image("u-1", "Ada"), version(10, A, "1"));
    replicate_all(&mut r, &k, &mut seq);
    // B's stream showed A's version before B's own update of it.
    assert_eq!(
        r.observe(B, &k, image("u-1", "Ada, announced"), version(20, B, "9")),
        Observed::Won
    );
}

#[test]
fn equal_times_are_settled_by_region_name_the_same_way_everywhere() {
    let (mut r, k) = (replication(), key("u-1"));
    r.observe(C, &k, image("u-1", "from C"), version(10, C, "1"));
    assert_eq!(
        r.observe(A, &k, image("u-1", "from A"), version(10, A, "9")),
        Observed::Lost
    );
    assert_eq!(r.winner(&k).unwrap().version.region, C);
    // Within one region the stream order decides.
    assert_eq!(
        r.observe(C, &k, image("u-1", "C again"), version(10, C, "2")),
        Observed::Won
    );
    assert!(Sequence("10".into()) > Sequence("9".into()));
}

#[test]
fn a_region_that_holds_the_winners_image_gets_no_write() {
    let (mut r, k) = (replication(), key("u-1"));
    // The same signup stored in two regions: identical items.
    r.observe(A, &k, image("u-1", "Ada"), version(10, A, "1"));
    r.observe(B, &k, image("u-1", "Ada"), version(11, B, "1"));
    assert_eq!(r.regions_needing(&k), [C]);
    assert_eq!(r.held(A, &k), r.winner(&k));
}

#[test]
fn a_delete_replicates_and_an_absent_item_needs_no_delete() {
    let (mut r, k, mut seq) = (replication(), key("u-1"), 0);
    r.observe(A, &k, image("u-1", "Ada"), version(10, A, "1"));
    replicate_all(&mut r, &k, &mut seq);
    assert_eq!(r.observe(B, &k, None, version(20, B, "5")), Observed::Won);
    assert_eq!(replicate_all(&mut r, &k, &mut seq), [A, C]);
    // A delete of an item no region ever held writes nothing.
    let gone = key("u-2");
    r.observe(A, &gone, None, version(30, A, "2"));
    assert!(r.regions_needing(&gone).is_empty());
}

#[test]
fn a_write_that_never_shows_on_the_stream_stops_being_in_flight_once_the_stream_is_read() {
    let (mut r, k) = (replication(), key("u-1"));
    r.observe(A, &k, image("u-1", "Ada"), version(10, A, "1"));
    let write = r.start_write(B, &k).unwrap();
    assert!(r.regions_needing(&k).iter().all(|x| x != B), "in flight");
    r.write_completed(B, &k, &write, 7);
    // A poll that began before the write completed proves nothing.
    assert!(r.caught_up(B, 7).is_empty());
    let planned_again = r.caught_up(B, 8);
    assert_eq!(planned_again.len(), 1);
    assert_eq!(planned_again[0], k);
    assert_eq!(r.writes_in_flight(), 0);
    assert!(r.regions_needing(&k).iter().any(|x| x == B));
}

#[test]
fn nothing_is_written_into_a_region_before_its_stream_is_read() {
    let (mut r, k) = (LastWriterWins::new([A, B].map(str::to_owned)), key("u-1"));
    r.caught_up(A, 1);
    r.observe(A, &k, image("u-1", "Ada"), version(10, A, "1"));
    assert!(
        r.regions_needing(&k).is_empty(),
        "B's history is unknown yet"
    );
    // B's stream, read to the end, shows a later delete there: it wins, A gets it.
    r.observe(B, &k, image("u-1", "Ada"), version(11, B, "1"));
    r.observe(B, &k, None, version(12, B, "2"));
    assert!(!r.synced());
    let planned = r.caught_up(B, 1);
    assert_eq!(planned.len(), 1);
    assert!(r.synced());
    assert_eq!(r.regions_needing(&k), [A]);
    assert_eq!(r.start_write(A, &k).unwrap().image, None);
}

#[test]
fn a_failed_write_is_retried() {
    let (mut r, k) = (replication(), key("u-1"));
    r.observe(A, &k, image("u-1", "Ada"), version(10, A, "1"));
    let write = r.start_write(C, &k).unwrap();
    assert!(
        r.start_write(C, &k).is_none(),
        "one write per region and item at a time"
    );
    r.write_failed(C, &k, &write);
    assert_eq!(r.start_write(C, &k), Some(write));
}
