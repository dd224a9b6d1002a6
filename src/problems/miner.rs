//! Online template miner: turns messages (alert name + summary, log lines)
//! into stable templates with `<*>` wildcards, Drain-style.
//!
//! Each message is masked ([`super::masks`]: numbers, ids, addresses… become
//! `<*>`), split on whitespace and routed down a fixed-depth prefix tree
//! ([`super::tree`]) — by token count, then by its first `depth - 3` tokens —
//! to a leaf holding a few clusters. It joins the most similar cluster there,
//! whose template generalises where they differ, or starts a new one. That
//! is Drain (He et al., ICWS 2017); what this miner adds, all of it general
//! (nothing here knows a log format):
//!
//! 1. **Token classes** ([`super::token`]). Where a message and a template
//!    differ in two *words*, they are different events however similar the
//!    rest (`cupsd startup succeeded` / `cupsd shutdown succeeded`,
//!    `failure;` / `failures;`). Values (digits, masks, month names) may
//!    differ; tokens of the same shape (`blk_12`/`blk_345`) and tokens a
//!    masked pattern fits (`rhost=<*>`/`rhost=example.org`) count as equal,
//!    and generalise within the token (`blk_<*>`, `(<*>)`) rather than as a
//!    whole. Drain's threshold (`similarity`) then only weighs values.
//! 2. **Variable words by evidence.** When the new cluster and others of its
//!    leaf differ only in the same one to three word positions, and each of
//!    those positions shows at least `variable_after` distinct words
//!    (`session closed for user alice`, `… bob`, `… carol`, `… dave`), the
//!    positions are variables: the clusters merge, with `<*>` there. Two or
//!    three alternatives are typical of enumerations (`startup`/`shutdown`,
//!    `GET`/`POST`/`PUT`), which stay apart.
//! 3. **Over-split clusters are merged.** A cluster whose template comes to
//!    subsume another of its leaf absorbs it; clusters whose templates differ
//!    only in how many `<*>` follow each other (lists: `delete <*>` and
//!    `delete <*> <*> <*>`) are aliased across token counts; a message whose
//!    leading token got its own tree branch after it was first seen still
//!    finds its cluster under the `<*>` branch.
//! 4. **Short messages are safe.** A template must keep a constant token: a
//!    message of masked values alone does not wipe out a template's words,
//!    a template of wildcards only takes messages of values only, and no
//!    merge produces one from messages with words (`initEnvironment`,
//!    `clear()` and `flush()` stay apart).
//! 5. **Stable ids.** Ids are 1, 2, 3… in creation order; merges are kept in
//!    a union-find whose root is a group's lowest id, so an id handed out
//!    earlier [`resolves`](TemplateMiner::resolve) to its cluster now. A
//!    message seen before (exactly, after masking) goes back to its cluster:
//!    feeding the same messages again changes nothing.
//!
//! The miner is pure and deterministic: same messages in the same order give
//! the same ids and templates. Clusters live in vectors in creation order;
//! hash maps (with a fixed hasher) are only looked up, never iterated. There
//! is no clock and no I/O. Per message it allocates nothing unless the
//! message creates or changes a cluster: masking reuses a buffer, tokens are
//! slices, and the masks are one regex compiled once.
//!
//! Cost: one regex pass, a few hash lookups and a comparison with the
//! clusters of one or two leaves that can take the message: a cluster with
//! another word at one of the message's word positions cannot, and an index
//! of each leaf by word and position ([`index`]) skips it. So a storm of
//! distinct messages, which fills one leaf with as many clusters, costs the
//! same per message whatever their number. (A message of values only, or
//! a short one mixing values with at most three words when it creates a
//! cluster, is compared with its whole leaf.) Memory grows with the
//! clusters: their templates and one index entry per token (and a bounded
//! map of recent messages).

use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

use super::masks::{default_masks, MaskError, Masker, WILDCARD};
use super::token::{generalise, is_variable_like, relate, subsumes, Relation};
use super::tree::{FxHasher, FxMap, PrefixTree};

mod index;
use index::{is_word, LeafIndex};

