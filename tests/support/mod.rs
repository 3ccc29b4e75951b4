//! The support of the integration tests, one tree for every test binary: each declares
//! `mod support;` and uses what it needs (hence the allowances below: no binary uses all
//! of it, nor every re-export). `tests/README.md` says which tier each test file belongs to.
//!
//! | module | what it owns |
//! |---|---|
//! | [`poll`] | every wait: `eventually`, `within`, `wait_for`, each with a deadline |
//! | [`repo`] | the checkout, example-repo and writable copies of it |
//! | [`binary`] | the `modelship` binary, run the one way the tests run it |
//! | [`target`] | the cluster of a test: the sandbox, and the real one of `MODELSHIP_TEST_KUBECONFIG` |
//! | [`real`] | the real control plane: kubectl, prerequisites, the real-only tier's helpers |
//! | [`engine`] | loading, planning and applying a repository through the engine |
//! | [`daemon`] | `daemon::run` in the test, a bare Git remote, its HTTP endpoints |
//! | [`pulls`] | the daemon on pull requests: deliveries, the world of those tests |
//! | [`forge`] | the GitHub REST double |
//! | [`git`] | real Git servers (sshd, `git http-backend` over TLS) and their bare remotes |
//! | [`prometheus`] | a real Prometheus and the exporter it scrapes |
//! | [`rollout`] | the end-to-end rollout tests' environment and readers |
//! | [`sandbox`] | object builders and error inspection for the sandbox's own tests |
//! | [`spec`] | the table-driven spec rule cases |
//! | [`schema`] | strict schema validation with `kubernetes-validate` |
//!
//! The items of [`poll`], [`repo`] and [`engine`] are also at this root (`use
//! support::*;`).
#![allow(dead_code, unused_imports)]

pub mod binary;
pub mod daemon;
pub mod engine;
pub mod forge;
pub mod git;
pub mod poll;
pub mod prometheus;
pub mod pulls;
pub mod real;
pub mod repo;
pub mod rollout;
pub mod sandbox;
pub mod schema;
pub mod spec;
pub mod target;

pub use engine::*;
pub use poll::*;
pub use repo::*;
