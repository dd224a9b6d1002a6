// Decoder throughput per wire format.
//
// Each group decodes one realistic record (10 labels per alert) and, as its
// baseline, parses the same bytes into a `serde_json::Value`: the cost of
// merely reading the JSON into a generic tree. Throughput is in alerts, so
// criterion's "elem/s" is alerts per second; the per-alert time is the figure
// to hold under 2 µs. The last group times the fingerprint of a 10-label set.
//
// Run: cargo bench --bench decode
// (Plain `//` comments: the scratch crate `include!`s this file.)

use std::hint::black_box;

use correlator::alert::{Labels, Timestamp};
use correlator::decode::{decode, Decoder, Limits};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};

#[path = "support/records.rs"]
mod records;

/// 2026-01-05T10:00:00Z.
const NOW: Timestamp = Timestamp(1_767_607_200_000);

/// Alerts per webhook / API v2 list record: a typical Alertmanager group.
const GROUP: usize = 10;

/// Ten labels of a Kubernetes alert; `i` varies the pod so fingerprints differ.
fn labels(i: usize) -> Value {
    json!({
        "alertname": "KubePodCrashLooping",
        "cluster": "prod-eu-1",
        "container": "checkout",
        "env": "prod",
        "job": "kube-state-metrics",
        "namespace": "shop",
        "pod": format!("checkout-7d9f8b6c5d-{i:05}"),
        "service": "checkout",
        "severity": "critical",
        "team": "payments",
    })
}

fn am_alert(i: usize) -> Value {
    json!({
        "status": "firing",
        "labels": labels(i),
        "annotations": {
            "summary": format!("Pod shop/checkout-7d9f8b6c5d-{i:05} is crash looping"),
            "description": "Pod is restarting 6 times / 10 minutes.",
            "runbook_url": "https://runbooks.example.com/KubePodCrashLooping",
        },
        "startsAt": "2026-01-05T09:41:27.812345678Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus-0:9090/graph?g0.expr=kube_pod_container_status_restarts_total&g0.tab=1",
        "fingerprint": "5bd3a1e2f0c4d0aa",
    })
}

fn alertmanager_webhook() -> Value {
    json!({
        "receiver": "correlator",
        "status": "firing",
        "alerts": (0..GROUP).map(am_alert).collect::<Vec<_>>(),
        "groupLabels": { "alertname": "KubePodCrashLooping" },
        "commonLabels": { "alertname": "KubePodCrashLooping", "cluster": "prod-eu-1" },
        "commonAnnotations": {},
        "externalURL": "http://alertmanager-0:9093",
        "version": "4",
        "groupKey": "{}:{alertname=\"KubePodCrashLooping\"}",
        "truncatedAlerts": 0,
    })
}

fn grafana_webhook() -> Value {
    let alerts: Vec<Value> = (0..GROUP)
        .map(|i| {
            let mut a = am_alert(i);
            a["silenceURL"] = json!("https://grafana.example.com/alerting/silence/new");
            a["dashboardURL"] = json!("https://grafana.example.com/d/k8s?orgId=1");
            a["panelURL"] = json!("https://grafana.example.com/d/k8s?orgId=1&viewPanel=4");
            a["values"] = json!({ "B": 6.0, "C": 1 });
            a
        })
        .collect();
    json!({
        "receiver": "correlator",
        "status": "firing",
        "orgId": 1,
        "alerts": alerts,
        "groupLabels": {},
        "commonLabels": { "team": "payments" },
        "commonAnnotations": {},
        "externalURL": "https://grafana.example.com/",
        "version": "1",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "title": "[FIRING:10] KubePodCrashLooping",
        "state": "alerting",
        "message": "**Firing**",
    })
}

fn api_v2_list() -> Value {
    let alerts: Vec<Value> = (0..GROUP)
        .map(|i| {
            json!({
                "labels": labels(i),
                "annotations": { "summary": format!("Pod {i} is crash looping") },
                "startsAt": "2026-01-05T09:41:27.812Z",
                "endsAt": "2026-01-05T10:05:00Z",
                "generatorURL": "http://prometheus-0:9090/graph?g0.expr=kube_pod_container_status_restarts_total",
            })
        })
        .collect();
    Value::Array(alerts)
}

fn api_v2_single() -> Value {
    api_v2_list()[0].clone()
}

