//! The user-facing document types of SPEC.md: `ModelService` and `RepositoryConfig`.
//!
//! These are plain data: field names follow the YAML (camelCase), optional fields are
//! `Option` or empty collections, and defaults that depend on other fields (for example the
//! scale-down stabilization of GPU services) are resolved by `compile`, not here. Scalar
//! formats that users get wrong (quantities, durations) are validated newtypes, so a value
//! that reached a `ModelService` is known to parse.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::units::{Duration, Quantity};

/// The only `apiVersion` modelship reads.
pub const API_VERSION: &str = "modelship.dev/v1alpha1";

/// `kind: ModelService`: one model server and everything around it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelService {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: ModelServiceSpec,
}

/// The metadata of a modelship document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelServiceSpec {
    /// Contact for the service; shown in PR comments, label-safe form on objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub model: ModelSpec,
    pub runtime: RuntimeSpec,
    pub resources: ResourcesSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuSpec>,
    /// Default 1; ignored when `autoscaling` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption: Option<DisruptionSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecuritySpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    pub version: String,
    /// `pvc://`, `s3://`, `gs://`, `hf://`, `https://` or `oci://`; checked by validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ModelFormat>,
    /// Sizes the model volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// Default 5m; sizes the startup probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelFormat {
    Onnx,
    Pytorch,
    Tensorflow,
    Sklearn,
    Xgboost,
    Huggingface,
    Custom,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeSpec {
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Plain values only; secrets come through `envFromSecrets`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from_secrets: Vec<String>,
    /// Default 8080.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_port: Option<u16>,
    /// Default: `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_port: Option<u16>,
    /// Default `/health`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_path: Option<String>,
    /// Default: `healthPath`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourcesSpec {
    /// CPU request. No limit unless `cpuLimit` is set.
    pub cpu: Quantity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit: Option<Quantity>,
    /// Memory request and limit.
    pub memory: Quantity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GpuSpec {
    /// 1..=16.
    pub count: u32,
    /// Keys of the GPU catalog of RepositoryConfig.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub gpu_type: Option<GpuTypes>,
    /// A MIG profile such as `1g.10gb`: resource `nvidia.com/mig-<profile>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// Time-sliced: the shared resource name of RepositoryConfig.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    /// Size of /dev/shm; default 1Gi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm: Option<Quantity>,
}

/// `gpu.type`: one catalog key or a list of acceptable keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum GpuTypes {
    One(String),
    Any(Vec<String>),
}

