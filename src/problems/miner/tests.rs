use super::*;
use proptest::prelude::*;

fn miner() -> TemplateMiner {
    TemplateMiner::new(MinerConfig::default()).unwrap()
}

/// Feeds `lines`, returns each line's final (id, template).
fn mine(m: &mut TemplateMiner, lines: &[&str]) -> Vec<(ClusterId, String)> {
    let ids: Vec<ClusterId> = lines.iter().map(|l| m.add(l)).collect();
    ids.into_iter()
        .map(|id| (m.resolve(id), m.template(id)))
        .collect()
}

#[test]
fn numbers_and_ids_become_wildcards() {
    let mut m = miner();
    let got = mine(
        &mut m,
        &[
            "KubePodCrashLooping Pod default/api-7d9f8b6c5-x2x9z is restarting 5 times / 10 minutes",
            "KubePodCrashLooping Pod default/web-5f6d7c8b9-k2j4h is restarting 12 times / 10 minutes",
            "HighLatency p99 latency of checkout is 1.23s above 500ms",
            "HighLatency p99 latency of checkout is 2.5s above 750ms",
        ],
    );
    assert_eq!(got[0].0, got[1].0);
    assert_eq!(
        got[1].1,
        "KubePodCrashLooping Pod <*> is restarting <*> times / <*> minutes"
    );
    assert_eq!(got[2].0, got[3].0);
    assert_ne!(got[0].0, got[2].0);
    assert_eq!(
        got[3].1,
        "HighLatency p99 latency of checkout is <*> above <*>"
    );
    assert_eq!(
        (got[0].0, got[2].0),
        (ClusterId(1), ClusterId(2)),
        "ids in creation order"
    );
}

#[test]
fn differing_words_are_different_events() {
    let mut m = miner();
    let got = mine(
        &mut m,
        &[
            "cupsd startup succeeded",
            "cupsd shutdown succeeded",
            "onReceive action: android.intent.action.SCREEN_ON",
            "onReceive action: android.intent.action.SCREEN_OFF",
            "PAM 1 more authentication failure; rhost=10.0.0.1",
            "PAM 2 more authentication failures; rhost=10.0.0.2",
        ],
    );
    for pair in got.chunks(2) {
        assert_ne!(pair[0].0, pair[1].0, "{pair:?}");
    }
    assert_eq!(m.len(), 6);
}

#[test]
fn a_word_position_with_enough_values_becomes_a_variable() {
    let mut m = miner();
    let users = ["alice", "bob", "carol", "dave", "erin"];
    let lines: Vec<String> = users
        .iter()
        .map(|u| format!("session closed for user {u}"))
        .collect();
    let first = m.add(&lines[0]);
    let second = m.add(&lines[1]);
    let third = m.add(&lines[2]);
    assert_eq!(m.len(), 3, "three values could be an enumeration");
    let fourth = m.add(&lines[3]);
    assert_eq!(m.len(), 1, "the fourth makes it a variable");
    for id in [first, second, third, fourth] {
        assert_eq!(m.resolve(id), first);
    }
    assert_eq!(m.template(second), "session closed for user <*>");
    assert_eq!(m.add(&lines[4]), first);
    assert_eq!(m.size(first), 5);
}

#[test]
fn two_varying_word_positions_merge_together() {
    let mut m = miner();
    for ns in ["default", "payments", "search", "logging", "data"] {
        for app in ["api", "worker", "cart", "auth"] {
            m.add(&format!(
                "CPUThrottlingHigh 25% throttling in namespace {ns} for container {app}"
            ));
        }
    }
    let all: Vec<ClusterInfo> = m.clusters().collect();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(
        all[0].template,
        "CPUThrottlingHigh <*> throttling in namespace <*> for container <*>"
    );
    assert_eq!(all[0].size, 20);
}

#[test]
fn short_messages_stay_apart() {
    let mut m = miner();
    let lines = [
        "initEnvironment",
        "closeNotification...",
        "clear()",
        "flush()",
        "reset",
    ];
    let got = mine(&mut m, &lines);
    assert_eq!(m.len(), lines.len(), "{got:?}");
    assert_eq!(got[1].1, "closeNotification...");
}

