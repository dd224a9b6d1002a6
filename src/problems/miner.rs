//! Online template miner: turns messages (alert name + summary, log lines)
//! into stable templates with `<*>` wildcards, Drain-style.
//!
//! Each message is masked ([`super::masks`]), split on whitespace and routed
//! down a fixed-depth prefix tree — by token count, then by its first
//! `depth - 3` tokens (numeric ones go to a shared `<*>` branch) — to a leaf
//! holding a few clusters. It joins the most similar cluster there, whose
//! template then generalises where they differ, or starts a new one. This is
//! Drain (He et al., ICWS 2017) with three changes that matter for accuracy:
//!
//! 1. **Token classes** ([`super::token`]): where a message and a template
//!    differ in two *words*, they are different events, whatever the
//!    similarity (`cupsd startup succeeded` is not `cupsd shutdown
//!    succeeded`). Numbers and masked values may differ freely; values of the
//!    same shape (`blk_12`/`blk_345`) and tokens a masked pattern fits
//!    (`rhost=<*>`/`rhost=example.org`) count as similar.
//! 2. **Variable words by evidence**: when `variable_after` clusters of a
//!    leaf differ only in one word position (`session closed for user alice`,
//!    `… bob`, `… carol`), they are merged and the position becomes `<*>`.
//! 3. **Merges are remembered** in a union-find, so an id handed out earlier
//!    [`resolves`](TemplateMiner::resolve) to the cluster it was merged into.
//!
//! The miner is pure and deterministic: same messages in the same order give
//! the same ids and templates. Clusters live in vectors in creation order;
//! hash maps are only looked up, never iterated. There is no clock and no I/O.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use super::masks::{default_masks, MaskError, Masker, WILDCARD};
use super::token::{generalise, has_digit, relate, Relation};

/// Settings of a [`TemplateMiner`]. `Default` is the miner's own tuning:
/// built-in masks, similarity 0.4, depth 4, variables after 3 distinct words.
#[derive(Debug, Clone, PartialEq)]
pub struct MinerConfig {
    /// Regexes whose matches are replaced by `<*>` before tokenising, tried
    /// at each position in list order (see [`super::masks`]). Default: the
    /// built-in [`DEFAULT_MASKS`](super::masks::DEFAULT_MASKS).
    pub masks: Vec<String>,
    /// Minimum share of a template's positions a message must match
    /// (identical, covered by a wildcard or pattern, or the same value shape)
    /// to join it, 0.0..=1.0. Lower merges more.
    pub similarity: f64,
    /// Depth of the prefix tree as in Drain, counting the root, the
    /// token-count layer and the leaf: messages are routed by their first
    /// `depth - 3` tokens. At least 3.
    pub depth: usize,
    /// Children per tree node before further tokens share the `<*>` branch.
    pub max_children: usize,
    /// Number of clusters that must differ only in the same one word position
    /// for that position to become a variable (the clusters are merged).
    /// 0 disables this; at least 2 otherwise.
    pub variable_after: usize,
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            masks: default_masks(),
            similarity: 0.4,
            depth: 4,
            max_children: 100,
            variable_after: 3,
        }
    }
}

/// Why a [`MinerConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MinerError {
    /// A mask is not a valid regex.
    #[error(transparent)]
    Mask(#[from] MaskError),
    /// `similarity` is outside 0.0..=1.0 (or NaN).
    #[error("similarity must be within 0.0..=1.0, got {0}")]
    Similarity(f64),
    /// `depth` is below 3.
    #[error("depth must be at least 3 (root, token count, leaf), got {0}")]
    Depth(usize),
    /// `max_children` is below 2.
    #[error("max_children must be at least 2, got {0}")]
    MaxChildren(usize),
    /// `variable_after` is 1 (every word would be a variable).
    #[error("variable_after must be 0 (off) or at least 2, got {0}")]
    VariableAfter(usize),
}

impl MinerConfig {
    /// Checks every setting, compiling the masks to report a bad one.
    pub fn validate(&self) -> Result<(), MinerError> {
        self.validate_numbers()?;
        Masker::new(&self.masks)?;
        Ok(())
    }

    fn validate_numbers(&self) -> Result<(), MinerError> {
        if !(0.0..=1.0).contains(&self.similarity) {
            return Err(MinerError::Similarity(self.similarity));
        }
        if self.depth < 3 {
            return Err(MinerError::Depth(self.depth));
        }
        if self.max_children < 2 {
            return Err(MinerError::MaxChildren(self.max_children));
        }
        if self.variable_after == 1 {
            return Err(MinerError::VariableAfter(self.variable_after));
        }
        Ok(())
    }
}

