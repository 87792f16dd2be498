//! The executor: snapshot, apply, verify or roll back every approved action, and recover unfinished intents.
