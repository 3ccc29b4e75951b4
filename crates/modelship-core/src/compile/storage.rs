//! Model storage: how `model.uri` becomes volumes, mounts and a loader init container.
//!
//! ```text
//! pvc://claim/path        ──▶ PVC volume (read-only) + mount at /mnt/models, subPath path
//! s3:// gs:// hf:// https:// ──▶ emptyDir (sizeLimit model.size) filled by init container
//!                              `model-loader` [uri, /mnt/models], envFrom credentialsSecret
//! oci://ref               ──▶ image volume `reference: ref`, mounted at /mnt/models
//! ```

use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvFromSource, ImageVolumeSource,
    PersistentVolumeClaimVolumeSource, SecretEnvSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::pod::{container_security_context, loader_resources};
use super::{CompileError, Ctx};

/// Where the server finds the model.
pub(crate) const MODEL_PATH: &str = "/mnt/models";
const MODEL_VOLUME: &str = "model";
const LOADER_NAME: &str = "model-loader";

/// A parsed `model.uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ModelSource<'a> {
    /// A PersistentVolumeClaim and the path inside it (empty: the whole claim).
    Pvc { claim: &'a str, path: &'a str },
    /// Downloaded by the loader init container.
    Download { uri: &'a str },
    /// An OCI image or artifact mounted as a volume.
    Oci { reference: &'a str },
}

/// Parses `model.uri` by scheme.
pub(crate) fn parse_uri(uri: &str) -> Result<ModelSource<'_>, CompileError> {
    let bad = |reason| CompileError::BadUri {
        uri: uri.to_string(),
        reason,
    };
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(CompileError::UnknownScheme {
            uri: uri.to_string(),
        });
    };
    match scheme {
        "pvc" => {
            let (claim, path) = rest.split_once('/').unwrap_or((rest, ""));
            if claim.is_empty() {
                return Err(bad("pvc:// needs a claim name"));
            }
            Ok(ModelSource::Pvc {
                claim,
                path: path.trim_matches('/'),
            })
        }
        "s3" | "gs" | "hf" | "https" => {
            if rest.is_empty() {
                return Err(bad("the location after the scheme is empty"));
            }
            Ok(ModelSource::Download { uri })
        }
        "oci" => {
            if rest.is_empty() {
                return Err(bad("oci:// needs an image reference"));
            }
            Ok(ModelSource::Oci { reference: rest })
        }
        _ => Err(CompileError::UnknownScheme {
            uri: uri.to_string(),
        }),
    }
}

/// What the model storage adds to a pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ModelStorage {
    pub volume: Option<Volume>,
    /// The server container's mount of the model.
    pub mount: Option<VolumeMount>,
    pub init_container: Option<Container>,
}

/// The storage of the service's model; empty when there is no `model.uri`.
pub(crate) fn model_storage(ctx: &Ctx) -> Result<ModelStorage, CompileError> {
    let Some(uri) = ctx.spec.model.uri.as_deref() else {
        return Ok(ModelStorage::default());
    };
    let server_mount = |sub_path: Option<String>| VolumeMount {
        name: MODEL_VOLUME.to_string(),
        mount_path: MODEL_PATH.to_string(),
        read_only: Some(true),
        sub_path,
        ..VolumeMount::default()
    };
    let storage = match parse_uri(uri)? {
        ModelSource::Pvc { claim, path } => ModelStorage {
            volume: Some(Volume {
                name: MODEL_VOLUME.to_string(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.to_string(),
                    read_only: Some(true),
                }),
                ..Volume::default()
            }),
            mount: Some(server_mount((!path.is_empty()).then(|| path.to_string()))),
            init_container: None,
        },
        ModelSource::Download { uri } => ModelStorage {
            volume: Some(Volume {
                name: MODEL_VOLUME.to_string(),
                empty_dir: Some(EmptyDirVolumeSource {
                    medium: None,
                    size_limit: ctx
                        .spec
                        .model
                        .size
                        .as_ref()
                        .map(|s| Quantity(s.as_str().to_string())),
                }),
                ..Volume::default()
            }),
            mount: Some(server_mount(None)),
            init_container: Some(loader_container(ctx, uri)?),
        },
        ModelSource::Oci { reference } => ModelStorage {
            volume: Some(Volume {
                name: MODEL_VOLUME.to_string(),
                image: Some(ImageVolumeSource {
                    reference: Some(reference.to_string()),
                    pull_policy: Some("IfNotPresent".to_string()),
                }),
                ..Volume::default()
            }),
            mount: Some(server_mount(None)),
            init_container: None,
        },
    };
    Ok(storage)
}