/// A cluster's id: 1, 2, 3… in creation order, so stable for a given input
/// order. After merges several ids [`resolve`](TemplateMiner::resolve) to the
/// same (lowest) one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterId(pub u32);

impl ClusterId {
    fn index(self) -> usize {
        self.0 as usize - 1
    }

    fn of_index(i: usize) -> ClusterId {
        ClusterId(u32::try_from(i + 1).expect("fewer than 2^32 clusters"))
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A live cluster, as listed by [`TemplateMiner::clusters`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// Its id (the lowest of the clusters merged into it).
    pub id: ClusterId,
    /// Its template: tokens joined by single spaces, variables as `<*>`.
    pub template: String,
    /// Messages it absorbed, including those of clusters merged into it.
    pub size: u64,
}

#[derive(Debug, Clone)]
struct Cluster {
    /// Template tokens; `<*>` alone is a wildcard, inside a token a pattern.
    template: Vec<Box<str>>,
    size: u64,
    /// Index of the tree leaf holding it.
    leaf: usize,
}

/// FxHash (rustc's hasher): fast on short keys and, unlike std's default,
/// seeded identically in every process. Only used for lookups.
#[derive(Default)]
struct FxHasher(u64);

const FX_K: u64 = 0xf135_7aea_2e62_a9c5;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let v = u64::from_le_bytes(c.try_into().expect("8-byte chunk"));
            self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(FX_K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(b)).wrapping_mul(FX_K);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(FX_K);
    }

