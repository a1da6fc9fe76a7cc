//! Rules over host evidence (being built).
