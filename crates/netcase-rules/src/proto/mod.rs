//! Rules over proto evidence (being built).
