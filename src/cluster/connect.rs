//! Connecting to a cluster the way kubectl does: an explicit kubeconfig file, else
//! `$KUBECONFIG` or `~/.kube/config`, else the in-cluster service account.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::{Error, Result};

/// Where the connection comes from (`--kubeconfig`, `--context`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    /// A kubeconfig file; `None` resolves like kubectl.
    pub kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig; `None` is its current context.
    pub context: Option<String>,
}

/// Resolves the configuration and builds a client.
pub async fn connect(options: &ConnectOptions) -> Result<Client> {
    let config = config(options).await?;
    Client::try_from(config).map_err(Error::Client)
}

async fn config(options: &ConnectOptions) -> Result<Config> {
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    match (&options.kubeconfig, &options.context) {
        (Some(path), _) => {
            let kubeconfig =
                Kubeconfig::read_from(path).map_err(|e| Error::Config(e.to_string()))?;
            Config::from_custom_kubeconfig(kubeconfig, &kube_options)
                .await
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))
        }
        (None, Some(_)) => Config::from_kubeconfig(&kube_options)
            .await
            .map_err(|e| Error::Config(e.to_string())),
        (None, None) => Config::infer()
            .await
            .map_err(|e| Error::Config(e.to_string())),
    }
}
