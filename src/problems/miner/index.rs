//! Which clusters of a tree leaf may relate to a message, without scanning
//! the leaf.
//!
//! A leaf can hold any number of clusters: once a tree node is full, every
//! new leading word shares its `<*>` branch, so a storm of distinct messages
//! lands in one leaf. Comparing each message with every cluster there makes
//! the miner quadratic in the number of templates. The index answers the
//! miner's three searches from the clusters that can possibly qualify:
//!
//! - Two different *words* (tokens that are not value-like, see
//!   [`super::super::token`]) in one position always conflict. So a cluster
//!   with the word `w` at position `i` can only take a message whose token
//!   at `i` is `w` or not a word: a message with a word at `i` is compared
//!   with the clusters holding that word there, plus those holding a
//!   non-word (wildcard, pattern, value) there.
//! - A template subsumes another only if each of its words is in the other
//!   at the same position.
//!
//! Each live cluster is filed once per position: under (leaf, position,
//! word) for a word, under (leaf, position) otherwise. Candidates come back
//! in leaf order (ascending cluster index), so the searches visit them in
//! the same order as a scan of the leaf and pick the same cluster. Where a
//! search has no word to go by (a message of values only), the caller scans
//! the leaf.

use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

use super::super::token::is_variable_like;
use super::super::tree::{FxHasher, FxMap};

/// True iff `t` is a word: a token two different values of which conflict.
pub(super) fn is_word(t: &str) -> bool {
    !is_variable_like(t)
}

/// Clusters filed under one key, in insertion order. One cluster is kept
/// inline: most words of a storm of distinct messages belong to one cluster.
#[derive(Debug, Clone)]
enum Slot {
    One(u32),
    Many(Vec<u32>),
}

impl Slot {
    fn push(&mut self, c: u32) {
        match self {
            Slot::One(a) => *self = Slot::Many(vec![*a, c]),
            Slot::Many(v) => v.push(c),
        }
    }

    /// Removes one occurrence of `c`; true when the slot is empty then.
    fn remove(&mut self, c: u32) -> bool {
        match self {
            Slot::One(a) => *a == c,
            Slot::Many(v) => {
                if let Some(i) = v.iter().position(|&x| x == c) {
                    v.remove(i);
                }
                v.is_empty()
            }
        }
    }

    fn as_slice(&self) -> &[u32] {
        match self {
            Slot::One(a) => std::slice::from_ref(a),
            Slot::Many(v) => v,
        }
    }
}

/// The index. See the module docs.
#[derive(Debug, Clone, Default)]
pub(super) struct LeafIndex {
    /// Hash of (leaf, position, word) → live clusters of the leaf with that
    /// word at that position. (A hash collision only adds candidates: every
    /// candidate is compared in full.)
    words: FxMap<u64, Slot>,
    /// (leaf, position) → live clusters of the leaf with a non-word there.
    open: FxMap<(usize, usize), Slot>,
}

fn word_key(leaf: usize, pos: usize, word: &str) -> u64 {
    let mut h = BuildHasherDefault::<FxHasher>::default().build_hasher();
    leaf.hash(&mut h);
    pos.hash(&mut h);
    word.hash(&mut h);
    h.finish()
}

fn id(c: usize) -> u32 {
    u32::try_from(c).expect("fewer than 2^32 clusters")
}

impl LeafIndex {
    fn slot(&self, leaf: usize, pos: usize, tok: &str) -> &[u32] {
        let slot = if is_word(tok) {
            self.words.get(&word_key(leaf, pos, tok))
        } else {
            self.open.get(&(leaf, pos))
        };
        slot.map_or(&[], Slot::as_slice)
    }

    fn open_at(&self, leaf: usize, pos: usize) -> &[u32] {
        self.open.get(&(leaf, pos)).map_or(&[], Slot::as_slice)
    }

