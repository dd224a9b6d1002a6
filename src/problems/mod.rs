//! Problem management (ITIL): recurring incidents become problem candidates
//! that SREs review; accepted problems can record a known error that is then
//! attached to every new matching incident.
//!
//! - [`miner`]: the online Drain-style template miner (with [`masks`],
//!   [`token`] classes and the prefix [`tree`]).
//! - [`manager`]: signatures, candidates, the problem lifecycle, known errors.
//! - [`state`]: the persisted problem records.
//! - [`accuracy`]: Loghub grouping/parsing accuracy scoring (benchmarks, tests).
//! - [`corpus`]: a synthetic labelled corpus of alert texts (tests, benches).

pub mod accuracy;
pub mod corpus;
pub mod manager;
pub mod masks;
pub mod miner;
pub mod state;
pub mod token;
pub mod tree;
