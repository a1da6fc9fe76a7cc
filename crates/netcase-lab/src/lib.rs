//! netcase-lab (skeleton; being built).
