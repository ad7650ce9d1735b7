//! Values that belong to the process that made them.
//!
//! A forked child has only the thread that called `fork`: a tokio runtime's
//! workers, and the pooled connections whose I/O they drove, stay behind in
//! the parent (a request on such a connection would hang until its
//! timeout). What holds them is made again in the child, on first use. A
//! fork is noticed by a counter that a `pthread_atfork` handler bumps (crate
//! `forkguard`), so checking costs no system call on the hot path.

use std::sync::OnceLock;

use forkguard::Guard;
use parking_lot::Mutex;

/// A value made once per process: the first process's copy is read without
/// a lock, a forked child's from behind one.
pub(crate) struct PerProcess<T> {
    /// The first process's value, and the guard that notices a fork of it.
    first: OnceLock<(Guard, T)>,
    /// A forked child's own value (and its guard, for a fork of the child).
    /// Its lock also makes sure each process makes its value once.
    forked: Mutex<Option<(Guard, T)>>,
}

impl<T: Clone> PerProcess<T> {
    pub(crate) const fn new() -> Self {
        Self {
            first: OnceLock::new(),
            forked: Mutex::new(None),
        }
    }

    /// This process's value, made by `make` on its first use in each
    /// process. A failure is returned (as its reason) and not remembered:
    /// the next use tries again.
    pub(crate) fn get_or_make(
        &self,
        make: impl FnOnce() -> Result<T, String>,
    ) -> Result<T, String> {
        if let Some(value) = unforked(self.first.get()) {
            return Ok(value);
        }
        let mut forked = self.forked.lock();
        // Another thread may have made it while this one waited.
        if let Some(value) = unforked(self.first.get()).or_else(|| unforked(forked.as_ref())) {
            return Ok(value);
        }
        let guard = Guard::try_new().map_err(|e| format!("cannot watch for process forks: {e}"))?;
        let value = make()?;
        if self.first.get().is_none() {
            // The first process: from now on read without the lock.
            let _ = self.first.set((guard, value.clone()));
        } else {
            *forked = Some((guard, value.clone()));
        }
        Ok(value)
    }
}

/// The value, unless this process is a fork of the one that made it.
fn unforked<T: Clone>(made: Option<&(Guard, T)>) -> Option<T> {
    made.filter(|(guard, _)| !guard.clone().detected_fork())
        .map(|(_, value)| value.clone())
}

impl<T> std::fmt::Debug for PerProcess<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerProcess")
            .field("made", &self.first.get().is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_process_makes_its_value_once_however_many_threads_ask() {
        let value = Arc::new(PerProcess::new());
        let made = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (value, made) = (Arc::clone(&value), Arc::clone(&made));
                std::thread::spawn(move || {
                    value.get_or_make(|| {
                        made.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        Ok(7)
                    })
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().unwrap(), Ok(7));
        }
        assert_eq!(made.load(Ordering::SeqCst), 1);
        assert_eq!(value.get_or_make(|| Ok(8)), Ok(7), "kept, not made again");
    }

    #[test]
    fn a_failure_is_returned_and_tried_again_next_time() {
        let value = PerProcess::new();
        assert_eq!(
            value.get_or_make(|| Err::<u8, _>("no threads left".into())),
            Err("no threads left".to_string())
        );
        assert_eq!(value.get_or_make(|| Ok(3)), Ok(3));
    }
}
