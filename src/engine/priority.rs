//! ITIL priority: a function of impact (how much is affected) and urgency (how
//! fast it hurts). Both are read from labels when present (`1|2|3`,
//! `high|medium|low` and common synonyms), otherwise derived from severity.
//!
//! The matrix is the standard one: priority = impact + urgency − 1, so
//! high×high = P1 and low×low = P5.

use serde::{Deserialize, Serialize};

use crate::alert::{Labels, Severity};

/// P1 (most urgent) … P5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
    P5,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
            Priority::P5 => "P5",
        }
    }

    fn from_rank(r: u8) -> Priority {
        match r {
            0 | 1 => Priority::P1,
            2 => Priority::P2,
            3 => Priority::P3,
            4 => Priority::P4,
            _ => Priority::P5,
        }
    }
}

/// 1 = high, 2 = medium, 3 = low.
fn level(v: &str) -> Option<u8> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "high" | "critical" | "extensive" | "widespread" | "major" => Some(1),
        "2" | "medium" | "moderate" | "significant" | "large" => Some(2),
        "3" | "low" | "minor" | "localized" | "localised" | "small" => Some(3),
        _ => None,
    }
}

/// (impact, urgency) implied by severity when no label says otherwise.
fn from_severity(s: Severity) -> (u8, u8) {
    match s {
        Severity::Critical => (1, 1),
        Severity::Error => (1, 2),
        Severity::Warning => (2, 2),
        Severity::Info => (3, 2),
        Severity::None => (3, 3),
    }
}

/// Priority of one alert.
pub fn of_alert(
    labels: &Labels,
    severity: Severity,
    impact_label: &str,
    urgency_label: &str,
) -> Priority {
    let (di, du) = from_severity(severity);
    let impact = labels.get(impact_label).and_then(level).unwrap_or(di);
    let urgency = labels.get(urgency_label).and_then(level).unwrap_or(du);
    Priority::from_rank(impact + urgency - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix() {
        let cases = [
            ("critical", None, None, Priority::P1),
            ("warning", None, None, Priority::P3),
            ("info", None, None, Priority::P4),
            ("", None, None, Priority::P5),
            ("warning", Some("high"), Some("high"), Priority::P1),
            ("critical", Some("low"), Some("3"), Priority::P5),
            ("critical", Some("bogus"), None, Priority::P1),
            ("warning", Some("1"), None, Priority::P2),
        ];
        for (sev, imp, urg, want) in cases {
            let mut pairs = vec![("severity", sev.to_string())];
            if let Some(i) = imp {
                pairs.push(("impact", i.to_string()));
            }
            if let Some(u) = urg {
                pairs.push(("urgency", u.to_string()));
            }
            let l = Labels::from_pairs(pairs).unwrap();
            let got = of_alert(&l, Severity::from_label(sev), "impact", "urgency");
            assert_eq!(
                got,
                want,
                "severity={sev} impact={imp:?} urgency={urgency:?}",
                urgency = urg
            );
        }
    }
}
