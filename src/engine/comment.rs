//! The Markdown of a plan, as a pull-request comment shows it: `modelship plan -o
//! markdown`, `modelship pr comment` and the daemon's plan of a pull request print the
//! same, with the GPU and cost figures of the repository's catalog.

use crate::engine::Prepared;
use crate::engine::rollout::RolloutReport;
use crate::plan::render::capacity::{self, Peak, PriceList};
use crate::plan::render::{CommentContext, Links, comment};
use crate::plan::{LiveState, Plan};

/// The comment of a plan of `loaded` against `live`, with the canary rollouts the plan
/// advanced (`rollouts`: their peak GPUs and cost while they run); `links` make
/// diagnostics links to a commit.
pub fn markdown(
    loaded: &Prepared,
    plan: &Plan,
    live: &dyn LiveState,
    rollouts: &RolloutReport,
    links: Option<Links>,
) -> String {
    let prices = PriceList::from_catalog(&loaded.repository.config.spec.gpu.catalog);
    let capacities = capacity::estimate(&loaded.desired, live, &prices);
    let mut context = CommentContext::new(&loaded.repository, capacities);
    context.links = links;
    context
        .deferred_policies
        .clone_from(&loaded.deferred_policies);
    for rollout in &rollouts.services {
        let footprint = &rollout.footprint;
        // A rollout that starts or runs at this plan, on GPUs.
        if footprint.peak_gpus > 0 && rollout.in_plan() {
            context.peaks.insert(
                rollout.id.clone(),
                Peak {
                    gpus: u64::from(footprint.peak_gpus),
                    hourly: footprint.peak_hourly_cost.unwrap_or(0.0),
                },
            );
        }
    }
    comment(plan, &context)
}
