//! Waiting for Deployments to roll out: `observedGeneration >= generation` and
//! `updatedReplicas == availableReplicas == replicas`, polled with one LIST per
//! namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, ListParams};

use super::retry::{RetryPolicy, retry};
use super::{Error, Result};
use crate::plan::ObjectKey;

/// How long and how often to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthOptions {
    pub timeout: Duration,
    pub interval: Duration,
    pub retry: RetryPolicy,
}

impl Default for HealthOptions {
    fn default() -> Self {
        HealthOptions {
            timeout: Duration::from_secs(300),
            interval: Duration::from_secs(2),
            retry: RetryPolicy::default(),
        }
    }
}

/// The rollout state of one Deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentHealth {
    pub namespace: String,
    pub name: String,
    /// False when the Deployment was not found.
    pub found: bool,
    pub generation: i64,
    pub observed_generation: i64,
    pub replicas: i32,
    pub updated: i32,
    pub available: i32,
}

impl DeploymentHealth {
    /// True when the latest generation is fully rolled out and available.
    pub fn is_ready(&self) -> bool {
        self.found
            && self.observed_generation >= self.generation
            && self.updated == self.replicas
            && self.available == self.replicas
    }

    fn of(namespace: &str, name: &str, deployment: Option<&Deployment>) -> Self {
        let status = deployment.and_then(|d| d.status.as_ref());
        DeploymentHealth {
            namespace: namespace.to_string(),
            name: name.to_string(),
            found: deployment.is_some(),
            generation: deployment.and_then(|d| d.metadata.generation).unwrap_or(0),
            observed_generation: status.and_then(|s| s.observed_generation).unwrap_or(0),
            replicas: deployment
                .and_then(|d| d.spec.as_ref())
                .and_then(|s| s.replicas)
                .unwrap_or(1),
            updated: status.and_then(|s| s.updated_replicas).unwrap_or(0),
            available: status.and_then(|s| s.available_replicas).unwrap_or(0),
        }
    }
}

impl fmt::Display for DeploymentHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Deployment {}/{}: ", self.namespace, self.name)?;
        if !self.found {
            return write!(f, "not found");
        }
        write!(
            f,
            "{}/{} updated, {}/{} available",
            self.updated, self.replicas, self.available, self.replicas
        )?;
        if self.observed_generation < self.generation {
            write!(
                f,
                ", generation {} not yet observed (at {})",
                self.generation, self.observed_generation
            )?;
        }
        Ok(())
    }
}

/// Polls until every Deployment in `deployments` is ready, calling `progress` after each
/// poll. [`Error::NotReady`] names those still not ready at the timeout.
pub async fn wait_healthy(
    client: &Client,
    deployments: &[ObjectKey],
    options: &HealthOptions,
    mut progress: impl FnMut(&[DeploymentHealth]),
) -> Result<Vec<DeploymentHealth>> {
    let mut last: Vec<DeploymentHealth> = Vec::new();
    let poll = async {
        loop {
            last = poll_once(client, deployments, &options.retry).await?;
            progress(&last);
            if last.iter().all(DeploymentHealth::is_ready) {
                return Ok(());
            }
            tokio::time::sleep(options.interval).await;
        }
    };
    match tokio::time::timeout(options.timeout, poll).await {
        Ok(Ok(())) => Ok(last),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(Error::NotReady {
            timeout: options.timeout,
            deployments: last.into_iter().filter(|d| !d.is_ready()).collect(),
        }),
    }
}

async fn poll_once(
    client: &Client,
    deployments: &[ObjectKey],
    policy: &RetryPolicy,
) -> Result<Vec<DeploymentHealth>> {
    let namespaces: BTreeSet<&str> = deployments.iter().map(|k| k.namespace.as_str()).collect();
    // The keys name the Deployments; the label only narrows the list to modelship's.
    let managed = format!(
        "{}={}",
        crate::meta::LABEL_MANAGED_BY,
        crate::meta::MANAGED_BY_VALUE
    );
    let params = ListParams::default().labels(&managed);
    let mut found: BTreeMap<(String, String), Deployment> = BTreeMap::new();
    for namespace in namespaces {
        let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
        let list = retry(policy, || api.list(&params))
            .await
            .map_err(|source| Error::Health {
                namespace: namespace.to_string(),
                source,
            })?;
        for deployment in list.items {
            let name = deployment.metadata.name.clone().unwrap_or_default();
            found.insert((namespace.to_string(), name), deployment);
        }
    }
    Ok(deployments
        .iter()
        .map(|k| {
            let deployment = found.get(&(k.namespace.clone(), k.name.clone()));
            DeploymentHealth::of(&k.namespace, &k.name, deployment)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(
        generation: i64,
        observed: i64,
        replicas: i32,
        updated: i32,
        available: i32,
    ) -> DeploymentHealth {
        DeploymentHealth {
            namespace: "ns".into(),
            name: "svc".into(),
            found: true,
            generation,
            observed_generation: observed,
            replicas,
            updated,
            available,
        }
    }

    #[test]
    fn readiness_needs_observed_generation_and_all_replicas() {
        assert!(health(2, 2, 3, 3, 3).is_ready());
        assert!(health(2, 3, 3, 3, 3).is_ready());
        assert!(!health(3, 2, 3, 3, 3).is_ready());
        assert!(!health(2, 2, 3, 2, 3).is_ready());
        assert!(!health(2, 2, 3, 3, 1).is_ready());
        let missing = DeploymentHealth {
            found: false,
            ..health(0, 0, 1, 1, 1)
        };
        assert!(!missing.is_ready());
    }

    #[test]
    fn status_names_the_deployment_and_what_is_missing() {
        assert_eq!(
            health(4, 3, 2, 1, 0).to_string(),
            "Deployment ns/svc: 1/2 updated, 0/2 available, generation 4 not yet observed (at 3)"
        );
        let missing = DeploymentHealth {
            found: false,
            ..health(0, 0, 1, 0, 0)
        };
        assert_eq!(missing.to_string(), "Deployment ns/svc: not found");
    }
}