impl GpuTypes {
    /// The catalog keys, in the order written.
    pub fn keys(&self) -> &[String] {
        match self {
            GpuTypes::One(key) => std::slice::from_ref(key),
            GpuTypes::Any(keys) => keys,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoscalingSpec {
    /// Default 1. 0 only with an external metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<u32>,
    pub max_replicas: u32,
    pub metrics: Vec<MetricSpec>,
    /// Default 5m, 10m for GPU services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_stabilization: Option<Duration>,
    /// Default 0s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up_stabilization: Option<Duration>,
}

/// One autoscaling metric: a mapping with exactly one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum MetricSpec {
    /// Average CPU utilization, percent of the request.
    Cpu(u32),
    /// Average memory utilization, percent of the request.
    Memory(u32),
    /// Per-pod average; a Pods metric named by `metricNames.requestsPerSecond`.
    RequestsPerSecond(Quantity),
    /// Per-pod average; a Pods metric named by `metricNames.queueLength`.
    QueueLength(Quantity),
    /// Per-pod average percent; a Pods metric named by `metricNames.gpuUtilization`.
    GpuUtilization(u32),
    Custom(CustomMetric),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomMetric {
    pub name: String,
    #[serde(rename = "type")]
    pub metric_type: CustomMetricType,
    /// An average value per pod (pods) or a total value (external).
    pub target: Quantity,
    /// External metrics only: label selector of the metric series.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CustomMetricType {
    Pods,
    External,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutSpec {
    #[serde(default)]
    pub strategy: Strategy,
    /// Canary only: strictly increasing weights in 1..=100 ending at 100.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<u32>,
    /// Canary only; at least 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_interval: Option<Duration>,
    /// Pause before these weights until approved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manual_gates: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSpec>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    #[default]
    Rolling,
    Canary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisSpec {
    /// Minimum percent of non-5xx responses over a step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    #[serde(
        default,
        rename = "latencyP99",
        skip_serializing_if = "Option::is_none"
    )]
    pub latency_p99: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<AnalysisQuery>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisQuery {
    pub name: String,
    /// PromQL with `{{namespace}}`, `{{service}}` and `{{track}}` placeholders.
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficSpec {
    /// Default: RepositoryConfig `traffic.router`, else `replicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<Router>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Router {
    GatewayApi,
    Istio,
    Replicas,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlacementSpec {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Added to the GPU tolerations of the catalog.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Default true when replicas (or minReplicas) >= 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread_across_zones: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// A pod toleration, as in the Kubernetes API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Toleration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisruptionSpec {
    /// A count or a percentage such as `"25%"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrPercent>,
}

/// An integer or a percentage string, like Kubernetes' IntOrString.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrPercent {
    Int(i32),
    Percent(String),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkSpec {
    #[serde(default)]
    pub allow_from: Vec<NetworkPeer>,
}

/// One allowed source of traffic. Both keys together: pods with those labels in that
/// namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPeer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecuritySpec {
    /// Default true; /tmp is an emptyDir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
}

/// `kind: RepositoryConfig` (`modelship.yaml`). Every field has a default, so a repository
/// without the file behaves as `RepositoryConfig::default()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositoryConfig {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: RepositoryConfigSpec,
}

impl Default for RepositoryConfig {
    fn default() -> Self {
        RepositoryConfig {
            api_version: API_VERSION.to_string(),
            kind: "RepositoryConfig".to_string(),
            metadata: Metadata::default(),
            spec: RepositoryConfigSpec::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositoryConfigSpec {
    /// Namespace of services that name none. Default `default`.
    #[serde(default = "default_namespace")]
    pub default_namespace: String,
    /// Globs of service files relative to the root. Default `services/**/*.yaml`.
    #[serde(default = "default_service_globs")]
    pub services: Vec<String>,
    #[serde(default)]
    pub traffic: RepoTraffic,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusConfig>,
    /// The series the default canary analysis queries read.
    #[serde(default)]
    pub analysis: AnalysisSeries,
    #[serde(default)]
    pub metric_names: MetricNames,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_loader: Option<ModelLoader>,
    #[serde(default)]
    pub gpu: GpuConfig,
    /// Pull-request preview environments.
    #[serde(default)]
    pub previews: PreviewConfig,
    /// Pull-request interaction on GitHub.
    #[serde(default)]
    pub github: GithubConfig,
    /// Namespaces no service may target, besides the system ones that never are
    /// ([`SYSTEM_NAMESPACES`]). Default `[modelship]`, where modelship itself runs.
    #[serde(default = "default_protected_namespaces")]
    pub protected_namespaces: Vec<String>,
    /// Who owns which spec files, the namespaces their services may use and their GPU
    /// budgets. Empty (the default): one implicit tenant owns every path and namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<super::tenants::Tenant>,
}

/// The namespaces no service may ever target, whatever modelship.yaml says.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

impl RepositoryConfigSpec {
    /// True when no service may target `namespace`: a system namespace, or one of
    /// `protectedNamespaces`.
    pub fn is_protected(&self, namespace: &str) -> bool {
        SYSTEM_NAMESPACES.contains(&namespace)
            || self.protected_namespaces.iter().any(|n| n == namespace)
    }
}

impl Default for RepositoryConfigSpec {
    fn default() -> Self {
        RepositoryConfigSpec {
            default_namespace: default_namespace(),
            services: default_service_globs(),
            traffic: RepoTraffic::default(),
            prometheus: None,
            analysis: AnalysisSeries::default(),
            metric_names: MetricNames::default(),
            model_loader: None,
            gpu: GpuConfig::default(),
            previews: PreviewConfig::default(),
            github: GithubConfig::default(),
            protected_namespaces: default_protected_namespaces(),
            tenants: Vec::new(),
        }
    }
}

fn default_namespace() -> String {
    "default".to_string()
}

fn default_protected_namespaces() -> Vec<String> {
    vec!["modelship".to_string()]
}

fn default_service_globs() -> Vec<String> {
    vec![
        "services/**/*.yaml".to_string(),
        "services/**/*.yml".to_string(),
    ]
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepoTraffic {
    /// Default router of services that name none. Default `replicas`.
    #[serde(default = "default_router")]
    pub router: Router,
    /// The Gateway that HTTPRoutes attach to (gateway-api).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<ObjectRef>,
}

impl Default for RepoTraffic {
    fn default() -> Self {
        RepoTraffic {
            router: default_router(),
            gateway: None,
        }
    }
}

fn default_router() -> Router {
    Router::Replicas
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusConfig {
    pub url: String,
    /// Compile a PodMonitor (monitoring.coreos.com/v1) per service. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pod_monitor: bool,
}

/// `spec.analysis` of modelship.yaml: the series the default canary queries read, for
/// routers other than istio (Istio's own metrics are fixed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalysisSeries {
    #[serde(default)]
    pub requests: RequestSeries,
    #[serde(default)]
    pub latency: LatencySeries,
}

/// The model server's request counter and its status-code label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestSeries {
    /// A counter of requests. Default `http_requests_total`.
    #[serde(default = "default_requests_metric")]
    pub metric: String,
    /// Its label holding the HTTP status code. Default `code`.
    #[serde(default = "default_status_label")]
    pub status_label: String,
}

impl Default for RequestSeries {
    fn default() -> Self {
        RequestSeries {
            metric: default_requests_metric(),
            status_label: default_status_label(),
        }
    }
}

/// The model server's request latency histogram, in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LatencySeries {
    /// The histogram's name, without `_bucket`. Default `http_request_duration_seconds`.
    #[serde(default = "default_latency_metric")]
    pub metric: String,
}

impl Default for LatencySeries {
    fn default() -> Self {
        LatencySeries {
            metric: default_latency_metric(),
        }
    }
}

fn default_requests_metric() -> String {
    "http_requests_total".to_string()
}
fn default_status_label() -> String {
    "code".to_string()
}
fn default_latency_metric() -> String {
    "http_request_duration_seconds".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricNames {
    #[serde(default = "default_rps_metric")]
    pub requests_per_second: String,
    #[serde(default = "default_queue_metric")]
    pub queue_length: String,
    #[serde(default = "default_gpu_metric")]
    pub gpu_utilization: String,
}

impl Default for MetricNames {
    fn default() -> Self {
        MetricNames {
            requests_per_second: default_rps_metric(),
            queue_length: default_queue_metric(),
            gpu_utilization: default_gpu_metric(),
        }
    }
}

fn default_rps_metric() -> String {
    "http_requests_per_second".to_string()
}
fn default_queue_metric() -> String {
    "inference_queue_length".to_string()
}
fn default_gpu_metric() -> String {
    "DCGM_FI_DEV_GPU_UTIL".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelLoader {
    pub image: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GpuConfig {
    /// Added to every GPU pod. Default: tolerate `nvidia.com/gpu` NoSchedule taints.
    #[serde(default = "default_gpu_tolerations")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_class_name: Option<String>,
    /// Resource of time-sliced GPUs. Default `nvidia.com/gpu.shared`.
    #[serde(default = "default_shared_resource")]
    pub shared_resource_name: String,
    #[serde(default)]
    pub catalog: BTreeMap<String, GpuModel>,
}

impl Default for GpuConfig {
    fn default() -> Self {
        GpuConfig {
            tolerations: default_gpu_tolerations(),
            runtime_class_name: None,
            shared_resource_name: default_shared_resource(),
            catalog: BTreeMap::new(),
        }
    }
}

fn default_gpu_tolerations() -> Vec<Toleration> {
    vec![Toleration {
        key: Some("nvidia.com/gpu".to_string()),
        operator: Some("Exists".to_string()),
        value: None,
        effect: Some("NoSchedule".to_string()),
        toleration_seconds: None,
    }]
}

fn default_shared_resource() -> String {
    "nvidia.com/gpu.shared".to_string()
}

/// One entry of the GPU catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GpuModel {
    /// The `nvidia.com/gpu.product` node label value.
    pub product: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Quantity>,
    /// USD per GPU-hour; used for cost figures in plans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly_cost: Option<f64>,
}

/// `previews`: pull-request preview environments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewConfig {
    /// The pull-request label that asks for a preview. Default `modelship/preview`.
    #[serde(default = "default_preview_label")]
    pub label: String,
    /// Preview GPU services too (costly). Default false: they are skipped, and the
    /// comment says so.
    #[serde(default)]
    pub gpu: bool,
    /// Preview pull requests from forks too, once a person with write permission labels
    /// them. Default false: a fork's code never runs in the cluster.
    #[serde(default)]
    pub forks: bool,
    /// What each preview namespace may use at most (a ResourceQuota and a LimitRange).
    #[serde(default)]
    pub quota: PreviewQuota,
}

impl Default for PreviewConfig {
    fn default() -> Self {
        PreviewConfig {
            label: default_preview_label(),
            gpu: false,
            forks: false,
            quota: PreviewQuota::default(),
        }
    }
}

/// `previews.quota`: the bounds of one preview namespace, written as its ResourceQuota
/// (the totals) and LimitRange (each container's defaults, and its largest size).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewQuota {
    /// CPU requests and limits of every pod of the namespace together. Default `8`.
    #[serde(default = "default_quota_cpu")]
    pub cpu: Quantity,
    /// Memory requests and limits of every pod together. Default `32Gi`.
    #[serde(default = "default_quota_memory")]
    pub memory: Quantity,
    /// Pods at most. Default 10.
    #[serde(default = "default_quota_pods")]
    pub pods: u32,
    /// GPUs (`requests.nvidia.com/gpu`) at most. Default 0: a GPU preview needs
    /// `previews.gpu: true` and a quota that allows it.
    #[serde(default)]
    pub gpus: u32,
}

impl Default for PreviewQuota {
    fn default() -> Self {
        PreviewQuota {
            cpu: default_quota_cpu(),
            memory: default_quota_memory(),
            pods: default_quota_pods(),
            gpus: 0,
        }
    }
}

fn default_quota_cpu() -> Quantity {
    quantity("8")
}

fn default_quota_memory() -> Quantity {
    quantity("32Gi")
}

/// A quantity written in this file, known to parse.
fn quantity(text: &str) -> Quantity {
    // Both texts above are valid quantities: parsing them cannot fail.
    text.parse()
        .unwrap_or_else(|_| unreachable!("`{text}` is a quantity"))
}

fn default_quota_pods() -> u32 {
    10
}

fn default_preview_label() -> String {
    "modelship/preview".to_string()
}

/// `github`: who may act through pull-request comments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GithubConfig {
    /// GitHub users (`octocat`) or teams (`org/team`) allowed to approve rollout gates in
    /// PR comments. Empty (the default): anyone with write permission on the repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Post the plan (comment and `modelship/plan` status) on untrusted pull requests too:
    /// from forks, or by authors without write permission. Default true; false: they get
    /// nothing.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub plan_untrusted: bool,
}

impl Default for GithubConfig {
    fn default() -> Self {
        GithubConfig {
            approvers: Vec::new(),
            plan_untrusted: true,
        }
    }
}

fn default_true() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}
