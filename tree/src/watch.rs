//! Watch registrations and the events a change triggers.
