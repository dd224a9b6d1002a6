//! Service topology: which services' alerts are one incident.
//!
//! Two services are *linked* when one depends on the other, directly or
//! through a chain of `depends_on` edges. Siblings (two dependencies of the
//! same service) are not linked by themselves; an alert on their common
//! dependent links them. The *depth* of a service is the length of the longest
//! dependency chain leading to it, so the deepest alerting service of an
//! incident is its most likely root cause.
//!
//! Cost: compiling is one iterative depth-first search over the graph, linear
//! in services plus edges, with no recursion, so a catalog of any size neither
//! takes quadratic time or memory nor overflows the stack. Nothing quadratic is
//! stored: instead of every linked pair, each service keeps its depth and three
//! numbers from that search, which answer most "does A depend on B" questions
//! at once (a service's dependencies are finished before it, and its
//! descendants' smallest finishing number is at least its own smallest one);
//! the rest are settled by a search pruned by those numbers.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use foldhash::fast::RandomState;

use crate::config::{ConfigIssue, TopologyConfig};

/// A cycle longer than this is reported by its first and last services only.
const CYCLE_NAMES_SHOWN: usize = 12;

/// Above this many candidates, [`Topology::linked_among`] marks every service
/// linked to the one asked about in one walk of the graph instead of asking
/// about each candidate.
const PAIRWISE_MAX: usize = 32;

#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub label: String,
    pub window: Duration,
    pub equal: Vec<String>,
    /// Every service named in `depends_on`, sorted; a service's id is its index.
    names: Vec<String>,
    /// Id of each name (foldhash: every lookup hashes a service name).
    ids: HashMap<String, u32, RandomState>,
    /// Dependencies of service `i`: `deps[dep_start[i]..dep_start[i + 1]]`.
    dep_start: Vec<u32>,
    deps: Vec<u32>,
    /// Dependents of service `i`: `rdeps[rdep_start[i]..rdep_start[i + 1]]`.
    rdep_start: Vec<u32>,
    rdeps: Vec<u32>,
    /// Longest chain of dependents above each service (0 = nothing depends on it).
    depth: Vec<u32>,
    /// Order in which the compile-time search entered each service.
    pre: Vec<u32>,
    /// Order in which it finished each service (dependencies finish first).
    post: Vec<u32>,
    /// Smallest `post` among a service and everything it depends on.
    low: Vec<u32>,
}

impl Topology {
    /// Builds the graph of `cfg.depends_on`, adding a [`ConfigIssue`] for an
    /// empty service name, a service that depends on itself and a dependency
    /// cycle (the first one found, services in the order of the cycle).
    /// With a cycle the topology is empty. Linear in services plus edges.
    pub fn compile(cfg: &TopologyConfig, issues: &mut Vec<ConfigIssue>) -> Topology {
        let mut services: Vec<&str> = Vec::new();
        for (s, deps) in &cfg.depends_on {
            services.push(s);
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
                services.push(d);
            }
        }
        services.sort_unstable();
        services.dedup();
        let names: Vec<String> = services.into_iter().map(str::to_string).collect();
        let n = names.len();
        let ids: HashMap<String, u32, RandomState> = names
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        let id = |s: &str| ids[s];
        // Dependencies in configuration order, as compressed rows.
        let mut dep_start = Vec::with_capacity(n + 1);
        let mut deps = Vec::new();
        for name in &names {
            dep_start.push(deps.len() as u32);
            if let Some(ds) = cfg.depends_on.get(name) {
                deps.extend(ds.iter().map(|d| id(d)));
            }
        }
        dep_start.push(deps.len() as u32);
        let deps_of =
            |u: u32| &deps[dep_start[u as usize] as usize..dep_start[u as usize + 1] as usize];

