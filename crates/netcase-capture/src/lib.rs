//! netcase-capture (skeleton; being built).
