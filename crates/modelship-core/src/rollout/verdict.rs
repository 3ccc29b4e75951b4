//! The outcome of one step's analysis: a [`Verdict`] per check with the measured value and
//! its threshold ([`CheckResult`]), and the step's overall verdict ([`StepAnalysis`]).
//! These are kept in the rollout state, so `rollout status` and a rollback can say what
//! was measured.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// What one check, or a whole step, concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The value is within its threshold.
    Pass,
    /// The value breaks its threshold: counts towards `failureLimit`.
    Fail,
    /// Too little traffic, an empty vector or NaN: inconclusive, never a pass or a failure.
    NoData,
    /// Prometheus unreachable, or the query broken: inconclusive too.
    Error,
}

impl Verdict {
    /// The label value of `modelship_analysis_checks_total{verdict}`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::NoData => "no-data",
            Verdict::Error => "error",
        }
    }

    /// True for no data and error: the step is held, neither passed nor failed.
    pub fn is_inconclusive(self) -> bool {
        matches!(self, Verdict::NoData | Verdict::Error)
    }

    /// Precedence when combining checks: a measured failure outweighs an error, an error
    /// outweighs missing data, and anything outweighs a pass.
    fn rank(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::NoData => 1,
            Verdict::Error => 2,
            Verdict::Fail => 3,
        }
    }
}

/// The bound a check's value must respect.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Threshold {
    /// The value must be at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The value must be at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl Threshold {
    /// True when `value` respects both bounds. NaN never does.
    pub fn holds(&self, value: f64) -> bool {
        !value.is_nan()
            && self.min.is_none_or(|min| value >= min)
            && self.max.is_none_or(|max| value <= max)
    }
}

/// One check of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// `successRate`, `latencyP99`, `requests` or the name of a custom query.
    pub name: String,
    pub verdict: Verdict,
    /// The measured value (percent, seconds, or the query's unit); none without data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    pub threshold: Threshold,
    /// Why there was no data or an error, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Every check of one step's analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepAnalysis {
    /// When the analysis ran (the end of its window).
    pub at: Timestamp,
    /// The weight the canary had during the window.
    pub weight: u32,
    pub checks: Vec<CheckResult>,
}

impl StepAnalysis {
    /// The step's verdict: the strongest verdict of its checks (fail, then error, then no
    /// data); a step without checks passes.
    pub fn verdict(&self) -> Verdict {
        self.checks
            .iter()
            .map(|c| c.verdict)
            .max_by_key(|v| v.rank())
            .unwrap_or(Verdict::Pass)
    }

    /// The checks that did not pass, for messages.
    pub fn failing(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| c.verdict != Verdict::Pass)
    }

    /// A one-line account of the checks that did not pass, e.g.
    /// `successRate 91.2 (min 99); latencyP99 no data`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self.failing().map(describe).collect();
        if parts.is_empty() {
            "all checks passed".to_string()
        } else {
            parts.join("; ")
        }
    }
}

fn describe(check: &CheckResult) -> String {
    let bound = match (check.threshold.min, check.threshold.max) {
        (Some(min), Some(max)) => format!(" (min {min}, max {max})"),
        (Some(min), None) => format!(" (min {min})"),
        (None, Some(max)) => format!(" (max {max})"),
        (None, None) => String::new(),
    };
    match (check.verdict, check.value) {
        (Verdict::Fail, Some(value)) => format!("{} {value}{bound}", check.name),
        (verdict, _) => {
            let why = check.message.as_deref().unwrap_or(verdict.as_str());
            format!("{} {}: {why}", check.name, verdict.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, verdict: Verdict) -> CheckResult {
        CheckResult {
            name: name.to_string(),
            verdict,
            value: Some(1.0),
            threshold: Threshold {
                min: None,
                max: Some(0.5),
            },
            message: None,
        }
    }

    fn step(verdicts: &[Verdict]) -> StepAnalysis {
        StepAnalysis {
            at: Timestamp::UNIX_EPOCH,
            weight: 10,
            checks: verdicts.iter().map(|v| check("c", *v)).collect(),
        }
    }

    #[test]
    fn step_verdict_takes_the_strongest_check() {
        use Verdict::*;
        let cases: [(&[Verdict], Verdict); 6] = [
            (&[], Pass),
            (&[Pass, Pass], Pass),
            (&[Pass, NoData], NoData),
            (&[NoData, Error], Error),
            (&[Error, Fail, NoData], Fail),
            (&[Pass, Fail], Fail),
        ];
        for (verdicts, expected) in cases {
            assert_eq!(step(verdicts).verdict(), expected, "{verdicts:?}");
        }
    }

    #[test]
    fn thresholds_bound_both_ways_and_refuse_nan() {
        let both = Threshold {
            min: Some(1.0),
            max: Some(2.0),
        };
        assert!(both.holds(1.0) && both.holds(2.0));
        assert!(!both.holds(0.9) && !both.holds(2.1) && !both.holds(f64::NAN));
        let none = Threshold {
            min: None,
            max: None,
        };
        assert!(none.holds(-5.0) && !none.holds(f64::NAN));
    }

    #[test]
    fn summary_names_what_did_not_pass() {
        let mut analysis = step(&[Verdict::Fail, Verdict::Pass, Verdict::NoData]);
        analysis.checks[2].message = Some("3 requests, fewer than 100".to_string());
        assert_eq!(
            analysis.summary(),
            "c 1 (max 0.5); c no-data: 3 requests, fewer than 100"
        );
        assert_eq!(step(&[Verdict::Pass]).summary(), "all checks passed");
    }
}