        // Depth-first search from each service in name order, dependencies in
        // configuration order, on an explicit stack: (service, next edge).
        const WHITE: u8 = 0;
        const GREY: u8 = 1;
        const BLACK: u8 = 2;
        let mut colour = vec![WHITE; n];
        let (mut pre, mut post, mut low) = (vec![0u32; n], vec![0u32; n], vec![0u32; n]);
        let (mut entered, mut finished) = (0u32, 0u32);
        let mut stack: Vec<(u32, u32)> = Vec::new();
        for root in 0..n as u32 {
            if colour[root as usize] != WHITE {
                continue;
            }
            colour[root as usize] = GREY;
            pre[root as usize] = entered;
            entered += 1;
            stack.push((root, dep_start[root as usize]));
            while let Some(top) = stack.last_mut() {
                let (u, next) = *top;
                if next < dep_start[u as usize + 1] {
                    top.1 += 1;
                    let d = deps[next as usize];
                    match colour[d as usize] {
                        WHITE => {
                            colour[d as usize] = GREY;
                            pre[d as usize] = entered;
                            entered += 1;
                            stack.push((d, dep_start[d as usize]));
                        }
                        GREY => {
                            let start = stack.iter().position(|&(p, _)| p == d).unwrap_or(0);
                            let cycle: Vec<&str> = stack[start..]
                                .iter()
                                .map(|&(p, _)| names[p as usize].as_str())
                                .chain([names[d as usize].as_str()])
                                .collect();
                            issues.push(ConfigIssue {
                                key: "topology.depends_on".into(),
                                reason: format!("dependency cycle {}", render_cycle(&cycle)),
                            });
                            return Topology::default();
                        }
                        _ => {}
                    }
                } else {
                    stack.pop();
                    colour[u as usize] = BLACK;
                    post[u as usize] = finished;
                    low[u as usize] = deps_of(u)
                        .iter()
                        .map(|&d| low[d as usize])
                        .fold(finished, u32::min);
                    finished += 1;
                }
            }
        }

        // Depth: dependents before dependencies is decreasing finishing order.
        let mut by_post = vec![0u32; n];
        for (u, &p) in post.iter().enumerate() {
            by_post[p as usize] = u as u32;
        }
        let mut depth = vec![0u32; n];
        for &u in by_post.iter().rev() {
            let next = depth[u as usize] + 1;
            for &d in deps_of(u) {
                depth[d as usize] = depth[d as usize].max(next);
            }
        }

        // Dependents, as compressed rows.
        let mut rdep_start = vec![0u32; n + 1];
        for &d in &deps {
            rdep_start[d as usize + 1] += 1;
        }
        for i in 0..n {
            rdep_start[i + 1] += rdep_start[i];
        }
        let mut fill = rdep_start.clone();
        let mut rdeps = vec![0u32; deps.len()];
        for u in 0..n as u32 {
            for &d in deps_of(u) {
                rdeps[fill[d as usize] as usize] = u;
                fill[d as usize] += 1;
            }
        }

