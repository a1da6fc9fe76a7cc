//! Rules over capture evidence (being built).