#[test]
fn lists_of_values_of_any_length_are_one_template() {
    let mut m = miner();
    let got = mine(
        &mut m,
        &[
            "ask 10.0.0.1:50010 to delete blk_1",
            "ask 10.0.0.2:50010 to delete blk_2 blk_3 blk_4",
            "ask 10.0.0.3:50010 to delete blk_5 blk_6",
            "ask 10.0.0.3:50010 to replicate blk_5",
        ],
    );
    assert_eq!(got[0].0, got[1].0);
    assert_eq!(got[0].0, got[2].0);
    assert_ne!(got[0].0, got[3].0);
    assert_eq!(got[2].1, "ask <*> to delete <*>");
}

#[test]
fn match_line_does_not_learn() {
    let mut m = miner();
    let id = m.add("disk /dev/sda1 is 91% full");
    assert_eq!(m.match_line("disk /dev/sdb2 is 97% full"), Some(id));
    assert_eq!(m.match_line("something else entirely"), None);
    assert_eq!(m.len(), 1);
    assert_eq!(m.size(id), 1);
    assert_eq!(m.template(id), "disk <*> is <*> full");
}

#[test]
fn empty_and_blank_lines_are_one_cluster() {
    let mut m = miner();
    assert_eq!(m.add(""), m.add("   \t"));
    assert_eq!(m.template(ClusterId(1)), "");
}

#[test]
fn similarity_threshold_applies_to_values() {
    // Unmasked values that differ count against similarity.
    let cfg = MinerConfig {
        masks: Vec::new(),
        similarity: 0.9,
        ..MinerConfig::default()
    };
    let mut m = TemplateMiner::new(cfg).unwrap();
    let a = m.add("x 1a 2b 3c 4d");
    let b = m.add("x 5e 6f 7g 8h");
    assert_ne!(a, b);
    let cfg = MinerConfig {
        masks: Vec::new(),
        similarity: 0.1,
        ..MinerConfig::default()
    };
    let mut m = TemplateMiner::new(cfg).unwrap();
    let a = m.add("x 1a 2b 3c 4d");
    assert_eq!(m.add("x 5e 6f 7g 8h"), a);
    assert_eq!(m.template(a), "x <*> <*> <*> <*>");
}

#[test]
fn config_errors_name_the_setting() {
    let bad = |f: fn(&mut MinerConfig)| {
        let mut cfg = MinerConfig::default();
        f(&mut cfg);
        (
            cfg.validate().unwrap_err(),
            TemplateMiner::new(cfg).is_err(),
        )
    };
    assert_eq!(
        bad(|c| c.similarity = 1.5),
        (MinerError::Similarity(1.5), true)
    );
    assert!(matches!(
        bad(|c| c.similarity = f64::NAN).0,
        MinerError::Similarity(_)
    ));
    assert_eq!(bad(|c| c.depth = 2), (MinerError::Depth(2), true));
    assert_eq!(
        bad(|c| c.max_children = 1),
        (MinerError::MaxChildren(1), true)
    );
    assert_eq!(
        bad(|c| c.variable_after = 1),
        (MinerError::VariableAfter(1), true)
    );
    let (err, rejected) = bad(|c| c.masks.push("[unclosed".to_owned()));
    assert!(rejected);
    let MinerError::Mask(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.index, super::super::masks::DEFAULT_MASKS.len() + 1);
    assert!(e.to_string().contains("[unclosed"), "{e}");
    assert!(MinerConfig::default().validate().is_ok());
}

#[test]
fn clones_share_nothing_learnt() {
    let empty = miner();
    let mut a = empty.clone();
    a.add("one two three");
    assert!(empty.is_empty());
    assert_eq!(a.len(), 1);
}