/// Settings of a [`TemplateMiner`]. `Default` is the miner's own tuning:
/// built-in masks, similarity 0.4, depth 4, max 100 children, variables
/// after 4 distinct words.
#[derive(Debug, Clone, PartialEq)]
pub struct MinerConfig {
    /// Regexes whose matches are replaced by `<*>` before tokenising, tried
    /// at each position in list order (see [`super::masks`]). Default: the
    /// built-in [`DEFAULT_MASKS`](super::masks::DEFAULT_MASKS). To add masks
    /// of your own, put them *before* the built-in ones, so that they win
    /// where both match at the same position.
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
    /// Distinct words a position must show, across clusters of a leaf that
    /// differ only there (in at most three positions), to become a variable:
    /// the clusters are merged with `<*>` there. 0 disables this; at least 2
    /// otherwise. Lower merges sooner but also merges enumerations
    /// (`startup`/`shutdown`); the default, 4, keeps sets of up to three
    /// alternatives apart.
    pub variable_after: usize,
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            masks: default_masks(),
            similarity: 0.4,
            depth: 4,
            max_children: 100,
            variable_after: 4,
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

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Cluster {
    /// Template tokens; `<*>` alone is a wildcard, inside a token a pattern.
    template: Vec<Box<str>>,
    /// The tree leaf holding it.
    leaf: usize,
    /// The cluster of its leaf it was merged into, if it was: it then no
    /// longer takes messages.
    merged_into: Option<usize>,
    /// Key of its template in [`TemplateMiner::by_outline`], if indexed.
    outline: Option<u64>,
}

/// The online template miner. See the module docs.
///
/// Cloning is cheap for an empty miner (the compiled masks are shared), so
/// one validated miner can seed many.
#[derive(Debug, Clone)]
pub struct TemplateMiner {
    cfg: MinerConfig,
    masker: Masker,
    tree: PrefixTree,
    clusters: Vec<Cluster>,
    /// Union-find over cluster indices: a group's root is its lowest index,
    /// and its id is the group's id. Groups form by merging within a leaf
    /// (the merged cluster dies) and by aliasing clusters of different
    /// lengths whose templates differ only in how many `<*>` are in a row
    /// (both live on, each matching its own messages).
    parent: Vec<usize>,
    /// Messages per group, at the root index.
    group_size: Vec<u64>,
    /// Groups joined so far ([`TemplateMiner::merges`]).
    merges: u64,
    /// Outline hash → live clusters with that outline (see [`outline_eq`]).
    by_outline: FxMap<u64, Vec<usize>>,
    /// Recently seen messages: [`line_hash`] of the masked message → the
    /// cluster it went to. A message seen again goes back to that cluster
    /// (if it still matches it at every position), so re-feeding is stable
    /// and repeats skip the search. Emptied when it reaches
    /// [`RECENT_CAPACITY`] entries, to bound memory.
    recent: FxMap<u64, usize>,
    /// The clusters of each leaf by word and position, so that a search
    /// visits only the clusters that can qualify, however full the leaf.
    index: LeafIndex,
    /// Clusters compared with a message or template so far: the miner's
    /// work, which stays proportional to the messages however many
    /// templates there are (tests bound it).
    compared: u64,
    /// Scan whole leaves instead of asking the index (tests check that both
    /// give the same clusters).
    scan_leaves: bool,
    /// Reused buffers: masked text, token slices, candidate leaves and
    /// clusters.
    buf: String,
    toks: Vec<&'static str>,
    leaves: Vec<usize>,
    found: Vec<usize>,
}

/// Everything a [`TemplateMiner`] learned, for a snapshot in the store: a
/// miner rebuilt from it with [`TemplateMiner::restore`] behaves exactly
/// like the one it was taken from (same ids, same templates, same answers
/// to every later message), without re-feeding the messages it learned
/// from. Maps are written sorted, so equal states give equal bytes. The
/// tree keeps the depth and child limit it was built with.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MinerState {
    tree: PrefixTree,
    clusters: Vec<Cluster>,
    parent: Vec<usize>,
    group_size: Vec<u64>,
    #[serde(with = "super::tree::sorted_map")]
    by_outline: FxMap<u64, Vec<usize>>,
    #[serde(with = "super::tree::sorted_map")]
    recent: FxMap<u64, usize>,
}

impl PartialEq for PrefixTree {
    fn eq(&self, other: &Self) -> bool {
        // Compared through their canonical (sorted) encoding.
        rmp_serde::to_vec(self).ok() == rmp_serde::to_vec(other).ok()
    }
}

/// Most messages [`TemplateMiner::recent`] remembers (about 16 bytes each).
const RECENT_CAPACITY: usize = 1 << 16;

