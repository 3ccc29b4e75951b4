//! Who holds the objects a daemon step would create: the watch cache first (an object of
//! another service of this instance, or one of the service's own that a step wrote ahead
//! of its watch event), then the cluster for the rest ([`ClusterOwners`]).

use futures::future::BoxFuture;
use serde_json::Value;

use super::cache::LiveCache;
use crate::cluster;
use crate::engine::ClusterOwners;
use crate::engine::owners::{Owners, Wanted};

/// The daemon's [`Owners`]: its cache, then the API.
pub struct CacheOwners {
    pub cache: LiveCache,
    pub cluster: ClusterOwners,
}

impl Owners for CacheOwners {
    fn find<'a>(
        &'a self,
        wanted: &'a [Wanted],
    ) -> BoxFuture<'a, Result<Vec<Value>, cluster::Error>> {
        Box::pin(async move {
            let mut found = Vec::new();
            let mut rest = Vec::new();
            {
                let map = self.cache.read().await;
                for item in wanted {
                    match map.object(&item.key) {
                        Some(object) => found.push(object),
                        None => rest.push(item.clone()),
                    }
                }
            }
            found.extend(self.cluster.find(&rest).await?);
            Ok(found)
        })
    }
}
