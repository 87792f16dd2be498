//! Loads dynamic diagnostic plugins safely and adapts them to the Diagnostic trait.