    fn file(&mut self, leaf: usize, c: usize, pos: usize, tok: &str) {
        let c = id(c);
        if is_word(tok) {
            match self.words.entry(word_key(leaf, pos, tok)) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().push(c),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(Slot::One(c));
                }
            }
        } else {
            match self.open.entry((leaf, pos)) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().push(c),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(Slot::One(c));
                }
            }
        }
    }

    fn unfile(&mut self, leaf: usize, c: usize, pos: usize, tok: &str) {
        let c = id(c);
        if is_word(tok) {
            let key = word_key(leaf, pos, tok);
            if self.words.get_mut(&key).is_some_and(|s| s.remove(c)) {
                self.words.remove(&key);
            }
        } else if self.open.get_mut(&(leaf, pos)).is_some_and(|s| s.remove(c)) {
            self.open.remove(&(leaf, pos));
        }
    }

    /// Files live cluster `c` of `leaf` with `template`.
    pub(super) fn insert(&mut self, leaf: usize, c: usize, template: &[Box<str>]) {
        for (pos, t) in template.iter().enumerate() {
            self.file(leaf, c, pos, t);
        }
    }

    /// Unfiles cluster `c` of `leaf`, filed with `template`.
    pub(super) fn remove(&mut self, leaf: usize, c: usize, template: &[Box<str>]) {
        for (pos, t) in template.iter().enumerate() {
            self.unfile(leaf, c, pos, t);
        }
    }

    /// Refiles cluster `c` of `leaf` whose token at `pos` changed from
    /// `old` to `new`.
    pub(super) fn update(&mut self, leaf: usize, c: usize, pos: usize, old: &str, new: &str) {
        let same_slot = if is_word(old) {
            old == new
        } else {
            !is_word(new)
        };
        if !same_slot {
            self.unfile(leaf, c, pos, old);
            self.file(leaf, c, pos, new);
        }
    }

    /// Clusters of `leaf` that may take a message `toks` (no conflicting
    /// word at any position): those filed at the message's most selective
    /// word position. `false` if the message has no word (scan the leaf).
    pub(super) fn matching(&self, leaf: usize, toks: &[&str], out: &mut Vec<usize>) -> bool {
        let best = toks
            .iter()
            .enumerate()
            .filter(|(_, t)| is_word(t))
            .map(|(pos, t)| {
                let (w, o) = (self.slot(leaf, pos, t), self.open_at(leaf, pos));
                (w.len() + o.len(), w, o)
            })
            .min_by_key(|(n, _, _)| *n);
        let Some((_, w, o)) = best else {
            return false;
        };
        out.clear();
        out.extend(w.iter().chain(o).map(|&c| c as usize));
        out.sort_unstable();
        out.dedup();
        true
    }

    /// Clusters of `leaf` that agree with `template` (no conflicting word)
    /// in at least one of its word positions, in leaf order. `false` if it
    /// has no word (scan the leaf).
    pub(super) fn agreeing(
        &self,
        leaf: usize,
        template: &[Box<str>],
        out: &mut Vec<usize>,
    ) -> bool {
        out.clear();
        let mut any = false;
        for (pos, t) in template.iter().enumerate() {
            if is_word(t) {
                any = true;
                let (w, o) = (self.slot(leaf, pos, t), self.open_at(leaf, pos));
                out.extend(w.iter().chain(o).map(|&c| c as usize));
            }
        }
        out.sort_unstable();
        out.dedup();
        any
    }

    /// Clusters of `leaf` holding every word of `template` at its position
    /// (those it may subsume), in leaf order: the ones filed under its most
    /// selective word. `false` if it has no word (scan the leaf).
    pub(super) fn sharing_words(
        &self,
        leaf: usize,
        template: &[Box<str>],
        out: &mut Vec<usize>,
    ) -> bool {
        let best = template
            .iter()
            .enumerate()
            .filter(|(_, t)| is_word(t))
            .map(|(pos, t)| self.slot(leaf, pos, t))
            .min_by_key(|w| w.len());
        let Some(w) = best else {
            return false;
        };
        out.clear();
        out.extend(w.iter().map(|&c| c as usize));
        out.sort_unstable();
        out.dedup();
        true
    }
}
