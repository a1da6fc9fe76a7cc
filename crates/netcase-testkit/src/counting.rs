//! A global allocator that counts allocations.
//!
//! A test binary installs it and compares [`allocations`] before and after the code under
//! test:
//!
//! ```
//! use netcase_testkit::counting::{allocations, CountingAlloc};
//!
//! #[global_allocator]
//! static GLOBAL: CountingAlloc = CountingAlloc;
//!
//! fn main() {
//!     let before = allocations();
//!     std::hint::black_box(vec![0u8; 16]);
//!     assert!(allocations() > before);
//! }
//! ```
//!
//! The count is process-wide: tests of one binary that read it take [`serial`] first.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

static ALLOCS: AtomicU64 = AtomicU64::new(0);

/// Forwards to the system allocator and counts every `alloc` and `realloc` (not `dealloc`).
pub struct CountingAlloc;

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(p, l, n) }
    }
}

/// Allocations and reallocations made through [`CountingAlloc`] so far in this process
/// (0 forever when the binary did not install it).
pub fn allocations() -> u64 {
    ALLOCS.load(Ordering::Relaxed)
}

/// Runs the tests that read [`allocations`] one at a time: hold the guard for the whole test.
/// A test that panicked while holding it does not block the others.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}
