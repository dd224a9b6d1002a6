//! Prometheus metrics: service-operation health (ITIL) and the daemon's own.
//!
//! Names follow Prometheus conventions (`correlator_` prefix, base units in
//! the name, `_total` for counters). Every label comes from a closed set or
//! from configuration (rule names, topics), never from alert content, so
//! cardinality is bounded. Documented in the README.

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Buckets for human response times (MTTA, MTTR): 30 s to 3 days.
const HUMAN_BUCKETS: &[f64] = &[
    30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0,
    259200.0,
];
/// Buckets for machine latencies: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub struct Metrics {
    pub registry: Registry,
    pub alerts_received: IntCounterVec,
    pub alerts_rejected: IntCounterVec,
    pub alerts_deduplicated: IntCounter,
    pub alerts_flapping: IntGauge,
    pub alerts_active: IntGauge,
    pub noise_dropped: IntCounter,
    pub incidents_opened: IntCounterVec,
    pub incidents_open: IntGaugeVec,
    pub incidents_reopened: IntCounter,
    pub incidents_merged: IntCounter,
    pub time_to_acknowledge: Histogram,
    pub time_to_resolve: Histogram,
    pub noise_reduction: Gauge,
    pub problems: IntGaugeVec,
    pub oldest_candidate_age: Gauge,
    pub known_error_matches: IntCounter,
    pub processing_latency: Histogram,
    pub batch_size: Histogram,
    pub store_commit_duration: Histogram,
    pub consumer_lag: IntGaugeVec,
    pub outbox_backlog: IntGauge,
    pub dlq_records: IntCounter,
    pub events_published: IntCounterVec,
    pub publish_errors: IntCounterVec,
    pub outbox_parked: IntGauge,
    pub records_lost: IntCounterVec,
    pub degraded: IntGaugeVec,
    pub webhook_requests: IntCounterVec,
    pub build_info: GaugeVec,
    pub ready: IntGauge,
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
        .expect("valid metric");
    r.register(Box::new(h.clone())).expect("unique metric");
    h
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// # Panics
    /// Never in practice: names and labels are static and unique.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let m = Metrics {
            alerts_received: counter_vec(
                &r,
                "correlator_alerts_received_total",
                "Alert notifications decoded, by wire format.",
                &["format"],
            ),
            alerts_rejected: counter_vec(
                &r,
                "correlator_alerts_rejected_total",
                "Records (or parts) rejected by the decoders, by reason.",
                &["reason"],
            ),
            alerts_deduplicated: counter(
                &r,
                "correlator_alerts_deduplicated_total",
                "Notifications that changed no alert status (re-sends, duplicates, stale copies).",
            ),
            alerts_flapping: gauge(
                &r,
                "correlator_alerts_flapping",
                "Alerts currently flapping.",
            ),
            alerts_active: gauge(
                &r,
                "correlator_alerts_active",
                "Alerts the engine tracks (firing, held or in an unclosed incident).",
            ),
            noise_dropped: counter(
                &r,
                "correlator_alerts_noise_dropped_total",
                "Held alerts dropped because their group never reached min_alerts.",
            ),
            incidents_opened: counter_vec(
                &r,
                "correlator_incidents_opened_total",
                "Incidents opened, by rule, severity and priority.",
                &["rule", "severity", "priority"],
            ),
            incidents_open: gauge_vec(
                &r,
                "correlator_incidents_open",
                "Incidents open or acknowledged, by severity and priority.",
                &["severity", "priority"],
            ),
            incidents_reopened: counter(
                &r,
                "correlator_incidents_reopened_total",
                "Incidents reopened within their reopen window.",
            ),
            incidents_merged: counter(
                &r,
                "correlator_incidents_merged_total",
                "Incidents merged into another through topology.",
            ),
            time_to_acknowledge: histogram(
                &r,
                "correlator_incident_time_to_acknowledge_seconds",
                "Time from opening to first acknowledgement (MTTA).",
                HUMAN_BUCKETS,
            ),
            time_to_resolve: histogram(
                &r,
                "correlator_incident_time_to_resolve_seconds",
                "Time from opening to resolution (MTTR).",
                HUMAN_BUCKETS,
            ),
            noise_reduction: {
                let g = Gauge::new("correlator_noise_reduction_ratio", "1 - incidents opened / alert notifications received, since start of the store.").expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            problems: gauge_vec(
                &r,
                "correlator_problems",
                "Problem records by state.",
                &["state"],
            ),
            oldest_candidate_age: {
                let g = Gauge::new(
                    "correlator_problem_oldest_candidate_age_seconds",
                    "Age of the oldest problem candidate awaiting review (0 if none).",
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            known_error_matches: counter(
                &r,
                "correlator_known_error_matches_total",
                "New incidents that matched a known error.",
            ),
            processing_latency: histogram(
                &r,
                "correlator_processing_latency_seconds",
                "Time from a record's timestamp to its batch being committed.",
                LATENCY_BUCKETS,
            ),
            batch_size: histogram(
                &r,
                "correlator_batch_size_records",
                "Records per committed batch.",
                &[
                    1.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
                ],
            ),
            store_commit_duration: histogram(
                &r,
                "correlator_store_commit_duration_seconds",
                "Duration of the per-batch redb transaction.",
                LATENCY_BUCKETS,
            ),
            consumer_lag: gauge_vec(
                &r,
                "correlator_consumer_lag",
                "Records behind the high watermark, per partition.",
                &["topic", "partition"],
            ),
            outbox_backlog: gauge(
                &r,
                "correlator_outbox_backlog",
                "Outbox entries committed but not yet acknowledged by the broker.",
            ),
            dlq_records: counter(
                &r,
                "correlator_dlq_records_total",
                "Records sent to the dead-letter topic.",
            ),
            events_published: counter_vec(
                &r,
                "correlator_events_published_total",
                "Events acknowledged by the broker, by topic.",
                &["topic"],
            ),
            publish_errors: counter_vec(
                &r,
                "correlator_publish_errors_total",
                "Outbox messages the broker refused, by topic and kind: retryable \
                 (retried until delivered) or permanent (the entry is parked).",
                &["topic", "kind"],
            ),
            outbox_parked: gauge(
                &r,
                "correlator_outbox_parked",
                "Outbox entries the broker refused for good (too large, invalid), kept \
                 in the store and reported instead of blocking the entries behind them.",
            ),
            records_lost: counter_vec(
                &r,
                "correlator_records_lost_total",
                "Input records the broker no longer held when the daemon came to read \
                 them (deleted by retention before they were consumed), by topic.",
                &["topic"],
            ),
            degraded: gauge_vec(
                &r,
                "correlator_degraded",
                "1 while a condition that needs an operator holds (see /readyz), by reason.",
                &["reason"],
            ),
            webhook_requests: counter_vec(
                &r,
                "correlator_webhook_requests_total",
                "Webhook receiver requests, by outcome.",
                &["outcome"],
            ),
            build_info: {
                let g = GaugeVec::new(
                    Opts::new("correlator_build_info", "Build information (always 1)."),
                    &["version"],
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            ready: gauge(
                &r,
                "correlator_ready",
                "1 when the store is writable and the broker reachable.",
            ),
            registry: r,
        };
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1.0);
        // Known label values start at 0 so rate() sees the first increments.
        for f in [
            "alertmanager_webhook",
            "alertmanager_api_v2",
            "pagerduty",
            "grafana",
        ] {
            m.alerts_received.with_label_values(&[f]);
        }
        for r in [
            "too_large",
            "invalid_json",
            "unknown_format",
            "invalid_field",
            "limit_exceeded",
        ] {
            m.alerts_rejected.with_label_values(&[r]);
        }
        for o in ["accepted", "rejected", "unauthorized", "failed"] {
            m.webhook_requests.with_label_values(&[o]);
        }
        for s in crate::problems::state::ProblemState::ALL {
            m.problems.with_label_values(&[s.as_str()]).set(0);
        }
        m
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding our own registry into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_names_exist() {
        let m = Metrics::new();
        m.alerts_received.with_label_values(&["pagerduty"]).inc();
        m.alerts_rejected.with_label_values(&["invalid_json"]).inc();
        m.incidents_opened
            .with_label_values(&["r", "critical", "P1"])
            .inc();
        m.incidents_open
            .with_label_values(&["critical", "P1"])
            .set(1);
        m.consumer_lag.with_label_values(&["alerts", "0"]).set(3);
        m.time_to_acknowledge.observe(60.0);
        let text = m.render();
        for name in [
            "correlator_alerts_received_total",
            "correlator_alerts_rejected_total",
            "correlator_incidents_opened_total",
            "correlator_incidents_open",
            "correlator_problems",
            "correlator_consumer_lag",
            "correlator_incident_time_to_acknowledge_seconds_bucket",
            "correlator_incident_time_to_resolve_seconds_bucket",
            "correlator_processing_latency_seconds_bucket",
            "correlator_build_info",
        ] {
            assert!(
                text.contains(&format!("\n{name}")),
                "{name} missing from\n{text}"
            );
        }
    }
}