/// Hash of a token sequence (tokens and their boundaries), finished with
/// MurmurHash3's mixer so that all 64 bits are well mixed. Two messages with
/// the same hash are told apart by [`TemplateMiner::recall`]'s check.
fn line_hash(toks: &[&str]) -> u64 {
    let mut h = BuildHasherDefault::<FxHasher>::default().build_hasher();
    toks.len().hash(&mut h);
    for t in toks {
        t.hash(&mut h);
    }
    let mut x = h.finish();
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Most word positions one promotion may turn into variables at once.
const MAX_VARIABLE_POSITIONS: usize = 3;

/// Empties `v` and hands back its allocation for slices of another lifetime.
/// (`collect` on an emptied `into_iter().map()` reuses the buffer in place.)
fn recycle<'a>(mut v: Vec<&str>) -> Vec<&'a str> {
    v.clear();
    v.into_iter()
        .map(|_| -> &'a str { unreachable!("vector was cleared") })
        .collect()
}

/// The result of comparing a message with one cluster.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Score {
    /// Positions the template covers.
    covered: usize,
    /// Wildcard positions in the template (Drain's tie-break: more general wins).
    wildcards: usize,
}

fn is_wild(t: &str) -> bool {
    t == WILDCARD
}

/// A template's outline: its tokens with each run of `<*>` counted as one.
/// `None` unless it has both a `<*>` and a constant token.
fn outline_hash(template: &[Box<str>]) -> Option<u64> {
    let has_wild = template.iter().any(|t| is_wild(t));
    let has_const = template.iter().any(|t| !is_wild(t));
    if !(has_wild && has_const) {
        return None;
    }
    let mut h = BuildHasherDefault::<FxHasher>::default().build_hasher();
    for t in outline(template) {
        t.hash(&mut h);
    }
    Some(h.finish())
}

/// A template's tokens with each run of `<*>` given once.
fn outline(template: &[Box<str>]) -> impl Iterator<Item = &str> + '_ {
    template
        .iter()
        .enumerate()
        .filter(|&(i, t)| !(is_wild(t) && i > 0 && is_wild(&template[i - 1])))
        .map(|(_, t)| &**t)
}

/// True iff two templates have the same outline (runs of `<*>` as one).
fn outline_eq(a: &[Box<str>], b: &[Box<str>]) -> bool {
    outline(a).eq(outline(b))
}

impl TemplateMiner {
    /// A miner with `cfg`, validated first.
    pub fn new(cfg: MinerConfig) -> Result<TemplateMiner, MinerError> {
        cfg.validate_numbers()?;
        let masker = Masker::new(&cfg.masks)?;
        Ok(TemplateMiner {
            tree: PrefixTree::new(cfg.depth, cfg.max_children),
            cfg,
            masker,
            clusters: Vec::new(),
            parent: Vec::new(),
            group_size: Vec::new(),
            merges: 0,
            by_outline: FxMap::default(),
            index: LeafIndex::default(),
            compared: 0,
            scan_leaves: false,
            buf: String::new(),
            toks: Vec::new(),
            leaves: Vec::new(),
            found: Vec::new(),
            recent: FxMap::default(),
        })
    }

    /// What the miner learned, to rebuild it with [`TemplateMiner::restore`].
    pub fn state(&self) -> MinerState {
        MinerState {
            tree: self.tree.clone(),
            clusters: self.clusters.clone(),
            parent: self.parent.clone(),
            group_size: self.group_size.clone(),
            by_outline: self.by_outline.clone(),
            recent: self.recent.clone(),
        }
    }

