//! What the HTTP handlers share: the router (`mod.rs`) and the pull-request deliveries
//! (`hooks.rs`) both read it, so neither imports the other's state.

use std::sync::Arc;

use tokio::sync::{Notify, RwLock};

use super::metrics::Metrics;
use super::status::Board;
use crate::daemon::pulls::PullQueue;
use crate::forge::events::Deliveries;
use crate::source::Secret;

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    pub board: Arc<RwLock<Board>>,
    pub metrics: Arc<Metrics>,
    /// Wakes the source task.
    pub trigger: Arc<Notify>,
    /// The webhook secret; without one, `/hooks/github` answers 404.
    pub webhook_secret: Option<Secret>,
    /// The followed branch (pushes elsewhere are ignored).
    pub branch: String,
    /// Where pull-request events go; `None` without GitHub credentials.
    pub pulls: Option<PullQueue>,
    /// `X-GitHub-Delivery` ids already handled.
    pub deliveries: Arc<std::sync::Mutex<Deliveries>>,
}