        Topology {
            label: cfg.label.clone(),
            window: cfg.window.0,
            equal: cfg.equal.clone(),
            names,
            ids,
            dep_start,
            deps,
            rdep_start,
            rdeps,
            depth,
            pre,
            post,
            low,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether `service` appears in the graph.
    pub fn knows(&self, service: &str) -> bool {
        self.ids.contains_key(service)
    }

    /// Services linked to `service`, sorted by name. Walks every service
    /// linked to it: linear in the graph's size at worst.
    pub fn linked(&self, service: &str) -> impl Iterator<Item = &str> {
        let mut out: Vec<u32> = Vec::new();
        if let Some(&s) = self.ids.get(service) {
            let mark = self.linked_mask(s);
            out.extend((0..self.names.len() as u32).filter(|&u| mark[u as usize]));
        }
        out.into_iter().map(|u| self.names[u as usize].as_str())
    }

    /// Those of `candidates` linked to `service`, in the candidates' order
    /// (unknown services are left out). A few candidates are asked about one
    /// by one; many at once cost one walk of the services linked to `service`.
    pub fn linked_among<'a>(
        &self,
        service: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Vec<&'a str> {
        let Some(&s) = self.ids.get(service) else {
            return Vec::new();
        };
        let known: Vec<(&'a str, u32)> = candidates
            .into_iter()
            .filter_map(|c| self.ids.get(c).map(|&u| (c, u)))
            .collect();
        if known.len() <= PAIRWISE_MAX {
            known
                .into_iter()
                .filter(|&(_, u)| self.reaches(s, u) || self.reaches(u, s))
                .map(|(c, _)| c)
                .collect()
        } else {
            let mark = self.linked_mask(s);
            known
                .into_iter()
                .filter(|&(_, u)| mark[u as usize])
                .map(|(c, _)| c)
                .collect()
        }
    }

    pub fn are_linked(&self, a: &str, b: &str) -> bool {
        match (self.ids.get(a), self.ids.get(b)) {
            (Some(&a), Some(&b)) => self.reaches(a, b) || self.reaches(b, a),
            _ => false,
        }
    }

    /// Depth in the dependency graph (0 = nothing depends on it).
    pub fn depth(&self, service: &str) -> Option<u32> {
        self.ids.get(service).map(|&u| self.depth[u as usize])
    }

    fn deps_of(&self, u: u32) -> &[u32] {
        &self.deps[self.dep_start[u as usize] as usize..self.dep_start[u as usize + 1] as usize]
    }

    fn dependents_of(&self, u: u32) -> &[u32] {
        &self.rdeps[self.rdep_start[u as usize] as usize..self.rdep_start[u as usize + 1] as usize]
    }

    /// Whether `v`'s numbers allow `u` to depend on it (necessary, not
    /// sufficient): everything `v` reaches is reached from `u`, so `v`
    /// finished first, its smallest finishing number is no smaller and it
    /// lies deeper.
    fn may_reach(&self, u: u32, v: u32) -> bool {
        let (u, v) = (u as usize, v as usize);
        self.depth[u] < self.depth[v] && self.low[u] <= self.low[v] && self.post[v] < self.post[u]
    }

    /// Whether `u` depends on `v`, directly or transitively (`u != v`).
    fn reaches(&self, u: u32, v: u32) -> bool {
        if !self.may_reach(u, v) {
            return false;
        }
        // Entered while `u` was open: found below `u` by the search itself.
        if self.pre[u as usize] <= self.pre[v as usize] {
            return true;
        }
        let mut seen: HashSet<u32> = HashSet::new();
        let mut stack = vec![u];
        while let Some(w) = stack.pop() {
            for &d in self.deps_of(w) {
                if d == v || self.may_reach(d, v) && self.pre[d as usize] <= self.pre[v as usize] {
                    return true;
                }
                if self.may_reach(d, v) && seen.insert(d) {
                    stack.push(d);
                }
            }
        }
        false
    }

    /// Marks every service `s` depends on or that depends on `s`.
    fn linked_mask(&self, s: u32) -> Vec<bool> {
        let mut mark = vec![false; self.names.len()];
        for down in [true, false] {
            let mut stack = vec![s];
            while let Some(w) = stack.pop() {
                let next = if down {
                    self.deps_of(w)
                } else {
                    self.dependents_of(w)
                };
                for &x in next {
                    if !mark[x as usize] {
                        mark[x as usize] = true;
                        stack.push(x);
                    }
                }
            }
        }
        mark
    }
}

/// `a -> b -> c -> a`; a long cycle shows its first and last services and
/// how many it has.
fn render_cycle(cycle: &[&str]) -> String {
    if cycle.len() <= CYCLE_NAMES_SHOWN {
        return cycle.join(" -> ");
    }
    let half = CYCLE_NAMES_SHOWN / 2;
    format!(
        "{} -> ... -> {} ({} services)",
        cycle[..half].join(" -> "),
        cycle[cycle.len() - half..].join(" -> "),
        cycle.len() - 1
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

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

    fn compile(cfg: &TopologyConfig) -> (Topology, Vec<ConfigIssue>) {
        let mut issues = Vec::new();
        (Topology::compile(cfg, &mut issues), issues)
    }

    /// A small deterministic generator (xorshift64), so the graphs are the
    /// same on every run.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    fn name(i: usize) -> String {
        format!("s{i:06}")
    }

    /// `s000000 -> s000001 -> ... -> s{n-1}`.
    fn chain(n: usize) -> TopologyConfig {
        let mut cfg = TopologyConfig::default();
        for i in 0..n - 1 {
            cfg.depends_on.insert(name(i), vec![name(i + 1)]);
        }
        cfg
    }

    /// `layers` layers of `width` services; each depends on the service
    /// below it and on two random services of the next layer, so the depth
    /// of a service is its layer.
    fn layered(layers: usize, width: usize, rng: &mut Rng) -> TopologyConfig {
        let mut cfg = TopologyConfig::default();
        for l in 0..layers - 1 {
            for j in 0..width {
                let next = (l + 1) * width;
                let deps = vec![
                    name(next + j),
                    name(next + rng.below(width)),
                    name(next + rng.below(width)),
                ];
                cfg.depends_on.insert(name(l * width + j), deps);
            }
        }
        cfg
    }

    /// Reference answers by brute force: every service's descendants by a
    /// walk from it, depths by relaxing every edge once per service.
    fn naive(cfg: &TopologyConfig) -> (Vec<String>, Vec<BTreeSet<usize>>, Vec<u32>) {
        let mut names: BTreeSet<&str> = BTreeSet::new();
        for (s, ds) in &cfg.depends_on {
            names.insert(s);
            names.extend(ds.iter().map(String::as_str));
        }
        let names: Vec<String> = names.into_iter().map(str::to_string).collect();
        let idx = |s: &str| names.binary_search_by(|n| n.as_str().cmp(s)).unwrap();
        let edges: Vec<(usize, usize)> = cfg
            .depends_on
            .iter()
            .flat_map(|(s, ds)| ds.iter().map(move |d| (s, d)))
            .map(|(s, d)| (idx(s), idx(d)))
            .collect();
        let mut desc = vec![BTreeSet::new(); names.len()];
        for (u, out) in desc.iter_mut().enumerate() {
            let mut todo = vec![u];
            while let Some(w) = todo.pop() {
                for &(a, b) in &edges {
                    if a == w && out.insert(b) {
                        todo.push(b);
                    }
                }
            }
        }
        // At most one round per service (a cycle would relax forever).
        let mut depth = vec![0u32; names.len()];
        for _ in 0..names.len() {
            for &(a, b) in &edges {
                depth[b] = depth[b].max(depth[a] + 1);
            }
        }
        (names, desc, depth)
    }

    /// Every consecutive pair of the reported cycle (of the parts shown,
    /// when abridged) is an edge, and it closes where it started.
    fn assert_real_cycle(cfg: &TopologyConfig, reason: &str) {
        let path = reason
            .strip_prefix("dependency cycle ")
            .unwrap_or_else(|| panic!("not a cycle: {reason}"));
        let path = path.split(" (").next().unwrap_or_default();
        let parts: Vec<Vec<&str>> = path
            .split(" -> ... -> ")
            .map(|p| p.split(" -> ").collect())
            .collect();
        assert!(parts.len() <= 2, "{reason}");
        assert_eq!(parts[0].first(), parts[parts.len() - 1].last(), "{reason}");
        for part in &parts {
            for w in part.windows(2) {
                assert!(
                    cfg.depends_on[w[0]].iter().any(|d| d == w[1]),
                    "{} -> {} is no edge in {reason}",
                    w[0],
                    w[1]
                );
            }
        }
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
        assert!(!t.are_linked("payments", "payments"));
        assert_eq!(t.depth("checkout"), Some(0));
        assert_eq!(t.depth("payments"), Some(1));
        assert_eq!(t.depth("postgres"), Some(2));
        assert_eq!(t.depth("unknown"), None);
        let linked: Vec<&str> = t.linked("payments").collect();
        assert_eq!(linked, ["checkout", "postgres"]);
    }

    #[test]
    fn cycle_reported() {
        let (_, issues) = topo(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])]);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].reason, "dependency cycle a -> b -> c -> a");
    }

    /// Small random graphs (with and without cycles) against brute force:
    /// the same links, depths and `linked` lists; a cycle reported is real.
    #[test]
    fn random_graphs_agree_with_brute_force() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut acyclic, mut cyclic) = (0, 0);
        for case in 0..400 {
            let n = 2 + rng.below(24);
            let mut cfg = TopologyConfig::default();
            for _ in 0..rng.below(3 * n) {
                let (a, b) = (rng.below(n), rng.below(n));
                // Mostly downward edges; a few upward ones make cycles.
                let (a, b) = if case % 3 == 0 || a < b {
                    (a, b)
                } else {
                    (b, a)
                };
                if a != b {
                    cfg.depends_on.entry(name(a)).or_default().push(name(b));
                }
            }
            let (t, issues) = compile(&cfg);
            let (names, desc, depth) = naive(&cfg);
            let has_cycle = (0..names.len()).any(|u| desc[u].contains(&u));
            if has_cycle {
                cyclic += 1;
                assert_eq!(issues.len(), 1, "case {case}: {cfg:?}");
                assert_real_cycle(&cfg, &issues[0].reason);
                assert!(t.is_empty());
                continue;
            }
            acyclic += 1;
            assert!(issues.is_empty(), "case {case}: {issues:?}");
            for (u, a) in names.iter().enumerate() {
                assert_eq!(t.depth(a), Some(depth[u]), "case {case}: depth of {a}");
                let want: Vec<&str> = (0..names.len())
                    .filter(|&v| desc[u].contains(&v) || desc[v].contains(&u))
                    .map(|v| names[v].as_str())
                    .collect();
                assert_eq!(t.linked(a).collect::<Vec<_>>(), want, "case {case}: {a}");
                let all = names.iter().map(String::as_str);
                assert_eq!(t.linked_among(a, all), want, "case {case}: {a}");
                for (v, b) in names.iter().enumerate() {
                    let linked = desc[u].contains(&v) || desc[v].contains(&u);
                    assert_eq!(t.are_linked(a, b), linked, "case {case}: {a} ~ {b}");
                }
            }
        }
        assert!(
            acyclic > 100 && cyclic > 50,
            "{acyclic} acyclic, {cyclic} cyclic"
        );
    }

    #[test]
    fn chain_of_100k_services() {
        let n = 100_000;
        let (t, issues) = compile(&chain(n));
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(t.depth(&name(0)), Some(0));
        assert_eq!(t.depth(&name(n - 1)), Some(n as u32 - 1));
        assert!(t.are_linked(&name(0), &name(n - 1)));
        assert!(t.are_linked(&name(n - 1), &name(0)));
        assert!(t.are_linked(&name(n / 2), &name(n / 2 + 1)));
        assert_eq!(t.linked(&name(n / 2)).count(), n - 1);
        let names: Vec<String> = (0..n).step_by(1000).map(name).collect();
        let among = t.linked_among(&name(500), names.iter().map(String::as_str));
        assert_eq!(among.len(), names.len(), "every other service is linked");
    }

    #[test]
    fn cycle_through_100k_services_named() {
        let n = 100_000;
        let mut cfg = chain(n);
        cfg.depends_on.insert(name(n - 1), vec![name(0)]);
        let (t, issues) = compile(&cfg);
        assert!(t.is_empty());
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].key, "topology.depends_on");
        assert_eq!(
            issues[0].reason,
            "dependency cycle s000000 -> s000001 -> s000002 -> s000003 -> s000004 -> \
             s000005 -> ... -> s099995 -> s099996 -> s099997 -> s099998 -> s099999 -> \
             s000000 (100000 services)"
        );
    }

    /// 100 layers of 1,000 services, 3 dependencies each: depths, links
    /// checked against a walk from sampled services, and a cycle closed
    /// from the deepest layer back to the top is found and is real.
    #[test]
    fn deep_and_wide_dag_of_100k_services() {
        let (layers, width) = (100, 1000);
        let mut rng = Rng(42);
        let mut cfg = layered(layers, width, &mut rng);
        let (t, issues) = compile(&cfg);
        assert!(issues.is_empty(), "{issues:?}");
        for l in [0, 1, 50, layers - 1] {
            for j in [0, width / 2, width - 1] {
                assert_eq!(t.depth(&name(l * width + j)), Some(l as u32));
            }
        }
        // Services linked to a few sampled ones by plain walks over the
        // config, down its edges and up them.
        let mut up: HashMap<&str, Vec<&str>> = HashMap::new();
        for (s, ds) in &cfg.depends_on {
            for d in ds {
                up.entry(d).or_default().push(s);
            }
        }
        let down = |s: &str| -> Vec<&str> {
            let ds = cfg.depends_on.get(s).map(Vec::as_slice).unwrap_or_default();
            ds.iter().map(String::as_str).collect()
        };
        for &start in &[
            0,
            3 * width + 17,
            50 * width + 500,
            (layers - 1) * width + 999,
        ] {
            let start = name(start);
            let mut want: BTreeSet<&str> = BTreeSet::new();
            for walk_up in [false, true] {
                let mut todo = vec![start.as_str()];
                while let Some(s) = todo.pop() {
                    let next = if walk_up {
                        up.get(s).cloned().unwrap_or_default()
                    } else {
                        down(s)
                    };
                    for x in next {
                        if want.insert(x) {
                            todo.push(x);
                        }
                    }
                }
            }
            let got: BTreeSet<&str> = t.linked(&start).collect();
            assert_eq!(got, want, "linked to {start}");
            for _ in 0..2000 {
                let other = name(rng.below(layers * width));
                assert_eq!(
                    t.are_linked(&start, &other),
                    want.contains(other.as_str()),
                    "{start} ~ {other}"
                );
            }
        }
        let deepest = name((layers - 1) * width + 7);
        cfg.depends_on.insert(deepest.clone(), vec![name(0)]);
        let (t, issues) = compile(&cfg);
        assert!(t.is_empty());
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(
            issues[0]
                .reason
                .ends_with(&format!("-> {deepest} -> s000000 (100 services)")),
            "{}",
            issues[0].reason
        );
        assert_real_cycle(&cfg, &issues[0].reason);
    }
}
