//! Operator tools for ferrokeeper's data directories.
