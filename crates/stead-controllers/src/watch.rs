//! The cluster-wide watch every controller's run loop merges its inputs from.

use futures::StreamExt;
use futures::stream::BoxStream;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};

/// One watch event of `K` (boxed: the objects are large and several kinds share one enum).
pub type Watched<K> = Box<Result<Event<K>, watcher::Error>>;

/// Every `K` in all namespaces: the initial list, then changes, re-listing with back-off after
/// errors.
pub fn watch_all<K>(client: &Client) -> BoxStream<'static, Watched<K>>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K: Send + 'static,
{
    watcher::watcher(Api::<K>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .map(Box::new)
        .boxed()
}