/// 10 labels: five string `custom_details` and the five payload fields.
fn pagerduty() -> Value {
    json!({
        "routing_key": "R0123456789ABCDEF0123456789ABCDE",
        "event_action": "trigger",
        "dedup_key": "checkout/KubePodCrashLooping/checkout-7d9f8b6c5d-00001",
        "client": "Prometheus",
        "client_url": "http://prometheus-0:9090/alerts",
        "payload": {
            "summary": "Pod shop/checkout-7d9f8b6c5d-00001 is crash looping",
            "source": "prod-eu-1/shop/checkout-7d9f8b6c5d-00001",
            "severity": "critical",
            "timestamp": "2026-01-05T09:41:27.812+0000",
            "component": "checkout",
            "group": "shop",
            "class": "KubePodCrashLooping",
            "custom_details": {
                "cluster": "prod-eu-1",
                "env": "prod",
                "team": "payments",
                "container": "checkout",
                "namespace": "shop",
                "restarts": 6,
            },
        },
    })
}

fn bench_format(c: &mut Criterion, name: &str, record: Value, alerts: usize) {
    let bytes = serde_json::to_vec(&record).expect("serializable");
    let limits = Limits::default();
    let check = decode(&bytes, NOW, &limits);
    assert!(check.errors.is_empty(), "{name}: {:?}", check.errors);
    assert_eq!(check.signals.len(), alerts, "{name}");

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(alerts as u64));
    group.bench_function("decode", |b| {
        b.iter(|| decode(black_box(&bytes), NOW, &limits))
    });
    group.bench_function("baseline serde_json::Value", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&bytes)).expect("valid JSON"))
    });
    group.finish();
}

fn formats(c: &mut Criterion) {
    bench_format(c, "alertmanager_webhook", alertmanager_webhook(), GROUP);
    bench_format(c, "grafana", grafana_webhook(), GROUP);
    bench_format(c, "alertmanager_api_v2 list", api_v2_list(), GROUP);
    bench_format(c, "alertmanager_api_v2 single", api_v2_single(), 1);
    bench_format(c, "pagerduty", pagerduty(), 1);
}

/// The end-to-end bench's stream (its mix of formats, label sets and
/// re-sends): what the daemon's fetch thread decodes there, per record.
fn e2e_stream(c: &mut Criterion) {
    const N: usize = 10_000;
    let mut gen = records::Generator::new(NOW.0);
    let recs: Vec<(Timestamp, Vec<u8>)> = (0..N)
        .map(|_| {
            let r = gen.next_record();
            (Timestamp(r.ts), r.body)
        })
        .collect();
    let limits = Limits::default();
    for (now, body) in &recs {
        let d = decode(body, *now, &limits);
        assert!(d.errors.is_empty(), "e2e record: {:?}", d.errors);
    }
    let mut group = c.benchmark_group("e2e stream");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            for (now, body) in &recs {
                black_box(decode(black_box(body), *now, &limits));
            }
        })
    });
    // A fresh decoder per pass: only re-sends within these 10,000 records
    // find their labels kept.
    group.bench_function("Decoder (label cache)", |b| {
        b.iter(|| {
            let mut decoder = Decoder::new(limits.clone());
            for (now, body) in &recs {
                black_box(decoder.decode(black_box(body), *now));
            }
        })
    });
    group.bench_function("baseline serde_json::Value", |b| {
        b.iter(|| {
            for (_, body) in &recs {
                black_box(serde_json::from_slice::<Value>(black_box(body)).expect("valid JSON"));
            }
        })
    });
    group.finish();
}

fn fingerprint(c: &mut Criterion) {
    let pairs: Vec<(String, String)> = labels(1)
        .as_object()
        .expect("object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let labels = Labels::from_pairs(pairs.iter().map(|(k, v)| (k, v))).expect("valid labels");
    assert_eq!(labels.len(), 10);

    let mut group = c.benchmark_group("labels (10)");
    group.throughput(Throughput::Elements(1));
    group.bench_function("fingerprint", |b| {
        b.iter(|| black_box(&labels).fingerprint())
    });
    group.bench_function("from_pairs", |b| {
        b.iter(|| Labels::from_pairs(black_box(&pairs).iter().map(|(k, v)| (k, v))))
    });
    group.finish();
}

criterion_group!(benches, formats, e2e_stream, fingerprint);
criterion_main!(benches);
