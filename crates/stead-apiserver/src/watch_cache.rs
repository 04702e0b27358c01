//! The watch cache: one storage watch per resource type, each change decoded and encoded once,
//! then fanned out to every watcher of that type (upstream's "cacher", reduced to what watches
//! need).
//!
//! A [`Feed`] keeps the most recent changes in a ring so a watcher that starts at a revision the
//! ring still covers replays from memory; older starts go to the store directly
//! ([`WatchHub::subscribe`] answers `None`). A watcher that falls behind the broadcast is dropped;
//! its client re-watches from the last revision it saw, as every Kubernetes client does.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use stead_api::ResourceType;
use stead_storage::{EventType, Storage, WatchEvent};
use tokio::sync::broadcast;

use crate::registry::codec;

/// How many recent changes a feed keeps for replay.
const RING: usize = 4096;
/// How many changes a slow watcher may lag before it is dropped.
const BROADCAST: usize = 4096;

/// One change to one object, decoded and encoded once for all watchers.
#[derive(Debug)]
pub struct Change {
    pub kind: EventType,
    pub key: String,
    pub revision: u64,
    /// The object after the change (for deletes, its last state), in the resource's form.
    pub object: Value,
    /// `object` as compact JSON.
    pub json: Bytes,
    prev_bytes: Option<Bytes>,
    rt: &'static ResourceType,
    prev: OnceLock<Option<Value>>,
}

impl Change {
    pub fn from_event(rt: &'static ResourceType, ev: WatchEvent) -> Option<Self> {
        let object = codec::decode_stored(rt, &ev.value, ev.revision).ok()?;
        let json = Bytes::from(serde_json::to_vec(&object).ok()?);
        Some(Self {
            kind: ev.kind,
            key: ev.key,
            revision: ev.revision,
            object,
            json,
            prev_bytes: ev.prev_value,
            rt,
            prev: OnceLock::new(),
        })
    }

    /// The object before the change, decoded on first use (only selector watches need it).
    pub fn prev(&self) -> Option<&Value> {
        self.prev
            .get_or_init(|| {
                self.prev_bytes
                    .as_ref()
                    .and_then(|b| codec::decode_stored(self.rt, b, self.revision).ok())
            })
            .as_ref()
    }
}

struct Feed {
    tx: broadcast::Sender<Arc<Change>>,
    /// Recent changes, oldest first, and the revision after which the ring is complete.
    ring: Mutex<(VecDeque<Arc<Change>>, u64)>,
}

type Feeds = HashMap<(&'static str, &'static str), Arc<Feed>>;

/// Live feeds by resource type.
#[derive(Default)]
pub struct WatchHub {
    feeds: Arc<Mutex<Feeds>>,
}

/// A watcher's view of a feed: the changes after its start revision that the ring held, then the
/// live broadcast (which closes if the feed's store watch ends).
pub struct Subscription {
    pub replay: Vec<Arc<Change>>,
    pub live: broadcast::Receiver<Arc<Change>>,
}

impl WatchHub {
    /// Changes of `rt` after revision `after`, if the feed covers them. Starts the feed on first
    /// use.
    pub async fn subscribe(
        &self,
        store: &Arc<dyn Storage>,
        rt: &'static ResourceType,
        after: u64,
    ) -> Option<Subscription> {
        let feed = self.feed(store, rt).await?;
        let live = feed.tx.subscribe();
        let ring = feed.ring.lock().expect("ring lock");
        if after < ring.1 {
            return None;
        }
        let replay = ring
            .0
            .iter()
            .filter(|c| c.revision > after)
            .cloned()
            .collect();
        Some(Subscription { replay, live })
    }

    async fn feed(&self, store: &Arc<dyn Storage>, rt: &'static ResourceType) -> Option<Arc<Feed>> {
        let id = (rt.group, rt.plural);
        if let Some(f) = self.feeds.lock().expect("feeds lock").get(&id) {
            return Some(f.clone());
        }
        let start = store.current_revision().await.ok()?;
        let mut stream = store.watch(&rt.key_prefix(), start).await.ok()?;
        let (tx, _) = broadcast::channel(BROADCAST);
        let feed = Arc::new(Feed {
            tx,
            ring: Mutex::new((VecDeque::new(), start)),
        });
        {
            let mut feeds = self.feeds.lock().expect("feeds lock");
            if let Some(existing) = feeds.get(&id) {
                // Another request started it meanwhile; ours is dropped with its stream.
                return Some(existing.clone());
            }
            feeds.insert(id, feed.clone());
        }
        let feeds = self.feeds.clone();
        let mine = feed.clone();
        tokio::spawn(async move {
            while let Some(Ok(ev)) = stream.next().await {
                let Some(change) = Change::from_event(rt, ev).map(Arc::new) else {
                    continue;
                };
                {
                    let mut ring = mine.ring.lock().expect("ring lock");
                    ring.0.push_back(change.clone());
                    while ring.0.len() > RING {
                        if let Some(old) = ring.0.pop_front() {
                            ring.1 = old.revision;
                        }
                    }
                }
                let _ = mine.tx.send(change);
            }
            // The store watch ended: forget the feed; dropping it closes every subscriber, whose
            // clients re-watch from their last revision.
            let mut feeds = feeds.lock().expect("feeds lock");
            if feeds.get(&id).is_some_and(|f| Arc::ptr_eq(f, &mine)) {
                feeds.remove(&id);
            }
        });
        Some(feed)
    }
}
