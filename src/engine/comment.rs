//! The Markdown of a plan, as a pull-request comment shows it: `modelship plan -o
//! markdown`, `modelship pr comment` and the daemon's plan of a pull request print the
//! same, with the GPU and cost figures of the repository's catalog.

use crate::engine::Prepared;
use crate::plan::render::capacity::{self, PriceList};
use crate::plan::render::{CommentContext, Links, comment};
use crate::plan::{LiveState, Plan};

/// The comment of a plan of `loaded` against `live`; `links` make diagnostics links to a
/// commit.
pub fn markdown(
    loaded: &Prepared,
    plan: &Plan,
    live: &dyn LiveState,
    links: Option<Links>,
) -> String {
    let prices = PriceList::from_catalog(&loaded.repository.config.spec.gpu.catalog);
    let capacities = capacity::estimate(&loaded.desired, live, &prices);
    let mut context = CommentContext::new(&loaded.repository, capacities);
    context.links = links;
    comment(plan, &context)
}