/// The init container that downloads the model into the `model` volume.
fn loader_container(ctx: &Ctx, uri: &str) -> Result<Container, CompileError> {
    let loader =
        ctx.config
            .spec
            .model_loader
            .as_ref()
            .ok_or_else(|| CompileError::NoModelLoader {
                uri: uri.to_string(),
            })?;
    let env_from = ctx.spec.model.credentials_secret.as_ref().map(|secret| {
        vec![EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: secret.clone(),
                optional: None,
            }),
            ..EnvFromSource::default()
        }]
    });
    Ok(Container {
        name: LOADER_NAME.to_string(),
        image: Some(loader.image.clone()),
        args: Some(vec![uri.to_string(), MODEL_PATH.to_string()]),
        env_from,
        resources: Some(loader_resources(ctx)),
        security_context: Some(container_security_context(ctx)),
        volume_mounts: Some(vec![
            VolumeMount {
                name: MODEL_VOLUME.to_string(),
                mount_path: MODEL_PATH.to_string(),
                ..VolumeMount::default()
            },
            super::pod::tmp_mount(),
        ]),
        ..Container::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::testutil::{cpu_service, ctx_for, loaded, with_loader};
    use crate::spec::RepositoryConfig;

    #[test]
    fn uris_parse_by_scheme() {
        let cases = [
            (
                "pvc://models/fraud/1.4",
                Ok(ModelSource::Pvc {
                    claim: "models",
                    path: "fraud/1.4",
                }),
            ),
            (
                "pvc://models",
                Ok(ModelSource::Pvc {
                    claim: "models",
                    path: "",
                }),
            ),
            ("s3://b/k", Ok(ModelSource::Download { uri: "s3://b/k" })),
            ("gs://b/k", Ok(ModelSource::Download { uri: "gs://b/k" })),
            (
                "hf://org/model",
                Ok(ModelSource::Download {
                    uri: "hf://org/model",
                }),
            ),
            (
                "https://x.example.com/m.onnx",
                Ok(ModelSource::Download {
                    uri: "https://x.example.com/m.onnx",
                }),
            ),
            (
                "oci://registry.example.com/models/fraud:1.4",
                Ok(ModelSource::Oci {
                    reference: "registry.example.com/models/fraud:1.4",
                }),
            ),
        ];
        for (uri, expected) in cases {
            assert_eq!(parse_uri(uri), expected, "{uri}");
        }
    }

    #[test]
    fn bad_uris_are_errors() {
        for uri in ["ftp://x/y", "models/fraud", "", "http://x/y"] {
            assert!(
                matches!(parse_uri(uri), Err(CompileError::UnknownScheme { .. })),
                "{uri}"
            );
        }
        for uri in ["pvc://", "pvc:///path", "s3://", "oci://"] {
            assert!(
                matches!(parse_uri(uri), Err(CompileError::BadUri { .. })),
                "{uri}"
            );
        }
    }

    fn storage_for(
        uri: Option<&str>,
        config: &RepositoryConfig,
    ) -> Result<ModelStorage, CompileError> {
        let mut svc = cpu_service("m");
        svc.spec.model.uri = uri.map(str::to_string);
        svc.spec.model.size = Some("20Gi".parse().unwrap());
        svc.spec.model.credentials_secret = Some("s3-creds".into());
        let loaded = loaded(svc);
        model_storage(&ctx_for(&loaded, config))
    }

    #[test]
    fn pvc_is_mounted_read_only_with_sub_path() {
        let storage = storage_for(
            Some("pvc://models/fraud/1.4/"),
            &RepositoryConfig::default(),
        )
        .unwrap();
        let volume = storage.volume.unwrap();
        let pvc = volume.persistent_volume_claim.unwrap();
        assert_eq!(pvc.claim_name, "models");
        assert_eq!(pvc.read_only, Some(true));
        let mount = storage.mount.unwrap();
        assert_eq!(mount.mount_path, "/mnt/models");
        assert_eq!(mount.sub_path.as_deref(), Some("fraud/1.4"));
        assert_eq!(mount.read_only, Some(true));
        assert!(storage.init_container.is_none());
    }

    #[test]
    fn downloads_use_a_sized_empty_dir_and_the_loader() {
        let config = with_loader(RepositoryConfig::default());
        let storage = storage_for(Some("s3://models/fraud"), &config).unwrap();
        let empty_dir = storage.volume.unwrap().empty_dir.unwrap();
        assert_eq!(empty_dir.size_limit, Some(Quantity("20Gi".into())));
        let loader = storage.init_container.unwrap();
        assert_eq!(loader.name, "model-loader");
        assert_eq!(
            loader.image.as_deref(),
            Some("registry.example.com/model-loader:1.0")
        );
        assert_eq!(
            loader.args,
            Some(vec![
                "s3://models/fraud".to_string(),
                "/mnt/models".to_string()
            ])
        );
        let env_from = loader.env_from.unwrap();
        assert_eq!(env_from[0].secret_ref.as_ref().unwrap().name, "s3-creds");
        let resources = loader.resources.unwrap();
        let requests = resources.requests.unwrap();
        let limits = resources.limits.unwrap();
        assert_eq!(
            limits.get("memory"),
            requests.get("memory"),
            "a quota on limits.memory admits the loader"
        );
        assert!(requests.contains_key("cpu"));
        assert_eq!(limits.len(), 1, "no CPU or GPU limit on the loader");
        let mounts = loader.volume_mounts.unwrap();
        assert_eq!(mounts[0].name, "model");
        assert_eq!(mounts[0].read_only, None);
        assert_eq!(storage.mount.unwrap().read_only, Some(true));
    }

    #[test]
    fn downloads_without_a_loader_image_are_errors() {
        let err = storage_for(Some("hf://org/m"), &RepositoryConfig::default()).unwrap_err();
        assert!(matches!(err, CompileError::NoModelLoader { .. }));
    }

    #[test]
    fn oci_is_an_image_volume() {
        let storage = storage_for(
            Some("oci://r.example.com/m:1"),
            &RepositoryConfig::default(),
        )
        .unwrap();
        let image = storage.volume.unwrap().image.unwrap();
        assert_eq!(image.reference.as_deref(), Some("r.example.com/m:1"));
        assert_eq!(storage.mount.unwrap().mount_path, "/mnt/models");
        assert!(storage.init_container.is_none());
    }

    #[test]
    fn no_uri_means_no_storage() {
        let storage = storage_for(None, &RepositoryConfig::default()).unwrap();
        assert_eq!(storage, ModelStorage::default());
    }
}
