//! A map that remembers which keys were written since the last
//! [`Tracked::take_dirty`], so the store persists exactly the entities a
//! batch changed (and deletes the ones it removed) in the batch's transaction.
//!
//! Every mutable access counts as a write: cheaper and safer than trying to
//! mark each field change by hand. Tracking is off for replay.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};

#[derive(Debug, Clone)]
pub struct Tracked<K, V, S> {
    map: HashMap<K, V, S>,
    dirty: HashSet<K, S>,
    track: bool,
}

impl<K: Eq + Hash + Clone, V, S: BuildHasher + Default + Clone> Default for Tracked<K, V, S> {
    fn default() -> Self {
        Tracked {
            map: HashMap::default(),
            dirty: HashSet::default(),
            track: false,
        }
    }
}

impl<K: Eq + Hash + Clone, V, S: BuildHasher + Default + Clone> Tracked<K, V, S> {
    pub fn set_tracking(&mut self, on: bool) {
        self.track = on;
        if !on {
            self.dirty.clear();
        }
    }

    pub fn is_tracking(&self) -> bool {
        self.track
    }

    fn mark<Q>(&mut self, k: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.track && !self.dirty.contains(k) {
            if let Some((key, _)) = self.map.get_key_value(k) {
                self.dirty.insert(key.clone());
            }
        }
    }

    pub fn get<Q>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(k)
    }

    pub fn get_key_value<Q>(&self, k: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get_key_value(k)
    }

    pub fn get_mut<Q>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.mark(k);
        self.map.get_mut(k)
    }

    /// Mutable access that is not a change to persist (bookkeeping of
    /// the persistence itself).
    pub(crate) fn get_mut_untracked<Q>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get_mut(k)
    }

    pub fn contains_key<Q>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.contains_key(k)
    }

    pub fn insert(&mut self, k: K, v: V) -> Option<V> {
        if self.track {
            self.dirty.insert(k.clone());
        }
        self.map.insert(k, v)
    }

    pub fn remove<Q>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (key, v) = self.map.remove_entry(k)?;
        if self.track {
            self.dirty.insert(key);
        }
        Some(v)
    }

    /// Removes without recording a write (eviction of persisted entities).
    pub fn evict<Q>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove(k)
    }

    pub fn get_or_insert_with(&mut self, k: K, f: impl FnOnce() -> V) -> &mut V {
        if self.track {
            self.dirty.insert(k.clone());
        }
        self.map.entry(k).or_insert_with(f)
    }

    /// Mutable access to every value that is not a change to persist
    /// (state derived while loading).
    pub(crate) fn values_mut_untracked(&mut self) -> impl Iterator<Item = &mut V> {
        self.map.values_mut()
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.map.values()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Keys written since the last call.
    pub fn take_dirty(&mut self) -> Vec<K> {
        self.dirty.drain().collect()
    }
}

impl<K, Q, V, S> std::ops::Index<&Q> for Tracked<K, V, S>
where
    K: Eq + Hash + Clone + Borrow<Q>,
    Q: Hash + Eq + ?Sized,
    S: BuildHasher + Default + Clone,
{
    type Output = V;

    /// # Panics
    /// When the key is absent: callers index only keys they just looked up.
    fn index(&self, k: &Q) -> &V {
        self.map.get(k).expect("key present in tracked map")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::RandomState;

    #[test]
    fn records_writes_only_when_tracking() {
        let mut m: Tracked<u32, u32, RandomState> = Tracked::default();
        m.insert(1, 1);
        assert!(m.take_dirty().is_empty());
        m.set_tracking(true);
        m.insert(2, 2);
        let _ = m.get(&1);
        *m.get_mut(&1).unwrap() += 1;
        m.remove(&2);
        let _ = m.get_mut(&99);
        let mut d = m.take_dirty();
        d.sort();
        assert_eq!(d, vec![1, 2]);
        m.evict(&1);
        assert!(m.take_dirty().is_empty());
    }
}
