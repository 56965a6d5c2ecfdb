//! Measuring instruments for ferrokeeper (DESIGN.md, "Measured, always").
