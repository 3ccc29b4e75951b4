//! Validation rules of GPUs, autoscaling, rollouts, traffic, placement, disruption and
//! network, table-driven like `spec_rules.rs`.

mod support;

use support::spec::*;

fn cases() -> Vec<Case> {
    vec![
        // gpu
        case(
            "gpu count low",
            with("  gpu: {count: 0}\n"),
            (
                SVC,
                9,
                16,
                "spec.gpu.count",
                "gpu.count 0 is out of range: 1..16",
            ),
        ),
        case(
            "gpu count high",
            with("  gpu: {count: 17}\n"),
            (SVC, 9, 16, "spec.gpu.count", "gpu.count 17 is out of range"),
        ),
        case(
            "gpu count missing",
            with("  gpu: {type: l4}\n"),
            (SVC, 9, 8, "spec.gpu.count", "missing required field"),
        ),
        case(
            "gpu type close",
            with("  gpu: {count: 1, type: a100-80g}\n"),
            (
                SVC,
                9,
                25,
                "spec.gpu.type",
                "GPU type `a100-80g` is not in the catalog; did you mean a100-80gb?",
            ),
        ),
        case(
            "gpu type list",
            with("  gpu: {count: 1, type: [l4, h200]}\n"),
            (
                SVC,
                9,
                30,
                "spec.gpu.type[1]",
                "`h200` is not in the catalog; catalog keys: a100-80gb, l4",
            ),
        ),
        case(
            "gpu type list empty",
            with("  gpu: {count: 1, type: []}\n"),
            (SVC, 9, 25, "spec.gpu.type", "must not be empty"),
        ),
        case(
            "partition and shared",
            with("  gpu: {count: 1, partition: 1g.10gb, shared: true}\n"),
            (
                SVC,
                9,
                30,
                "spec.gpu.partition",
                "partition and shared cannot be combined",
            ),
        ),
        case(
            "shm quantity",
            with("  gpu: {count: 1, shm: lots}\n"),
            (SVC, 9, 24, "spec.gpu.shm", "`lots` is not a quantity"),
        ),
        // autoscaling
        case(
            "max below min",
            with("  autoscaling: {minReplicas: 3, maxReplicas: 2, metrics: [{cpu: 70}]}\n"),
            (
                SVC,
                9,
                46,
                "spec.autoscaling.maxReplicas",
                "maxReplicas 2 is below minReplicas 3",
            ),
        ),
        case(
            "max zero",
            with(
                "  autoscaling: {minReplicas: 0, maxReplicas: 0, metrics: [{custom: {name: q, type: external, target: 1}}]}\n",
            ),
            (
                SVC,
                9,
                46,
                "spec.autoscaling.maxReplicas",
                "maxReplicas must be at least 1",
            ),
        ),
        case(
            "scale to zero",
            with("  autoscaling: {minReplicas: 0, maxReplicas: 2, metrics: [{cpu: 70}]}\n"),
            (
                SVC,
                9,
                30,
                "spec.autoscaling.minReplicas",
                "minReplicas 0 needs an external metric",
            ),
        ),
        case(
            "no metrics",
            with("  autoscaling: {maxReplicas: 2, metrics: []}\n"),
            (
                SVC,
                9,
                42,
                "spec.autoscaling.metrics",
                "at least one metric is required",
            ),
        ),
        case(
            "two keys in a metric",
            with("  autoscaling: {maxReplicas: 2, metrics: [{cpu: 70}, {cpu: 70, memory: 80}]}\n"),
            (
                SVC,
                9,
                54,
                "spec.autoscaling.metrics[1]",
                "must have exactly one key, found 2: cpu, memory",
            ),
        ),
        case(
            "no key in a metric",
            with("  autoscaling: {maxReplicas: 2, metrics: [{}]}\n"),
            (
                SVC,
                9,
                43,
                "spec.autoscaling.metrics[0]",
                "exactly one key, found none",
            ),
        ),
        case(
            "unknown metric",
            with("  autoscaling: {maxReplicas: 2, metrics: [{cpuu: 70}]}\n"),
            (
                SVC,
                9,
                44,
                "spec.autoscaling.metrics[0].cpuu",
                "unknown key; did you mean cpu?",
            ),
        ),
        case(
            "metric without value",
            with("  autoscaling: {maxReplicas: 2, metrics: [cpu]}\n"),
            (
                SVC,
                9,
                43,
                "spec.autoscaling.metrics[0]",
                "`cpu` needs a value",
            ),
        ),
        case(
            "percent metric zero",
            with("  autoscaling: {maxReplicas: 2, metrics: [{cpu: 0}]}\n"),
            (
                SVC,
                9,
                49,
                "spec.autoscaling.metrics[0].cpu",
                "0 is out of range: expected > 0",
            ),
        ),
        case(
            "gpu utilization above 100",
            with("  autoscaling: {maxReplicas: 2, metrics: [{gpuUtilization: 150}]}\n"),
            (
                SVC,
                9,
                60,
                "spec.autoscaling.metrics[0].gpuUtilization",
                "150 is out of range: expected 1..100",
            ),
        ),
        case(
            "rps quantity",
            with("  autoscaling: {maxReplicas: 2, metrics: [{requestsPerSecond: many}]}\n"),
            (
                SVC,
                9,
                63,
                "spec.autoscaling.metrics[0].requestsPerSecond",
                "`many` is not a quantity",
            ),
        ),
        case(
            "custom metric type",
            with(
                "  autoscaling: {maxReplicas: 2, metrics: [{custom: {name: q, type: object, target: 1}}]}\n",
            ),
            (
                SVC,
                9,
                68,
                "spec.autoscaling.metrics[0].custom.type",
                "unknown value `object`; expected one of: pods, external",
            ),
        ),
        case(
            "selector on a pods metric",
            with(
                "  autoscaling: {maxReplicas: 2, metrics: [{custom: {name: q, type: pods, target: 1, selector: {a: b}}}]}\n",
            ),
            (
                SVC,
                9,
                95,
                "spec.autoscaling.metrics[0].custom.selector",
                "selector applies to external metrics only",
            ),
        ),
        case(
            "stabilization duration",
            with(
                "  autoscaling: {maxReplicas: 2, metrics: [{cpu: 70}], scaleDownStabilization: 5 min}\n",
            ),
            (
                SVC,
                9,
                79,
                "spec.autoscaling.scaleDownStabilization",
                "`5 min` is not a duration",
            ),
        ),
        case(
            "stabilization too long",
            with(
                "  autoscaling: {maxReplicas: 2, metrics: [{cpu: 70}], scaleUpStabilization: 2h}\n",
            ),
            (
                SVC,
                9,
                77,
                "spec.autoscaling.scaleUpStabilization",
                "2h is too long: at most 1h",
            ),
        ),
        // rollout
        case(
            "strategy value",
            with("  rollout: {strategy: canry}\n"),
            (
                SVC,
                9,
                23,
                "spec.rollout.strategy",
                "unknown value `canry`; did you mean canary?",
            ),
        ),
        case(
            "canary without steps",
            with("  rollout: {strategy: canary}\n"),
            (
                SVC,
                9,
                12,
                "spec.rollout.steps",
                "a canary rollout needs steps",
            ),
        ),
        case(
            "steps increase",
            with("  rollout: {strategy: canary, steps: [10, 50, 50, 100]}\n"),
            (
                SVC,
                9,
                47,
                "spec.rollout.steps[2]",
                "step 50 does not increase on 50",
            ),
        ),
        case(
            "steps range",
            with("  rollout: {strategy: canary, steps: [0, 50, 100]}\n"),
            (
                SVC,
                9,
                39,
                "spec.rollout.steps[0]",
                "step 0 is out of range: weights are 1..100",
            ),
        ),
        case(
            "steps above 100",
            with("  rollout: {strategy: canary, steps: [50, 150]}\n"),
            (
                SVC,
                9,
                43,
                "spec.rollout.steps[1]",
                "step 150 is out of range",
            ),
        ),
        case(
            "steps end at 100",
            with("  rollout: {strategy: canary, steps: [10, 50]}\n"),
            (
                SVC,
                9,
                43,
                "spec.rollout.steps[1]",
                "the last step is 50; steps must end at 100",
            ),
        ),
        case(
            "step interval",
            with("  rollout: {strategy: canary, steps: [50, 100], stepInterval: 10s}\n"),
            (
                SVC,
                9,
                63,
                "spec.rollout.stepInterval",
                "10s is too short: at least 30s",
            ),
        ),
        case(
            "steps need canary",
            with("  rollout: {steps: [50, 100]}\n"),
            (
                SVC,
                9,
                20,
                "spec.rollout.steps",
                "`steps` applies to the canary strategy only; set strategy: canary",
            ),
        ),
        case(
            "interval needs canary",
            with("  rollout: {strategy: rolling, stepInterval: 1m}\n"),
            (
                SVC,
                9,
                46,
                "spec.rollout.stepInterval",
                "`stepInterval` applies to the canary strategy only",
            ),
        ),
        case(
            "analysis needs canary",
            with("  rollout: {analysis: {successRate: 99}}\n"),
            (
                SVC,
                9,
                23,
                "spec.rollout.analysis",
                "`analysis` applies to the canary strategy only",
            ),
        ),
        case(
            "gates need canary",
            with("  rollout: {manualGates: [50]}\n"),
            (
                SVC,
                9,
                26,
                "spec.rollout.manualGates",
                "`manualGates` applies to the canary strategy only",
            ),
        ),
        case(
            "gate not a step",
            with("  rollout: {strategy: canary, steps: [50, 100], manualGates: [40]}\n"),
            (
                SVC,
                9,
                63,
                "spec.rollout.manualGates[0]",
                "manual gate 40 is not one of the steps; steps are 50, 100",
            ),
        ),
        case(
            "success rate",
            with("  rollout: {strategy: canary, steps: [100], analysis: {successRate: 150}}\n"),
            (
                SVC,
                9,
                69,
                "spec.rollout.analysis.successRate",
                "150 is out of range: expected 0..100",
            ),
        ),
        case(
            "latency duration",
            with("  rollout: {strategy: canary, steps: [100], analysis: {latencyP99: fast}}\n"),
            (
                SVC,
                9,
                68,
                "spec.rollout.analysis.latencyP99",
                "`fast` is not a duration",
            ),
        ),
        // traffic, placement, disruption, network
        case(
            "router value",
            with("  traffic: {router: nginx}\n"),
            (
                SVC,
                9,
                21,
                "spec.traffic.router",
                "unknown value `nginx`; expected one of: gateway-api, istio, replicas",
            ),
        ),
        case(
            "host name",
            with("  traffic: {hosts: [\"Fraud Example\"]}\n"),
            (
                SVC,
                9,
                21,
                "spec.traffic.hosts[0]",
                "invalid host `Fraud Example`",
            ),
        ),
        case(
            "toleration operator",
            with("  placement: {tolerations: [{key: a, operator: Is}]}\n"),
            (
                SVC,
                9,
                48,
                "spec.placement.tolerations[0].operator",
                "operator `Is` is not one of Exists, Equal",
            ),
        ),
        case(
            "toleration effect",
            with("  placement: {tolerations: [{key: a, effect: NoRun}]}\n"),
            (
                SVC,
                9,
                46,
                "spec.placement.tolerations[0].effect",
                "effect `NoRun` is not one of",
            ),
        ),
        case(
            "node selector key",
            with("  placement: {nodeSelector: {\"a b\": c}}\n"),
            (
                SVC,
                9,
                30,
                "spec.placement.nodeSelector[\"a b\"]",
                "invalid key `a b`",
            ),
        ),
        case(
            "priority class name",
            with("  placement: {priorityClassName: ML_High}\n"),
            (
                SVC,
                9,
                34,
                "spec.placement.priorityClassName",
                "invalid object name `ML_High`",
            ),
        ),
        case(
            "max unavailable negative",
            with("  disruption: {maxUnavailable: -1}\n"),
            (
                SVC,
                9,
                32,
                "spec.disruption.maxUnavailable",
                "maxUnavailable `-1` must be a count >= 0 or a percentage",
            ),
        ),
        case(
            "max unavailable percent",
            with("  disruption: {maxUnavailable: \"150%\"}\n"),
            (SVC, 9, 32, "spec.disruption.maxUnavailable", "`150%`"),
        ),
        case(
            "max unavailable shape",
            with("  disruption: {maxUnavailable: [1]}\n"),
            (
                SVC,
                9,
                32,
                "spec.disruption.maxUnavailable",
                "expected an integer or a percentage",
            ),
        ),
        case(
            "empty network peer",
            with("  network: {allowFrom: [{}]}\n"),
            (
                SVC,
                9,
                25,
                "spec.network.allowFrom[0]",
                "needs namespace, podLabels or both",
            ),
        ),
        case(
            "network peer namespace",
            with("  network: {allowFrom: [{namespace: Apps}]}\n"),
            (
                SVC,
                9,
                37,
                "spec.network.allowFrom[0].namespace",
                "invalid namespace `Apps`",
            ),
        ),
    ]
}

#[test]
fn every_rule_reports_one_located_diagnostic() {
    assert_cases(&cases());
}