/// Inputs proptest once shrank failures to (see `proptest-regressions/`),
/// kept as plain cases: each broke re-feeding in its own way.
#[test]
fn refeeding_regressions() {
    let cases: &[&[&str]] = &[
        &[
            "",
            "x1 () a a a",
            "x1 <*> a a b",
            "x1 failed a a (h1.example.org)",
            "x1 failed 10.0.0.1 <*> x1",
        ],
        &[
            "x1 a a a x1 bob",
            "10.0.0.1 <*> 10.0.0.1 10.0.0.1 root bob",
            "user a a a root bob",
            "user a a a a a",
        ],
        &[
            "x1 b",
            "a a",
            "x1 c",
            "10.0.0.1 user",
            "x1 a",
            "a ()",
            "a 10.0.0.1",
        ],
        &["uid=0 Jul", "10.0.0.1 10.0.0.1", "10.0.0.1 uid=0 x22 ()"],
        &["stop user", "Jul", "10.0.0.1"],
        &["Jun <*> (h1.example.org)", "10.0.0.1 10.0.0.1 <*>", "<*>"],
    ];
    for lines in cases {
        let mut m = miner();
        let first = mine(&mut m, lines);
        let n = m.len();
        assert_eq!(mine(&mut m, lines), first, "{lines:?}");
        assert_eq!(m.len(), n, "{lines:?}");
    }
}

/// Lines from a tiny vocabulary, so that clusters collide, merge and
/// generalise often.
fn lines_strategy() -> impl Strategy<Value = Vec<String>> {
    let token = prop::sample::select(vec![
        "a",
        "b",
        "c",
        "user",
        "root",
        "bob",
        "x1",
        "x22",
        "10.0.0.1",
        "10.0.0.2:80",
        "()",
        "(h1.example.org)",
        "uid=0",
        "uid=7",
        "<*>",
        "blk_1",
        "blk_-2",
        "ok",
        "failed",
        "Jun",
        "Jul",
        "start",
        "stop",
    ]);
    prop::collection::vec(
        prop::collection::vec(token, 0..7).prop_map(|t| t.join(" ")),
        1..60,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn deterministic(lines in lines_strategy()) {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let first = mine(&mut miner(), &refs);
        let second = mine(&mut miner(), &refs);
        prop_assert_eq!(first, second);
    }

    #[test]
    fn refeeding_learns_nothing_new(lines in lines_strategy()) {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut m = miner();
        let first = mine(&mut m, &refs);
        let clusters = m.len();
        let again = mine(&mut m, &refs);
        prop_assert_eq!(m.len(), clusters);
        prop_assert_eq!(&first, &again);
    }

    #[test]
    fn every_line_fits_its_template(lines in lines_strategy()) {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut m = miner();
        let got = mine(&mut m, &refs);
        let masker = Masker::new(&m.config().masks).unwrap();
        let mut buf = String::new();
        for (line, (id, template)) in refs.iter().zip(&got) {
            let toks: Vec<&str> = masker.mask(line, &mut buf).split_whitespace().collect();
            let tpl: Vec<&str> = template.split(' ').filter(|t| !t.is_empty()).collect();
            // Aliased clusters of other lengths report their root's template.
            if tpl.len() == toks.len() {
                for (t, w) in tpl.iter().zip(&toks) {
                    prop_assert!(
                        relate(t, w) == Relation::Covered,
                        "line {:?} in cluster {} with template {:?}: {:?} vs {:?}",
                        line, id, template, t, w
                    );
                }
            }
            prop_assert!(m.match_line(line).is_some(), "{:?} no longer matches", line);
        }
    }

    #[test]
    fn ids_resolve_to_live_clusters(lines in lines_strategy()) {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut m = miner();
        let got = mine(&mut m, &refs);
        let live: Vec<ClusterId> = m.clusters().map(|c| c.id).collect();
        let total: u64 = m.clusters().map(|c| c.size).sum();
        prop_assert_eq!(total, refs.len() as u64);
        for (id, _) in &got {
            prop_assert!(live.contains(id));
        }
    }
}

/// A storm line `k` like the storm benchmark's: 3 in 10 share one template
/// (`CrashLoop pod crashloop-<k> restarting`), the others are three
/// letters-only words of their own (a template each, all in the leaf of the
/// full first-token node).
fn storm_line(k: u64) -> String {
    if k % 10 < 3 {
        return format!("CrashLoop pod crashloop-{k} restarting");
    }
    let word = |salt: u64| {
        let mut x = (k + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
        (0..6)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (b'a' + (x % 26) as u8) as char
            })
            .collect::<String>()
    };
    format!("Q{} {} {}", word(1), word(2), word(3))
}

/// Clusters compared per line while mining `n` storm lines.
fn storm_work(n: u64) -> f64 {
    let mut m = miner();
    for k in 0..n {
        m.add(&storm_line(k));
    }
    assert!(m.len() as u64 > n / 2, "mostly distinct templates");
    m.compared as f64 / n as f64
}

