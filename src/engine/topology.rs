//! Service topology: which services' alerts are one incident.
//!
//! Two services are *linked* when one depends on the other, directly or
//! through a chain of `depends_on` edges. Siblings (two dependencies of the
//! same service) are not linked by themselves; an alert on their common
//! dependent links them. The *depth* of a service is the length of the longest
//! dependency chain leading to it, so the deepest alerting service of an
//! incident is its most likely root cause.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::config::{ConfigIssue, TopologyConfig};

#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub label: String,
    pub window: Duration,
    pub equal: Vec<String>,
    /// For each service, every service linked to it (ancestors and descendants).
    linked: BTreeMap<String, BTreeSet<String>>,
    depth: BTreeMap<String, u32>,
}

impl Topology {
    pub fn compile(cfg: &TopologyConfig, issues: &mut Vec<ConfigIssue>) -> Topology {
        let mut services: BTreeSet<&str> = BTreeSet::new();
        for (s, deps) in &cfg.depends_on {
            services.insert(s);
            for (i, d) in deps.iter().enumerate() {
                if d.is_empty() {
                    issues.push(ConfigIssue {
                        key: format!("topology.depends_on.{s}[{i}]"),
                        reason: "empty service name".into(),
                    });
                }
                if d == s {
                    issues.push(ConfigIssue {
                        key: format!("topology.depends_on.{s}[{i}]"),
                        reason: format!("{s:?} depends on itself"),
                    });
                }
                services.insert(d);
            }
        }
        let deps_of = |s: &str| cfg.depends_on.get(s).map(|v| v.as_slice()).unwrap_or(&[]);
        // Cycle detection by DFS with colours; report the cycle path.
        let mut colour: BTreeMap<&str, u8> = BTreeMap::new();
        fn dfs<'a>(
            s: &'a str,
            deps_of: &dyn Fn(&str) -> &'a [String],
            colour: &mut BTreeMap<&'a str, u8>,
            path: &mut Vec<&'a str>,
        ) -> Option<Vec<String>> {
            colour.insert(s, 1);
            path.push(s);
            for d in deps_of(s) {
                match colour.get(d.as_str()).copied().unwrap_or(0) {
                    1 => {
                        let start = path.iter().position(|p| *p == d).unwrap_or(0);
                        let mut cyc: Vec<String> =
                            path[start..].iter().map(|p| p.to_string()).collect();
                        cyc.push(d.clone());
                        return Some(cyc);
                    }
                    0 => {
                        if let Some(c) = dfs(d, deps_of, colour, path) {
                            return Some(c);
                        }
                    }
                    _ => {}
                }
            }
            path.pop();
            colour.insert(s, 2);
            None
        }
        for s in &services {
            if colour.get(s).copied().unwrap_or(0) == 0 {
                if let Some(cyc) = dfs(s, &deps_of, &mut colour, &mut Vec::new()) {
                    issues.push(ConfigIssue {
                        key: "topology.depends_on".into(),
                        reason: format!("dependency cycle {}", cyc.join(" -> ")),
                    });
                    return Topology::default();
                }
            }
        }
        // Descendants (transitive dependencies) of each service.
        let mut desc: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        fn collect(s: &str, cfg: &TopologyConfig, out: &mut BTreeSet<String>) {
            for d in cfg.depends_on.get(s).map(|v| v.as_slice()).unwrap_or(&[]) {
                if out.insert(d.clone()) {
                    collect(d, cfg, out);
                }
            }
        }
        for s in &services {
            let mut out = BTreeSet::new();
            collect(s, cfg, &mut out);
            desc.insert(s.to_string(), out);
        }
        let mut linked: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (s, ds) in &desc {
            for d in ds {
                linked.entry(s.clone()).or_default().insert(d.clone());
                linked.entry(d.clone()).or_default().insert(s.clone());
            }
        }
        // Depth: longest chain from a service nobody depends on.
        let mut depth: BTreeMap<String, u32> = BTreeMap::new();
        fn depth_of(s: &str, cfg: &TopologyConfig, memo: &mut BTreeMap<String, u32>) -> u32 {
            if let Some(d) = memo.get(s) {
                return *d;
            }
            let mut best = 0;
            for (p, deps) in &cfg.depends_on {
                if deps.iter().any(|d| d == s) {
                    best = best.max(depth_of(p, cfg, memo) + 1);
                }
            }
            memo.insert(s.to_string(), best);
            best
        }
        for s in &services {
            depth_of(s, cfg, &mut depth);
        }
        Topology {
            label: cfg.label.clone(),
            window: cfg.window.0,
            equal: cfg.equal.clone(),
            linked,
            depth,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.depth.is_empty()
    }

    /// Whether `service` appears in the graph.
    pub fn knows(&self, service: &str) -> bool {
        self.depth.contains_key(service)
    }

    /// Services linked to `service`.
    pub fn linked(&self, service: &str) -> impl Iterator<Item = &str> {
        self.linked
            .get(service)
            .into_iter()
            .flat_map(|s| s.iter().map(|x| x.as_str()))
    }

    pub fn are_linked(&self, a: &str, b: &str) -> bool {
        self.linked.get(a).is_some_and(|s| s.contains(b))
    }

    /// Depth in the dependency graph (0 = nothing depends on it).
    pub fn depth(&self, service: &str) -> Option<u32> {
        self.depth.get(service).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(pairs: &[(&str, &[&str])]) -> (Topology, Vec<ConfigIssue>) {
        let mut cfg = TopologyConfig::default();
        for (s, d) in pairs {
            cfg.depends_on
                .insert(s.to_string(), d.iter().map(|x| x.to_string()).collect());
        }
        let mut issues = Vec::new();
        (Topology::compile(&cfg, &mut issues), issues)
    }

    #[test]
    fn links_and_depths() {
        let (t, issues) = topo(&[
            ("checkout", &["payments", "inventory"]),
            ("payments", &["postgres"]),
        ]);
        assert!(issues.is_empty());
        assert!(t.are_linked("checkout", "postgres"));
        assert!(t.are_linked("postgres", "checkout"));
        assert!(
            !t.are_linked("payments", "inventory"),
            "siblings are not linked"
        );
        assert_eq!(t.depth("checkout"), Some(0));
        assert_eq!(t.depth("payments"), Some(1));
        assert_eq!(t.depth("postgres"), Some(2));
        assert_eq!(t.depth("unknown"), None);
    }

    #[test]
    fn cycle_reported() {
        let (_, issues) = topo(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])]);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].reason, "dependency cycle a -> b -> c -> a");
    }
}