    /// A miner with `cfg` (its masks, similarity and promotion settings)
    /// that knows what `state` knows. Every index in `state` is checked, so
    /// a corrupt snapshot is an error here, never a panic later.
    pub fn restore(cfg: MinerConfig, state: MinerState) -> Result<TemplateMiner, String> {
        let mut m = TemplateMiner::new(cfg).map_err(|e| e.to_string())?;
        let n = state.clusters.len();
        if state.parent.len() != n || state.group_size.len() != n {
            return Err(format!(
                "{n} clusters but {} parents and {} group sizes",
                state.parent.len(),
                state.group_size.len()
            ));
        }
        state.tree.check(n)?;
        for (i, c) in state.clusters.iter().enumerate() {
            if !state.tree.has_node(c.leaf) {
                return Err(format!("cluster {i} lives in a missing leaf {}", c.leaf));
            }
            if c.merged_into.is_some_and(|k| k >= i) || state.parent[i] > i {
                // Merges and unions always point to a lower index.
                return Err(format!("cluster {i} points to a later cluster"));
            }
        }
        let in_range = |c: &usize| *c < n;
        if !state.by_outline.values().flatten().all(in_range)
            || !state.recent.values().all(in_range)
        {
            return Err("an index refers to a cluster that does not exist".into());
        }
        m.tree = state.tree;
        m.clusters = state.clusters;
        m.parent = state.parent;
        m.group_size = state.group_size;
        m.by_outline = state.by_outline;
        m.recent = state.recent;
        // The leaf index is derived data, not in the snapshot: every live
        // cluster goes back in, as `create` put it.
        for (c, cluster) in m.clusters.iter().enumerate() {
            if cluster.merged_into.is_none() {
                m.index.insert(cluster.leaf, c, &cluster.template);
            }
        }
        Ok(m)
    }

    /// The configuration in use.
    pub fn config(&self) -> &MinerConfig {
        &self.cfg
    }

    /// Learns `line`: it joins the best matching cluster (whose template may
    /// generalise) or starts one. Returns the cluster's id as of now; if the
    /// cluster is merged later, [`resolve`](Self::resolve) follows it.
    pub fn add(&mut self, line: &str) -> ClusterId {
        let mut buf = std::mem::take(&mut self.buf);
        let mut toks = recycle(std::mem::take(&mut self.toks));
        toks.extend(self.masker.mask(line, &mut buf).split_whitespace());
        let hash = line_hash(&toks);
        let index = if let Some(c) = self.recall(hash, &toks) {
            self.absorb(c, &toks);
            c
        } else {
            let c = match self.best_match(&toks) {
                Some(c) => {
                    self.absorb(c, &toks);
                    c
                }
                None => {
                    let c = self.create(&toks);
                    self.promote(c);
                    c
                }
            };
            if self.recent.len() >= RECENT_CAPACITY {
                self.recent.clear();
            }
            self.recent.insert(hash, c);
            c
        };
        self.toks = recycle(toks);
        self.buf = buf;
        ClusterId::of_index(self.root(index))
    }

    /// The live cluster a message with `hash` went to last time, if it is
    /// remembered and still matches `toks` at every position.
    fn recall(&self, hash: u64, toks: &[&str]) -> Option<usize> {
        let mut c = *self.recent.get(&hash)?;
        while let Some(next) = self.clusters[c].merged_into {
            c = next;
        }
        let full = self.clusters[c].template.len() == toks.len()
            && self.score(c, toks).is_some_and(|s| s.covered == toks.len());
        full.then_some(c)
    }

    /// The cluster `line` would join now, without learning anything
    /// (`&mut` only for the reused buffers).
    pub fn match_line(&mut self, line: &str) -> Option<ClusterId> {
        let mut buf = std::mem::take(&mut self.buf);
        let mut toks = recycle(std::mem::take(&mut self.toks));
        toks.extend(self.masker.mask(line, &mut buf).split_whitespace());
        let found = self
            .recall(line_hash(&toks), &toks)
            .or_else(|| self.best_match(&toks));
        self.toks = recycle(toks);
        self.buf = buf;
        found.map(|c| ClusterId::of_index(self.root(c)))
    }

    /// The cluster `id` belongs to now (itself unless it was merged).
    ///
    /// # Panics
    /// If `id` was not handed out by this miner.
    pub fn resolve(&self, id: ClusterId) -> ClusterId {
        ClusterId::of_index(self.root(id.index()))
    }

    /// How many times two clusters' groups were joined so far: while it
    /// stays the same, every id resolves as it did.
    pub fn merges(&self) -> u64 {
        self.merges
    }

