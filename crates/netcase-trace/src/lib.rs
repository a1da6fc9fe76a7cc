//! netcase-trace (skeleton; being built).