    fn write_usize(&mut self, i: usize) {
        self.0 = (self.0.rotate_left(5) ^ i as u64).wrapping_mul(FX_K);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A prefix-tree node. Inner nodes route by token; leaves hold clusters.
#[derive(Debug, Default)]
struct Node {
    children: FxMap<Box<str>, usize>,
    /// The shared branch for numeric tokens, masked tokens and overflow.
    wildcard: Option<usize>,
    /// Live clusters (leaves only), oldest first.
    clusters: Vec<usize>,
}

/// The online template miner. See the module docs.
#[derive(Debug)]
pub struct TemplateMiner {
    cfg: MinerConfig,
    masker: Masker,
    /// Token count → first-layer node.
    by_len: FxMap<usize, usize>,
    nodes: Vec<Node>,
    clusters: Vec<Cluster>,
    /// Union-find parent per cluster index (itself when live).
    parent: Vec<usize>,
    /// Reused buffers: masked text and token slices.
    buf: String,
    toks: Vec<&'static str>,
}

/// Empties `v` and hands back its allocation for slices of another lifetime.
/// (`collect` on an emptied `into_iter().map()` reuses the buffer in place.)
fn recycle<'a>(mut v: Vec<&str>) -> Vec<&'a str> {
    v.clear();
    v.into_iter().map(|_| -> &'a str { unreachable!("vector was cleared") }).collect()
}

/// The result of comparing a message with one cluster.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Score {
    /// Positions the template covers.
    covered: usize,
    /// Wildcard positions in the template (Drain's tie-break: more general wins).
    wildcards: usize,
}

impl TemplateMiner {
    /// A miner with `cfg`, validated first.
    pub fn new(cfg: MinerConfig) -> Result<TemplateMiner, MinerError> {
        cfg.validate_numbers()?;
        let masker = Masker::new(&cfg.masks)?;
        Ok(TemplateMiner {
            cfg,
            masker,
            by_len: FxMap::default(),
            nodes: Vec::new(),
            clusters: Vec::new(),
            parent: Vec::new(),
            buf: String::new(),
            toks: Vec::new(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &MinerConfig {
        &self.cfg
    }

    /// Learns `line`: it joins the best matching cluster (whose template may
    /// generalise) or starts one. Returns the cluster it is in now; if that
    /// cluster is merged later, [`resolve`](Self::resolve) follows it.
    pub fn add(&mut self, line: &str) -> ClusterId {
        let mut buf = std::mem::take(&mut self.buf);
        let mut toks = recycle(std::mem::take(&mut self.toks));
        toks.extend(self.masker.mask(line, &mut buf).split_whitespace());
        let found = self.leaf_of(&toks).and_then(|leaf| self.best_match(leaf, &toks));
        let index = match found {
            Some(c) => {
                self.absorb(c, &toks);
                c
            }
            None => {
                let c = self.create(&toks);
                self.promote(c)
            }
        };
        self.toks = recycle(toks);
        self.buf = buf;
        ClusterId::of_index(index)
    }

    /// The cluster `line` would join, without learning anything.
    pub fn match_line(&mut self, line: &str) -> Option<ClusterId> {
        let mut buf = std::mem::take(&mut self.buf);
        let mut toks = recycle(std::mem::take(&mut self.toks));
        toks.extend(self.masker.mask(line, &mut buf).split_whitespace());
        let found = self.leaf_of(&toks).and_then(|leaf| self.best_match(leaf, &toks));
        self.toks = recycle(toks);
        self.buf = buf;
        found.map(ClusterId::of_index)
    }

    /// The live cluster `id` was merged into (itself if it was not).
    ///
    /// # Panics
    /// If `id` was not handed out by this miner.
    pub fn resolve(&self, id: ClusterId) -> ClusterId {
        ClusterId::of_index(self.root(id.index()))
    }

    /// The current template of `id`'s cluster (after [`resolve`](Self::resolve)).
    ///
    /// # Panics
    /// If `id` was not handed out by this miner.
    pub fn template(&self, id: ClusterId) -> String {
        self.clusters[self.root(id.index())].template.join(" ")
    }

    /// Messages absorbed by `id`'s cluster (after [`resolve`](Self::resolve)).
    ///
    /// # Panics
    /// If `id` was not handed out by this miner.
    pub fn size(&self, id: ClusterId) -> u64 {
        self.clusters[self.root(id.index())].size
    }

    /// The live clusters, by id.
    pub fn clusters(&self) -> impl Iterator<Item = ClusterInfo> + '_ {
        (0..self.clusters.len()).filter(|&i| self.parent[i] == i).map(|i| ClusterInfo {
            id: ClusterId::of_index(i),
            template: self.clusters[i].template.join(" "),
            size: self.clusters[i].size,
        })
    }

    /// Number of live clusters.
    pub fn len(&self) -> usize {
        (0..self.clusters.len()).filter(|&i| self.parent[i] == i).count()
    }

    /// True before the first message.
    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty()
    }

    fn root(&self, mut i: usize) -> usize {
        while self.parent[i] != i {
            i = self.parent[i];
        }
        i
    }

    fn token_layers(&self) -> usize {
        self.cfg.depth - 3
    }

    /// The leaf `toks` routes to, if the tree has one.
    fn leaf_of(&self, toks: &[&str]) -> Option<usize> {
        let mut node = *self.by_len.get(&toks.len())?;
        for tok in toks.iter().take(self.token_layers()) {
            let n = &self.nodes[node];
            node = match n.children.get(*tok) {
                Some(&c) => c,
                None => n.wildcard?,
            };
        }
        Some(node)
    }

    /// Compares `toks` with cluster `c`: `None` on a word conflict.
    fn score(&self, c: usize, toks: &[&str]) -> Option<Score> {
        let mut s = Score { covered: 0, wildcards: 0 };
        for (t, w) in self.clusters[c].template.iter().zip(toks) {
            if &**t == WILDCARD {
                s.wildcards += 1;
                s.covered += 1;
                continue;
            }
            match relate(t, w) {
                Relation::Covered => s.covered += 1,
                Relation::Compatible => {}
                Relation::Conflict => return None,
            }
        }
        Some(s)
    }

    fn similar_enough(&self, covered: usize, len: usize) -> bool {
        len == 0 || covered as f64 >= self.cfg.similarity * len as f64
    }

    /// The most similar cluster of `leaf` for `toks`, if similar enough.
    /// Ties go to the more general template, then to the older cluster.
    fn best_match(&self, leaf: usize, toks: &[&str]) -> Option<usize> {
        let mut best: Option<(usize, Score)> = None;
        for &c in &self.nodes[leaf].clusters {
            let Some(s) = self.score(c, toks) else { continue };
            let better = match best {
                None => true,
                Some((_, b)) => (s.covered, s.wildcards) > (b.covered, b.wildcards),
            };
            if better {
                best = Some((c, s));
            }
        }
        best.filter(|(_, s)| self.similar_enough(s.covered, toks.len())).map(|(c, _)| c)
    }

    /// Adds `toks` to cluster `c`, generalising its template where needed.
    fn absorb(&mut self, c: usize, toks: &[&str]) {
        let cl = &mut self.clusters[c];
        cl.size += 1;
        for (t, w) in cl.template.iter_mut().zip(toks) {
            if let Some(g) = generalise(t, w) {
                *t = g.into_boxed_str();
            }
        }
    }

    fn new_node(&mut self) -> usize {
        self.nodes.push(Node::default());
        self.nodes.len() - 1
    }

    /// Starts a cluster for `toks`, creating its tree path as Drain does.
    fn create(&mut self, toks: &[&str]) -> usize {
        let mut node = match self.by_len.get(&toks.len()) {
            Some(&n) => n,
            None => {
                let n = self.new_node();
                self.by_len.insert(toks.len(), n);
                n
            }
        };
        for tok in toks.iter().take(self.token_layers()) {
            if let Some(&c) = self.nodes[node].children.get(*tok) {
                node = c;
                continue;
            }
            let n = &self.nodes[node];
            let full = n.children.len() + 1 >= self.cfg.max_children;
            node = if *tok == WILDCARD || has_digit(tok) || tok.contains(WILDCARD) || full {
                match self.nodes[node].wildcard {
                    Some(w) => w,
                    None => {
                        let w = self.new_node();
                        self.nodes[node].wildcard = Some(w);
                        w
                    }
                }
            } else {
                let c = self.new_node();
                self.nodes[node].children.insert((*tok).into(), c);
                c
            };
        }
        let c = self.clusters.len();
        self.clusters.push(Cluster {
            template: toks.iter().map(|t| (*t).into()).collect(),
            size: 1,
            leaf: node,
        });
        self.parent.push(c);
        self.nodes[node].clusters.push(c);
        c
    }

    /// After cluster `c` was created: if it and enough clusters of its leaf
    /// differ only in one word position, merge them with `<*>` there.
    /// Returns the cluster `c` ends up in.
    fn promote(&mut self, c: usize) -> usize {
        let k = self.cfg.variable_after;
        if k < 2 {
            return c;
        }
        let leaf = self.clusters[c].leaf;
        let len = self.clusters[c].template.len();
        // Siblings of c: clusters with exactly one conflicting position.
        let mut siblings: Vec<(usize, usize)> = Vec::new(); // (position, cluster)
        for &d in &self.nodes[leaf].clusters {
            if d == c {
                continue;
            }
            let mut conflict = None;
            let mut many = false;
            for (i, (a, b)) in
                self.clusters[d].template.iter().zip(&self.clusters[c].template).enumerate()
            {
                if relate(a, b) == Relation::Conflict {
                    if conflict.is_some() {
                        many = true;
                        break;
                    }
                    conflict = Some(i);
                }
            }
            if let (Some(p), false) = (conflict, many) {
                siblings.push((p, d));
            }
        }
        // The position with the most siblings (the first on ties).
        let mut best: Option<(usize, usize)> = None; // (count, position)
        for p in 0..len {
            let n = siblings.iter().filter(|(q, _)| *q == p).count();
            if n + 1 >= k && best.map_or(true, |(m, _)| n > m) {
                best = Some((n, p));
            }
        }
        let Some((_, p)) = best else { return c };
        // A template must keep a constant: short messages made only of a
        // varying word (`closeNotification…`, `initEnvironment`) stay apart.
        let constant = |(i, t): (usize, &Box<str>)| i != p && &**t != WILDCARD;
        if !self.clusters[c].template.iter().enumerate().any(constant) {
            return c;
        }
        let mut group: Vec<usize> =
            siblings.iter().filter(|(q, _)| *q == p).map(|(_, d)| *d).collect();
        group.push(c);
        group.sort_unstable();
        let survivor = group[0];
        self.clusters[survivor].template[p] = WILDCARD.into();
        for &m in &group[1..] {
            self.merge_into(survivor, m);
        }
        survivor
    }

    /// Merges live cluster `m` into live cluster `into` (same leaf).
    fn merge_into(&mut self, into: usize, m: usize) {
        let other = std::mem::take(&mut self.clusters[m].template);
        let size = self.clusters[m].size;
        let cl = &mut self.clusters[into];
        cl.size += size;
        for (t, w) in cl.template.iter_mut().zip(other.iter()) {
            if let Some(g) = generalise(t, w) {
                *t = g.into_boxed_str();
            }
        }
        self.clusters[m].template = other;
        self.parent[m] = into;
        let leaf = self.clusters[m].leaf;
        self.nodes[leaf].clusters.retain(|&x| x != m);
    }
}