    /// The current template of `id`'s cluster (after [`resolve`](Self::resolve)):
    /// tokens joined by single spaces, variables as `<*>`.
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
        self.group_size[self.root(id.index())]
    }

    /// The clusters, by id (merged ones are listed under the id they resolve to).
    pub fn clusters(&self) -> impl Iterator<Item = ClusterInfo> + '_ {
        (0..self.clusters.len())
            .filter(|&i| self.parent[i] == i)
            .map(|i| ClusterInfo {
                id: ClusterId::of_index(i),
                template: self.clusters[i].template.join(" "),
                size: self.group_size[i],
            })
    }

    /// Number of clusters (ids that resolve to themselves).
    pub fn len(&self) -> usize {
        (0..self.clusters.len())
            .filter(|&i| self.parent[i] == i)
            .count()
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

    /// Joins the groups of `a` and `b`; the lower root becomes the root.
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra == rb {
            return;
        }
        let (keep, gone) = (ra.min(rb), ra.max(rb));
        self.merges += 1;
        self.parent[gone] = keep;
        self.group_size[keep] += self.group_size[gone];
        // Shorten the paths just walked.
        for x in [a, b] {
            let mut x = x;
            while self.parent[x] != keep {
                let next = self.parent[x];
                self.parent[x] = keep;
                x = next;
            }
        }
    }

    /// Compares `toks` with cluster `c`: `None` on a word conflict.
    fn score(&self, c: usize, toks: &[&str]) -> Option<Score> {
        let template = &self.clusters[c].template;
        let mut s = Score {
            covered: 0,
            wildcards: 0,
        };
        let mut keeps_constant = false;
        for (t, w) in template.iter().zip(toks) {
            if is_wild(t) {
                s.wildcards += 1;
                s.covered += 1;
                continue;
            }
            match relate(t, w) {
                Relation::Covered => s.covered += 1,
                Relation::Compatible => {}
                Relation::Conflict => return None,
            }
            keeps_constant |= subsumes(t, w);
        }
        if s.wildcards == template.len() {
            // A template of wildcards only takes messages of values only: it
            // must not swallow every message of its length whose words it
            // has not seen.
            if toks.iter().any(|t| !is_variable_like(t)) {
                return None;
            }
        } else if !keeps_constant {
            // Joining must leave the template a constant: a message of
            // masked values alone does not turn `x1 failed` into `<*> <*>`.
            let stays =
                |(t, w): (&str, &str)| !is_wild(t) && generalise(t, w).is_none_or(|g| !is_wild(&g));
            if !template.iter().zip(toks).any(|(t, w)| stays((t, w))) {
                return None;
            }
        }
        Some(s)
    }

    fn similar_enough(&self, covered: usize, len: usize) -> bool {
        len == 0 || covered as f64 >= self.cfg.similarity * len as f64
    }

    /// The most similar cluster for `toks` in the leaves it may belong to,
    /// if similar enough. Ties go to the more specific leaf (its own
    /// branches before `<*>` ones), then to the more general template (as in
    /// Drain), then to the older cluster.
    fn best_match(&mut self, toks: &[&str]) -> Option<usize> {
        let mut leaves = std::mem::take(&mut self.leaves);
        leaves.clear();
        self.tree.candidates(toks, &mut leaves);
        let mut found = std::mem::take(&mut self.found);
        let mut best: Option<(usize, Score)> = None;
        for &leaf in &leaves {
            let mut best_here: Option<(usize, Score)> = None;
            // Only clusters without a conflicting word can score; in leaf
            // order, so ties go as in a scan of the leaf.
            if self.scan_leaves || !self.index.matching(leaf, toks, &mut found) {
                found.clear();
                found.extend_from_slice(self.tree.clusters(leaf));
            }
            self.compared += found.len() as u64;
            for &c in &found {
                let Some(s) = self.score(c, toks) else {
                    continue;
                };
                let better = match best_here {
                    None => true,
                    Some((_, b)) => (s.covered, s.wildcards) > (b.covered, b.wildcards),
                };
                if better {
                    best_here = Some((c, s));
                }
            }
            if let Some((c, s)) = best_here {
                if best.is_none_or(|(_, b)| s.covered > b.covered) {
                    best = Some((c, s));
                }
            }
        }
        self.leaves = leaves;
        self.found = found;
        best.filter(|(_, s)| self.similar_enough(s.covered, toks.len()))
            .map(|(c, _)| c)
    }

    /// Adds `toks` to cluster `c`, generalising its template where needed.
    fn absorb(&mut self, c: usize, toks: &[&str]) {
        let root = self.root(c);
        self.group_size[root] += 1;
        let mut changed = false;
        let leaf = self.clusters[c].leaf;
        for (pos, (t, w)) in self.clusters[c].template.iter_mut().zip(toks).enumerate() {
            if let Some(g) = generalise(t, w) {
                let g = g.into_boxed_str();
                self.index.update(leaf, c, pos, t, &g);
                *t = g;
                changed = true;
            }
        }
        if changed {
            self.settle(c);
        }
    }

    /// After live cluster `c`'s template changed: merges the clusters of its
    /// leaf whose templates it now subsumes (their messages would all go to
    /// `c`), then re-files the result by outline.
    fn settle(&mut self, mut c: usize) {
        let leaf = self.clusters[c].leaf;
        let mut found = std::mem::take(&mut self.found);
        // Merging can generalise the survivor further: repeat to a fixpoint.
        loop {
            // Only clusters holding each of its words can be subsumed.
            if self.scan_leaves
                || !self
                    .index
                    .sharing_words(leaf, &self.clusters[c].template, &mut found)
            {
                found.clear();
                found.extend_from_slice(self.tree.clusters(leaf));
            }
            self.compared += found.len() as u64;
            let Some(d) = found.iter().copied().find(|&d| {
                let (mine, theirs) = (&self.clusters[c].template, &self.clusters[d].template);
                d != c && mine.iter().zip(theirs).all(|(a, b)| subsumes(a, b))
            }) else {
                break;
            };
            c = self.merge(c, d);
        }
        self.found = found;
        self.reindex(c);
    }

    /// Starts a cluster for `toks`.
    fn create(&mut self, toks: &[&str]) -> usize {
        let leaf = self.tree.find_or_create(toks);
        let c = self.clusters.len();
        self.clusters.push(Cluster {
            template: toks.iter().map(|t| (*t).into()).collect(),
            leaf,
            merged_into: None,
            outline: None,
        });
        self.parent.push(c);
        self.group_size.push(1);
        self.tree.attach(leaf, c);
        self.index.insert(leaf, c, &self.clusters[c].template);
        self.reindex(c);
        c
    }

    /// Re-files live cluster `c` under its template's outline, and aliases
    /// it with clusters of other lengths sharing that outline.
    fn reindex(&mut self, c: usize) {
        if let Some(old) = self.clusters[c].outline.take() {
            if let Some(v) = self.by_outline.get_mut(&old) {
                v.retain(|&x| x != c);
            }
        }
        if self.clusters[c].merged_into.is_some() {
            return;
        }
        let Some(key) = outline_hash(&self.clusters[c].template) else {
            return;
        };
        self.clusters[c].outline = Some(key);
        let peers = self.by_outline.entry(key).or_default();
        peers.push(c);
        let peers: Vec<usize> = peers.clone();
        for d in peers {
            let (a, b) = (&self.clusters[c].template, &self.clusters[d].template);
            if d != c && a.len() != b.len() && outline_eq(a, b) {
                self.union(c, d);
            }
        }
    }

    /// After cluster `c` was created: if it and clusters of its leaf differ
    /// only in a few word positions, each showing at least `variable_after`
    /// distinct words across them, those positions are variables: merge the
    /// clusters, with `<*>` there.
    ///
    /// Candidate position sets are the conflict sets of `c` with each other
    /// cluster (at most [`MAX_VARIABLE_POSITIONS`] positions). For a set `P`,
    /// the group is `c` and every cluster whose conflicts with `c` lie within
    /// `P`. The smallest qualifying set wins, then the largest group.
    fn promote(&mut self, c: usize) {
        let k = self.cfg.variable_after;
        if k < 2 {
            return;
        }
        let leaf = self.clusters[c].leaf;
        let mine = &self.clusters[c].template;
        // A merge must keep a constant at a position outside the variable
        // ones, where every member agrees with `c`. If all of `c`'s
        // constants are words, or it has more words than a member may
        // conflict in (MAX_VARIABLE_POSITIONS), a member agrees with `c` at
        // one of its words: only the clusters the index finds there can be
        // merged. Otherwise every cluster of the leaf is a candidate.
        let words = mine.iter().filter(|t| is_word(t)).count();
        let only_words = mine.iter().all(|t| is_word(t) || is_wild(t));
        if only_words && words == 0 {
            return; // wildcards only: nothing to keep constant
        }
        let mut found = std::mem::take(&mut self.found);
        if self.scan_leaves
            || !((only_words || words > MAX_VARIABLE_POSITIONS)
                && self.index.agreeing(leaf, mine, &mut found))
        {
            found.clear();
            found.extend_from_slice(self.tree.clusters(leaf));
        }
        self.compared += found.len() as u64;
        // (conflict positions, cluster) for every other cluster of the leaf
        // that can be merged with `c`.
        let mut others: Vec<(Vec<usize>, usize)> = Vec::new();
        for &d in &found {
            if d == c {
                continue;
            }
            let mut conflicts = Vec::new();
            for (i, (a, b)) in self.clusters[d].template.iter().zip(mine).enumerate() {
                if relate(a, b) == Relation::Conflict {
                    conflicts.push(i);
                    if conflicts.len() > MAX_VARIABLE_POSITIONS {
                        break;
                    }
                }
            }
            if !conflicts.is_empty() && conflicts.len() <= MAX_VARIABLE_POSITIONS {
                others.push((conflicts, d));
            }
        }
        let mut candidates: Vec<&Vec<usize>> = others.iter().map(|(p, _)| p).collect();
        candidates.sort();
        candidates.dedup();
        let mut best: Option<(&Vec<usize>, Vec<usize>)> = None;
        for set in candidates {
            let mut group: Vec<usize> = others
                .iter()
                .filter(|(p, _)| p.iter().all(|i| set.contains(i)))
                .map(|(_, d)| *d)
                .collect();
            group.push(c);
            let varied = set.iter().all(|&i| {
                let mut words: Vec<&str> = group
                    .iter()
                    .map(|&d| &*self.clusters[d].template[i])
                    .collect();
                words.sort_unstable();
                words.dedup();
                words.len() >= k
            });
            let better = match &best {
                None => true,
                Some((s, g)) => {
                    (set.len(), std::cmp::Reverse(group.len()))
                        < (s.len(), std::cmp::Reverse(g.len()))
                }
            };
            // The merged template must keep a constant: short messages made
            // only of varying words (`initEnvironment`, `clear()`) stay apart.
            if varied
                && better
                && self
                    .merged_template(&group, set)
                    .iter()
                    .any(|t| !is_wild(t))
            {
                best = Some((set, group));
            }
        }
        let Some((set, mut group)) = best else {
            self.found = found;
            return;
        };
        let template = self.merged_template(&group, set);
        self.found = found;
        group.sort_unstable();
        let mut survivor = group[0];
        for &m in &group[1..] {
            survivor = self.merge(survivor, m);
        }
        let old = std::mem::replace(&mut self.clusters[survivor].template, template);
        let leaf = self.clusters[survivor].leaf;
        for (pos, (a, b)) in old
            .iter()
            .zip(&self.clusters[survivor].template)
            .enumerate()
        {
            self.index.update(leaf, survivor, pos, a, b);
        }
        self.settle(survivor);
    }

    /// The template covering all of `group`, with `<*>` at `positions`.
    fn merged_template(&self, group: &[usize], positions: &[usize]) -> Vec<Box<str>> {
        let mut t = self.clusters[group[0]].template.clone();
        for &d in &group[1..] {
            for (a, b) in t.iter_mut().zip(self.clusters[d].template.iter()) {
                if let Some(g) = generalise(a, b) {
                    *a = g.into_boxed_str();
                }
            }
        }
        for &i in positions {
            t[i] = WILDCARD.into();
        }
        t
    }

    /// Merges live clusters `a` and `b` of one leaf into the lower index,
    /// whose template generalises to cover both; the other dies. Returns the
    /// survivor (so a group's lowest id is always live).
    fn merge(&mut self, a: usize, b: usize) -> usize {
        let (keep, gone) = (a.min(b), a.max(b));
        let other = std::mem::take(&mut self.clusters[gone].template);
        let leaf = self.clusters[keep].leaf;
        for (pos, (t, w)) in self.clusters[keep]
            .template
            .iter_mut()
            .zip(other.iter())
            .enumerate()
        {
            if let Some(g) = generalise(t, w) {
                let g = g.into_boxed_str();
                self.index.update(leaf, keep, pos, t, &g);
                *t = g;
            }
        }
        self.index.remove(self.clusters[gone].leaf, gone, &other);
        self.clusters[gone].template = other;
        self.clusters[gone].merged_into = Some(keep);
        self.reindex(gone);
        self.tree.detach(self.clusters[gone].leaf, gone);
        self.union(keep, gone);
        keep
    }
}

#[cfg(test)]
mod tests;
