//! netcase-host (skeleton; being built).
