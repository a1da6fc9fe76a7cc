//! netcase-proto (skeleton; being built).
