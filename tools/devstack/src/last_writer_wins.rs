//! The conflict rule of global-table replication, apart from reading
//! streams and writing tables ([`crate::replicator`] does those): which
//! version of an item wins, which region still needs it, and which stream
//! records are the replicator's own writes coming back.
//!
//! DynamoDB global tables resolve concurrent changes per item: the last
//! writer wins and every replica converges on it. moto has none, so the
//! local run keeps one table per region and this state machine, fed with
//! each region's stream in order. The rules (last writer wins by time, then
//! region name, then sequence; no echo; repair; nothing redundant; read
//! before writing) are set out in docs/multi-region.md, "The replicator".

use aws_sdk_dynamodb::types::AttributeValue;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// An item's attributes, as DynamoDB returns and takes them.
pub type Item = HashMap<String, AttributeValue>;

/// A stream record's sequence number: digits, compared as the number they
/// spell (up to 40 digits, more than an integer type holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence(pub String);

impl Ord for Sequence {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.0.len(), &self.0).cmp(&(other.0.len(), &other.0))
    }
}

impl PartialOrd for Sequence {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// When and where a write happened: the order in which the last writer wins.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// The stream record's `ApproximateCreationDateTime`, in Unix milliseconds.
    pub time_ms: i64,
    /// The region whose table took the write.
    pub region: String,
    /// The record's position in that region's stream.
    pub sequence: Sequence,
}

/// An item's key: its key attributes, compared by a canonical rendering.
#[derive(Debug, Clone)]
pub struct ItemKey {
    canonical: String,
    attributes: Item,
}

impl ItemKey {
    /// The key of a stream record (its `Keys`).
    pub fn new(attributes: Item) -> Self {
        let sorted: BTreeMap<_, _> = attributes.iter().collect();
        Self {
            canonical: format!("{sorted:?}"),
            attributes,
        }
    }

    /// The key attributes, for a DeleteItem.
    pub fn attributes(&self) -> &Item {
        &self.attributes
    }
}

impl PartialEq for ItemKey {
    fn eq(&self, other: &Self) -> bool {
        self.canonical == other.canonical
    }
}

impl Eq for ItemKey {}

impl std::hash::Hash for ItemKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.canonical.hash(state);
    }
}

/// One version of an item: its image after the write (`None`: deleted).
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// When and where it was written first.
    pub version: Version,
    /// The item after the write; `None` for a delete.
    pub image: Option<Item>,
}

/// What a stream record turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// A write the replicator made, seen on the target region's stream.
    Echo,
    /// A write made in that region, newer than any seen so far: replicated.
    Won,
    /// As `Won`, but made without having seen the version it beats, which
    /// another region wrote: concurrent writes, settled for this one.
    WonConcurrently,
    /// A write made in that region, older than the winner (so made without
    /// having seen it): concurrent writes, settled against this one, which
    /// is overwritten there.
    Lost,
}

/// A write the replicator made into a region and has not yet seen on its stream.
#[derive(Debug, Clone)]
struct InFlight {
    write: Write,
    /// The region's stream poll during which the write completed (`None`: still running).
    completed_at_poll: Option<u64>,
}

#[derive(Debug, Default)]
struct Replica {
    /// The last version this region's stream showed (`None`: none yet, the item is absent).
    holds: Option<Write>,
    in_flight: VecDeque<InFlight>,
}

#[derive(Debug, Default)]
struct ItemState {
    winner: Option<Write>,
    replicas: HashMap<String, Replica>,
}

/// The replication state of every item of one global table.
#[derive(Debug)]
pub struct LastWriterWins {
    regions: Vec<String>,
    items: HashMap<ItemKey, ItemState>,
    /// Regions whose stream has been read to its end at least once.
    synced: HashSet<String>,
    /// Items each region wrote concurrently with another region.
    contested: HashSet<(String, ItemKey)>,
}

impl LastWriterWins {
    /// Replication between the replicas in `regions`.
    pub fn new(regions: impl IntoIterator<Item = String>) -> Self {
        Self {
            regions: regions.into_iter().collect(),
            items: HashMap::new(),
            synced: HashSet::new(),
            contested: HashSet::new(),
        }
    }

    /// Takes in the next record of `region`'s stream: a write of `key` with
    /// `image` (`None`: removed), at `version`.
    pub fn observe(
        &mut self,
        region: &str,
        key: &ItemKey,
        image: Option<Item>,
        version: Version,
    ) -> Observed {
        let state = self.items.entry(key.clone()).or_default();
        let replica = state.replicas.entry(region.to_owned()).or_default();
        if let Some(at) = replica
            .in_flight
            .iter()
            .position(|f| f.write.image == image)
        {
            // Its image is one the replicator wrote: the region now holds that version.
            let echo = replica.in_flight.remove(at).map(|f| f.write);
            replica.holds = echo;
            return Observed::Echo;
        }
        let write = Write { version, image };
        // The region wrote without holding the winner another region wrote.
        let concurrent = state
            .winner
            .as_ref()
            .is_some_and(|w| w.version.region != region && replica.holds.as_ref() != Some(w));
        replica.holds = Some(write.clone());
        let lost = state
            .winner
            .as_ref()
            .is_some_and(|w| w.version >= write.version);
        if concurrent || lost {
            self.contested.insert((region.to_owned(), key.clone()));
        }
        match &state.winner {
            _ if lost => Observed::Lost,
            _ => {
                state.winner = Some(write);
                if concurrent {
                    Observed::WonConcurrently
                } else {
                    Observed::Won
                }
            }
        }
    }

