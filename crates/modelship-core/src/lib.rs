//! modelship's core: everything that decides, and nothing that does I/O.
//!
//! ```text
//! files ──spec──▶ Repository ──compile──▶ DesiredSet ──state──▶ DesiredState
//!                      policy (CEL over specs and objects, with live context)
//!        DesiredState x LiveState ──plan──▶ Plan (diffs, prune guard, renderings)
//! ```
//!
//! No network, no clock, no filesystem beyond what is handed in, and no client, runtime or
//! network crate in its dependency tree (a test checks `cargo tree`). The `modelship`
//! crate's engine drives it against a cluster.

pub mod budget;
pub mod compile;
pub mod kinds;
pub mod meta;
pub mod ownership;
pub mod plan;
pub mod policy;
pub mod quantity;
pub mod rollout;
pub mod service_id;
pub mod spec;
pub mod state;
