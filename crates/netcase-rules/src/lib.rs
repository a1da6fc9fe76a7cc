//! netcase-rules (skeleton; being built).