    /// The regions that need `key`'s winning version written into them now:
    /// their stream has been read to its end once and shows another image,
    /// and no write to them is in flight.
    /// A region whose stream shows the winner's image already is recorded as
    /// holding the winner, without a write.
    pub fn regions_needing(&mut self, key: &ItemKey) -> Vec<String> {
        let Some(state) = self.items.get_mut(key) else {
            return Vec::new();
        };
        let Some(winner) = state.winner.clone() else {
            return Vec::new();
        };
        let mut needing = Vec::new();
        for region in &self.regions {
            let replica = state.replicas.entry(region.clone()).or_default();
            if !self.synced.contains(region) || !replica.in_flight.is_empty() {
                continue;
            }
            let holds_image = replica.holds.as_ref().and_then(|w| w.image.as_ref());
            if replica.holds.as_ref() == Some(&winner) {
                continue;
            }
            if holds_image == winner.image.as_ref() {
                replica.holds = Some(winner.clone());
                continue;
            }
            needing.push(region.clone());
        }
        needing
    }

    /// Starts writing `key`'s winner into `region`, if it still needs it:
    /// the write to make, now counted in flight until it shows on `region`'s
    /// stream or [`Self::caught_up`] finds it never will.
    pub fn start_write(&mut self, region: &str, key: &ItemKey) -> Option<Write> {
        if !self.regions_needing(key).iter().any(|r| r == region) {
            return None;
        }
        let state = self.items.get_mut(key)?;
        let write = state.winner.clone()?;
        state
            .replicas
            .entry(region.to_owned())
            .or_default()
            .in_flight
            .push_back(InFlight {
                write: write.clone(),
                completed_at_poll: None,
            });
        Some(write)
    }

    /// The write started by [`Self::start_write`] has completed, during poll
    /// number `poll` of `region`'s stream.
    pub fn write_completed(&mut self, region: &str, key: &ItemKey, write: &Write, poll: u64) {
        if let Some(f) = self.in_flight_mut(region, key, write) {
            f.completed_at_poll = Some(poll);
        }
    }

    /// The write started by [`Self::start_write`] failed: no longer in flight
    /// (ask [`Self::regions_needing`] again to retry it).
    pub fn write_failed(&mut self, region: &str, key: &ItemKey, write: &Write) {
        if let Some(replica) = self
            .items
            .get_mut(key)
            .and_then(|s| s.replicas.get_mut(region))
        {
            if let Some(at) = replica
                .in_flight
                .iter()
                .position(|f| f.write == *write && f.completed_at_poll.is_none())
            {
                replica.in_flight.remove(at);
            }
        }
    }

    /// `region`'s stream has been read to its end by poll number `poll`.
    /// Writes that completed before that poll began and never showed on the
    /// stream made no record (DynamoDB writes none for an item left as it
    /// was, moto none for deleting an absent item): they are no longer in
    /// flight. Returns the keys concerned, to plan again: every key, the
    /// first time (nothing was written into the region before).
    pub fn caught_up(&mut self, region: &str, poll: u64) -> Vec<ItemKey> {
        if self.synced.insert(region.to_owned()) {
            return self.items.keys().cloned().collect();
        }
        let mut keys = Vec::new();
        for (key, state) in &mut self.items {
            let Some(replica) = state.replicas.get_mut(region) else {
                continue;
            };
            let before = replica.in_flight.len();
            replica
                .in_flight
                .retain(|f| f.completed_at_poll.is_none_or(|p| p >= poll));
            if replica.in_flight.len() != before {
                keys.push(key.clone());
            }
        }
        keys
    }

    /// How many items `region` wrote concurrently with another region (a
    /// write made without the other's version, whichever won).
    pub fn contested_in(&self, region: &str) -> usize {
        self.contested.iter().filter(|(r, _)| r == region).count()
    }

    /// Whether every region's stream has been read to its end once.
    pub fn synced(&self) -> bool {
        self.regions.iter().all(|r| self.synced.contains(r))
    }

    /// Whether any write is in flight.
    pub fn writes_in_flight(&self) -> usize {
        self.items
            .values()
            .flat_map(|s| s.replicas.values())
            .map(|r| r.in_flight.len())
            .sum()
    }

    /// The version `region`'s stream last showed for `key`.
    pub fn held(&self, region: &str, key: &ItemKey) -> Option<&Write> {
        self.items.get(key)?.replicas.get(region)?.holds.as_ref()
    }

    /// The winning version of `key`.
    pub fn winner(&self, key: &ItemKey) -> Option<&Write> {
        self.items.get(key)?.winner.as_ref()
    }

    fn in_flight_mut(
        &mut self,
        region: &str,
        key: &ItemKey,
        write: &Write,
    ) -> Option<&mut InFlight> {
        self.items
            .get_mut(key)?
            .replicas
            .get_mut(region)?
            .in_flight
            .iter_mut()
            .find(|f| f.write == *write && f.completed_at_poll.is_none())
    }
}

#[cfg(test)]
mod tests;