#[test]
fn work_per_line_does_not_grow_with_the_templates_of_a_leaf() {
    // Thousands of distinct templates share the `<*>` leaf of the full
    // first-token node; a line is compared only with the clusters that can
    // take it, so the work per line is the same for 2,000 lines and 8,000.
    let (small, large) = (storm_work(2_000), storm_work(8_000));
    assert!(
        small <= 4.0 && large <= 4.0,
        "clusters compared per line: {small:.1} for 2,000 lines, {large:.1} for 8,000"
    );
}

/// Lines whose first tokens vary over more words than a node's children, so
/// that leaves fill up: mixes of words, values and patterns.
fn crowded_lines() -> impl Strategy<Value = Vec<String>> {
    let first = prop::sample::select(vec![
        "alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "<*>", "x1",
    ]);
    let token = prop::sample::select(vec![
        "a",
        "b",
        "c",
        "d",
        "e",
        "root",
        "x1",
        "x22",
        "10.0.0.1",
        "()",
        "(h1.example.org)",
        "uid=0",
        "uid=root",
        "<*>",
        "blk_1",
        "Jun",
        "start",
        "stop",
    ]);
    prop::collection::vec(
        (first, prop::collection::vec(token, 0..6))
            .prop_map(|(f, t)| format!("{f} {}", t.join(" "))),
        1..80,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_index_finds_what_a_scan_of_the_leaf_finds(lines in crowded_lines()) {
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        for (depth, max_children) in [(4, 3), (5, 2), (3, 2)] {
            let cfg = MinerConfig { depth, max_children, ..MinerConfig::default() };
            let mut indexed = TemplateMiner::new(cfg.clone()).unwrap();
            let mut scanning = TemplateMiner::new(cfg).unwrap();
            scanning.scan_leaves = true;
            let a = mine(&mut indexed, &refs);
            let b = mine(&mut scanning, &refs);
            prop_assert_eq!(&a, &b, "depth {} max_children {}", depth, max_children);
            prop_assert_eq!(indexed.merges(), scanning.merges());
            prop_assert!(indexed.compared <= scanning.compared);
        }
    }
}

/// A miner restored from a snapshot answers every later message exactly as
/// the miner it was taken from: same ids, same templates, same state.
#[test]
fn a_restored_snapshot_continues_like_the_original() {
    let lines: Vec<String> = crate::problems::corpus::alert_lines(3000, 7)
        .into_iter()
        .map(|(l, _)| l)
        .collect();
    let (first, rest) = lines.split_at(1800);
    let mut original = miner();
    for l in first {
        original.add(l);
    }
    let bytes = rmp_serde::to_vec_named(&original.state()).unwrap();
    let state: MinerState = rmp_serde::from_slice(&bytes).unwrap();
    let mut restored = TemplateMiner::restore(MinerConfig::default(), state).unwrap();
    assert_eq!(restored.state(), original.state());
    for l in rest {
        let (a, b) = (original.add(l), restored.add(l));
        assert_eq!(a, b, "{l}");
        assert_eq!(original.template(a), restored.template(b), "{l}");
    }
    assert_eq!(restored.state(), original.state());
    assert_eq!(
        rmp_serde::to_vec_named(&restored.state()).unwrap(),
        rmp_serde::to_vec_named(&original.state()).unwrap(),
        "equal states encode to equal bytes"
    );
}

#[test]
fn a_corrupt_snapshot_is_an_error_not_a_panic() {
    let mut m = miner();
    for l in ["disk full on node-1", "disk full on node-2", "cpu hot on a"] {
        m.add(l);
    }
    let mut bad = m.state();
    bad.parent.pop();
    assert!(TemplateMiner::restore(MinerConfig::default(), bad).is_err());
    let mut bad = m.state();
    bad.recent.insert(1, 99);
    let e = TemplateMiner::restore(MinerConfig::default(), bad).unwrap_err();
    assert!(e.contains("cluster"), "{e}");
    let mut bad = m.state();
    bad.clusters[0].leaf = 1000;
    assert!(TemplateMiner::restore(MinerConfig::default(), bad).is_err());
}
