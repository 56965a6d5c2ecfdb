//! Durable storage for ferrokeeper (see DESIGN.md, "Storage").
