//! Rules over trace evidence (being built).
