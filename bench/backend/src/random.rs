//! Seeded, reproducible draws: which batch entries fail on purpose, which
//! transactions conflict and which calls are throttled, and the ids the
//! backend hands out. Each kind draws from its own sequence, so turning
//! one kind of fault on does not move the others. The n-th draw after a reset depends only
//! on the seed and n, so a run is reproducible up to the order in which
//! concurrent calls arrive.

use std::sync::atomic::{AtomicU64, Ordering};

/// SplitMix64: one well-mixed 64-bit value per input.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A numbered sequence of draws from one seed.
#[derive(Debug)]
struct Sequence {
    seed: u64,
    next: AtomicU64,
}

impl Sequence {
    fn new(seed: u64) -> Self {
        Self {
            seed,
            next: AtomicU64::new(0),
        }
    }

    fn draw(&self) -> u64 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        splitmix64(self.seed ^ splitmix64(n))
    }

    fn reset(&self) {
        self.next.store(0, Ordering::Relaxed);
    }
}

/// Decides, draw by draw, whether a fault happens: which batch entries fail
/// (`--fail-entry-rate`), which transactions conflict (`--conflict-rate`),
/// which calls are throttled (`--throttle-rate`). The rate can be changed
/// while serving (`POST /__backend/faults`).
#[derive(Debug)]
pub(crate) struct EntryFaults {
    /// The rate's f64 bits.
    rate: AtomicU64,
    draws: Sequence,
}

/// Seeds of the conflict and throttle sequences, apart from the entries'.
pub(crate) const CONFLICT_SALT: u64 = 0xC0F1;
pub(crate) const THROTTLE_SALT: u64 = 0x7407;

impl EntryFaults {
    pub fn new(rate: f64, seed: u64) -> Self {
        Self {
            rate: AtomicU64::new(rate.to_bits()),
            draws: Sequence::new(seed),
        }
    }

    /// A sequence of its own for another kind of fault of the same seed.
    pub fn salted(rate: f64, seed: u64, salt: u64) -> Self {
        Self::new(rate, splitmix64(seed ^ salt))
    }

    pub fn rate(&self) -> f64 {
        f64::from_bits(self.rate.load(Ordering::Relaxed))
    }

    pub fn set_rate(&self, rate: f64) {
        self.rate.store(rate.to_bits(), Ordering::Relaxed);
    }

    /// Whether the next entry fails: true with probability `rate`.
    pub fn next_fails(&self) -> bool {
        let rate = self.rate();
        if rate <= 0.0 {
            return false;
        }
        // 53 random bits as a uniform number in [0, 1).
        let unit = (self.draws.draw() >> 11) as f64 / (1u64 << 53) as f64;
        unit < rate
    }

    /// A seeded index below `n` (which action of a transaction conflicts).
    pub fn pick(&self, n: usize) -> usize {
        (self.draws.draw() % n.max(1) as u64) as usize
    }

    pub fn reset(&self) {
        self.draws.reset();
    }
}

/// Ids in the UUID v4 text form AWS uses for message, event and request ids.
#[derive(Debug)]
pub(crate) struct Ids {
    draws: Sequence,
}

impl Ids {
    pub fn new(seed: u64) -> Self {
        // Ids never repeat the failure draws of the same seed.
        Self {
            draws: Sequence::new(splitmix64(seed ^ 0x1D5)),
        }
    }

    pub fn uuid(&self) -> String {
        let hi = self.draws.draw();
        let lo = self.draws.draw();
        // Version 4, RFC 4122 variant.
        let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
        let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xFFFF,
            hi & 0xFFFF,
            lo >> 48,
            lo & 0xFFFF_FFFF_FFFF
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_fails_the_same_entries() {
        let a = EntryFaults::new(0.3, 7);
        let b = EntryFaults::new(0.3, 7);
        let draws_a: Vec<bool> = (0..200).map(|_| a.next_fails()).collect();
        let draws_b: Vec<bool> = (0..200).map(|_| b.next_fails()).collect();
        assert_eq!(draws_a, draws_b);
        a.reset();
        let again: Vec<bool> = (0..200).map(|_| a.next_fails()).collect();
        assert_eq!(draws_a, again);
    }

    #[test]
    fn the_failure_share_follows_the_rate() {
        let faults = EntryFaults::new(0.1, 1);
        let failed = (0..10_000).filter(|_| faults.next_fails()).count();
        assert!((800..1200).contains(&failed), "{failed} of 10000");
        let none = EntryFaults::new(0.0, 1);
        assert!((0..1000).all(|_| !none.next_fails()));
        let all = EntryFaults::new(1.0, 1);
        assert!((0..1000).all(|_| all.next_fails()));
    }

    #[test]
    fn each_kind_of_fault_draws_from_its_own_sequence() {
        let entries = EntryFaults::new(0.5, 3);
        let conflicts = EntryFaults::salted(0.5, 3, CONFLICT_SALT);
        let a: Vec<bool> = (0..64).map(|_| entries.next_fails()).collect();
        let b: Vec<bool> = (0..64).map(|_| conflicts.next_fails()).collect();
        assert_ne!(a, b);
        conflicts.set_rate(0.0);
        assert!((0..100).all(|_| !conflicts.next_fails()));
        assert!((0..100).all(|_| conflicts.pick(3) < 3));
    }

    #[test]
    fn ids_are_version_4_uuids() {
        let ids = Ids::new(1);
        let id = ids.uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(id, ids.uuid());
    }
}
