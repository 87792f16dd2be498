//! The executor: the only part of mailmend that changes the system. For every proposed action it
//! asks the policy, records the intent, snapshots, applies, re-checks the account and keeps the
//! change only if the account is healthier — otherwise it restores the snapshot.
//!
//! Architecture invariant: nothing is written before an intent record is fsynced to the state
//! directory and the audit log, so an agent killed at any point finds the unfinished intent at its
//! next start and reverts it (`Executor::recover`). No half-applied change survives.

pub mod fsutil;
pub mod journal;
mod registry;
mod run;

pub use journal::{FixRecord, Snapshot, StateDir};
pub use run::{Executor, ExecutorError, Host, PerformError, Performer, Proposal, Recheck, Report};
