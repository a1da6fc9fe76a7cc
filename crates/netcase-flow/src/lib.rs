//! netcase-flow (skeleton; being built).
