//! netcase-report (skeleton; being built).
