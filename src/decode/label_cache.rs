//! Label sets decoded before, by their JSON text.
//!
//! A sender re-sends a firing alert again and again (Alertmanager every
//! `group_interval`, Prometheus every evaluation) with its labels as the
//! same bytes: Go writes map keys sorted. Building the label set from them
//! (parse, validate, sort, copy, fingerprint) was most of decoding such a
//! record. A [`Decoder`] keeps the label sets of the texts it decoded, so a
//! re-send's labels cost a hash and a compare, and share one allocation
//! with the engine's copy of that alert.
//!
//! Only texts that decoded without error are kept, and a text's label set
//! depends on nothing but the text and the limits, which are the
//! decoder's: so a cached decode gives exactly what a fresh one gives
//! (tested: the golden files and the property tests decode both ways).
//!
//! [`Decoder`]: super::Decoder

use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::alert::{Fingerprint, Labels};

use super::DecodeError;

/// Texts per generation at most...
const GENERATION_TEXTS: usize = 16_384;
/// ...and their bytes (with the default limits one text can be 278 KiB).
const GENERATION_BYTES: usize = 8 << 20;
/// Longer texts are decoded each time (rare, and they would crowd out the
/// common ones).
const MAX_TEXT: usize = 4096;

/// A label set and its fingerprint.
type Entry = (Labels, Fingerprint);

/// Two generations of texts: a text found in the older one moves to the
/// newer; when the newer is full it becomes the older, and the older is
/// dropped. Alerts still being re-sent stay, the rest age out, with no
/// bookkeeping per lookup. At most 2 × 16,384 texts or 2 × 8 MiB.
#[derive(Default)]
pub struct LabelCache {
    enabled: bool,
    // foldhash: a text is hashed on every lookup, and SipHash (std's
    // default) of a few hundred bytes cost as much as the lookup saved.
    new: HashMap<Box<str>, Entry, RandomState>,
    old: HashMap<Box<str>, Entry, RandomState>,
    new_bytes: usize,
}

impl LabelCache {
    /// A cache that keeps label sets.
    pub fn new() -> LabelCache {
        LabelCache {
            enabled: true,
            ..LabelCache::default()
        }
    }

    /// A cache that keeps nothing: every text is decoded (one-off decodes,
    /// such as an HTTP request's).
    pub fn disabled() -> LabelCache {
        LabelCache::default()
    }

    /// The label set of `text`: kept from an earlier call, or `decode`d
    /// (and kept if it decoded).
    pub(super) fn get(
        &mut self,
        text: &str,
        decode: impl FnOnce() -> Result<Labels, DecodeError>,
    ) -> Result<Entry, DecodeError> {
        let fresh = || {
            decode().map(|labels| {
                let fp = labels.fingerprint();
                (labels, fp)
            })
        };
        if !self.enabled || text.len() > MAX_TEXT {
            return fresh();
        }
        if let Some(e) = self.new.get(text) {
            return Ok(e.clone());
        }
        let (key, entry) = match self.old.remove_entry(text) {
            Some(found) => found,
            None => (Box::from(text), fresh()?),
        };
        if self.new.len() >= GENERATION_TEXTS || self.new_bytes + key.len() > GENERATION_BYTES {
            self.old = std::mem::take(&mut self.new);
            self.new_bytes = 0;
        }
        self.new_bytes += key.len();
        self.new.insert(key, entry.clone());
        Ok(entry)
    }

    /// Texts kept (both generations).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.new.len() + self.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(v: &str) -> Labels {
        Labels::from_pairs([("alertname", v)]).expect("valid")
    }

    #[test]
    fn a_text_is_decoded_once_and_errors_are_not_kept() {
        let mut c = LabelCache::new();
        let mut calls = 0;
        for _ in 0..3 {
            let (l, fp) = c
                .get(r#"{"alertname":"A"}"#, || {
                    calls += 1;
                    Ok(labels("A"))
                })
                .expect("decodes");
            assert_eq!(l.get("alertname"), Some("A"));
            assert_eq!(fp, l.fingerprint());
        }
        assert_eq!(calls, 1);
        for _ in 0..2 {
            let r = c.get("{}", || {
                calls += 1;
                Err(DecodeError::field("labels".into(), "none"))
            });
            assert!(r.is_err());
        }
        assert_eq!(
            calls, 3,
            "a failed text is decoded again (its error names its path)"
        );
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn disabled_keeps_nothing() {
        let mut c = LabelCache::disabled();
        let mut calls = 0;
        for _ in 0..2 {
            c.get("x", || {
                calls += 1;
                Ok(labels("A"))
            })
            .expect("decodes");
        }
        assert_eq!((calls, c.len()), (2, 0));
    }

    #[test]
    fn texts_in_use_survive_a_generation_and_the_rest_age_out() {
        // Whether `get` had to decode text `i`.
        fn decoded(c: &mut LabelCache, i: usize) -> bool {
            let mut called = false;
            c.get(&format!("{{\"n\":\"{i}\"}}"), || {
                called = true;
                Ok(labels(&i.to_string()))
            })
            .expect("decodes");
            called
        }
        let mut c = LabelCache::new();
        // Text 0 is used throughout; texts 1.. once each, 3 generations' worth.
        for i in 1..=3 * GENERATION_TEXTS {
            decoded(&mut c, 0);
            assert!(decoded(&mut c, i));
        }
        assert!(c.len() <= 2 * GENERATION_TEXTS, "bounded: {}", c.len());
        assert!(!decoded(&mut c, 0), "the text in use stayed");
        assert!(decoded(&mut c, 1), "an old text was dropped");
        assert!(
            !decoded(&mut c, 3 * GENERATION_TEXTS),
            "a recent text stayed"
        );
    }
}
