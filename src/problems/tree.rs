//! The miner's fixed-depth prefix tree (Drain's parse tree) and the hasher
//! behind its maps.
//!
//! Level 1 splits messages by token count, the next `depth - 3` levels by
//! their leading tokens; a leaf lists the clusters compared with a message.
//! Tokens that look like values (a digit, a `<*>`) and tokens past a node's
//! child limit share the node's `<*>` branch, so ids and numbers in the first
//! tokens do not fragment the tree.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::token::is_variable_like;

/// FxHash (rustc's hasher): fast on short keys and, unlike std's default,
/// seeded the same in every process. The maps are only looked up, never
/// iterated, so output never depends on hash order anyway.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

const FX_K: u64 = 0xf135_7aea_2e62_a9c5;

impl FxHasher {
    #[inline]
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(FX_K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FxHasher`].
pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Node {
    #[serde(with = "sorted_map")]
    children: FxMap<Box<str>, usize>,
    /// The shared branch for value-like tokens and overflow.
    wildcard: Option<usize>,
    /// Clusters compared at this leaf, oldest first (leaves only).
    clusters: Vec<usize>,
}

/// The prefix tree. Nodes live in one vector and refer to each other by
/// index; clusters are referred to by their index in the miner.
///
/// Serializable for the miner's snapshot (see `TemplateMiner::state`); maps
/// are written as pairs sorted by key, so equal trees give equal bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrefixTree {
    /// Token count → first-level node.
    #[serde(with = "sorted_map")]
    by_len: FxMap<usize, usize>,
    nodes: Vec<Node>,
    /// Leading tokens used for routing (`depth - 3`).
    layers: usize,
    max_children: usize,
}

impl PrefixTree {
    /// An empty tree of Drain `depth` (at least 3) and child limit.
    pub fn new(depth: usize, max_children: usize) -> PrefixTree {
        PrefixTree {
            by_len: FxMap::default(),
            nodes: Vec::new(),
            layers: depth.saturating_sub(3),
            max_children,
        }
    }

    /// The leaves `toks` may belong to, most specific first, appended to
    /// `out`. At each level the token's own child is followed and, as a
    /// fallback, the `<*>` branch: a message first seen before its leading
    /// token had a child of its own joined a cluster under `<*>`, and must
    /// still find it there once that child exists.
    pub fn candidates(&self, toks: &[&str], out: &mut Vec<usize>) {
        if let Some(&n) = self.by_len.get(&toks.len()) {
            let layers = self.layers.min(toks.len());
            self.descend(n, &toks[..layers], out);
        }
    }

    fn descend(&self, node: usize, toks: &[&str], out: &mut Vec<usize>) {
        let Some((tok, rest)) = toks.split_first() else {
            out.push(node);
            return;
        };
        let n = &self.nodes[node];
        if let Some(&c) = n.children.get(*tok) {
            self.descend(c, rest, out);
        }
        if let Some(w) = n.wildcard {
            self.descend(w, rest, out);
        }
    }

    /// The leaf for a new cluster with first tokens `toks`, created as
    /// needed: a token gets its own child unless it is value-like or the
    /// node is full, in which case it takes the `<*>` branch.
    pub fn find_or_create(&mut self, toks: &[&str]) -> usize {
        let mut node = match self.by_len.get(&toks.len()) {
            Some(&n) => n,
            None => {
                let n = self.push();
                self.by_len.insert(toks.len(), n);
                n
            }
        };
        for tok in toks.iter().take(self.layers) {
            if let Some(&c) = self.nodes[node].children.get(*tok) {
                node = c;
                continue;
            }
            let full = self.nodes[node].children.len() + 1 >= self.max_children;
            node = if full || is_variable_like(tok) {
                match self.nodes[node].wildcard {
                    Some(w) => w,
                    None => {
                        let w = self.push();
                        self.nodes[node].wildcard = Some(w);
                        w
                    }
                }
            } else {
                let c = self.push();
                self.nodes[node].children.insert((*tok).into(), c);
                c
            };
        }
        node
    }

    /// The clusters of `leaf`, oldest first.
    pub fn clusters(&self, leaf: usize) -> &[usize] {
        &self.nodes[leaf].clusters
    }

    /// Adds cluster `c` to `leaf` (newest).
    pub fn attach(&mut self, leaf: usize, c: usize) {
        self.nodes[leaf].clusters.push(c);
    }

    /// Removes cluster `c` from `leaf`.
    pub fn detach(&mut self, leaf: usize, c: usize) {
        self.nodes[leaf].clusters.retain(|&x| x != c);
    }

    fn push(&mut self) -> usize {
        self.nodes.push(Node::default());
        self.nodes.len() - 1
    }

    /// Checks that every index a loaded tree holds is in range: nodes
    /// within the tree, clusters below `clusters`. Lets a corrupt snapshot
    /// be refused on load rather than panic on a later message.
    pub fn check(&self, clusters: usize) -> Result<(), String> {
        let n = self.nodes.len();
        let node = |i: usize, what: &str| {
            if i < n {
                Ok(())
            } else {
                Err(format!("{what} refers to node {i} of {n}"))
            }
        };
        for &i in self.by_len.values() {
            node(i, "a token count")?;
        }
        for (at, nd) in self.nodes.iter().enumerate() {
            for &c in nd.children.values() {
                node(c, &format!("node {at}"))?;
            }
            if let Some(w) = nd.wildcard {
                node(w, &format!("node {at}"))?;
            }
            if let Some(&c) = nd.clusters.iter().find(|&&c| c >= clusters) {
                return Err(format!("node {at} lists cluster {c} of {clusters}"));
            }
        }
        Ok(())
    }

    /// Whether `leaf` is a node of this tree.
    pub fn has_node(&self, leaf: usize) -> bool {
        leaf < self.nodes.len()
    }
}

/// Serde for a hash map as a sequence of pairs sorted by key: the bytes do
/// not depend on the map's insertion history.
pub(crate) mod sorted_map {
    use super::*;

    pub fn serialize<K, V, H, S>(m: &HashMap<K, V, H>, s: S) -> Result<S::Ok, S::Error>
    where
        K: Serialize + Ord,
        V: Serialize,
        S: Serializer,
    {
        let mut pairs: Vec<(&K, &V)> = m.iter().collect();
        pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        s.collect_seq(pairs)
    }

    pub fn deserialize<'de, K, V, H, D>(d: D) -> Result<HashMap<K, V, H>, D::Error>
    where
        K: Deserialize<'de> + Eq + Hash,
        V: Deserialize<'de>,
        H: BuildHasher + Default,
        D: Deserializer<'de>,
    {
        let pairs = Vec::<(K, V)>::deserialize(d)?;
        Ok(pairs.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_length_then_leading_tokens() {
        let mut t = PrefixTree::new(5, 100); // two routing tokens
        let a = t.find_or_create(&["user", "alice", "logged", "in"]);
        let b = t.find_or_create(&["user", "bob", "logged", "in"]);
        let c = t.find_or_create(&["user", "alice", "logged"]);
        assert_ne!(a, b);
        assert_ne!(a, c);
        let found = |toks: &[&str]| {
            let mut v = Vec::new();
            t.candidates(toks, &mut v);
            v
        };
        assert_eq!(found(&["user", "alice", "x", "y"]), [a]);
        assert!(found(&["user", "carol", "logged", "in"]).is_empty());
        assert!(found(&["nobody", "alice", "logged", "in"]).is_empty());
    }

    #[test]
    fn values_share_the_wildcard_branch() {
        let mut t = PrefixTree::new(4, 100);
        let a = t.find_or_create(&["10.0.0.1", "connected"]);
        let b = t.find_or_create(&["<*>", "connected"]);
        assert_eq!(a, b);
        let mut v = Vec::new();
        t.candidates(&["anything", "connected"], &mut v);
        assert_eq!(v, [a]);
        let c = t.find_or_create(&["anything", "connected"]);
        v.clear();
        t.candidates(&["anything", "connected"], &mut v);
        assert_eq!(v, [c, a], "own branch first, then <*>");
    }

    #[test]
    fn full_nodes_overflow_to_the_wildcard_branch() {
        let mut t = PrefixTree::new(4, 3);
        let a = t.find_or_create(&["a", "x"]);
        let b = t.find_or_create(&["b", "x"]);
        let c = t.find_or_create(&["c", "x"]);
        let d = t.find_or_create(&["d", "x"]);
        assert_ne!(a, b);
        assert_eq!(c, d, "third child and later share the <*> branch");
    }

    #[test]
    fn fx_hash_is_stable() {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let h = BuildHasherDefault::<FxHasher>::default();
        assert_eq!(h.hash_one("template"), h.hash_one("template"));
        assert_ne!(h.hash_one("a"), h.hash_one("b"));
    }
}
