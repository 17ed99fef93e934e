//! Each thread's references to the current tokens of the caches it used:
//! the cached path reads only these (and the generations), never a lock.

use std::cell::RefCell;
use std::sync::Arc;

use super::cached::CachedToken;
use super::{ManagedToken, Served};

/// A thread's reference to a cache's current token.
pub(super) struct ReaderEntry {
    pub(super) cache_id: u64,
    pub(super) generation: u64,
    pub(super) shared_generation: u64,
    pub(super) token: Arc<CachedToken>,
}

const READER_ENTRIES: usize = 4;

thread_local! {
    pub(super) static READER_CACHE: RefCell<[Option<ReaderEntry>; READER_ENTRIES]> =
        const { RefCell::new([None, None, None, None]) };
}

impl ManagedToken {
    pub(super) fn remember_in_thread(&self, served: Served) {
        let _ = READER_CACHE.try_with(|cache| {
            // Busy only if `copy_out` called back into this thread's cache:
            // then the next call simply takes the slow path again.
            let Ok(mut cache) = cache.try_borrow_mut() else {
                return;
            };
            let slot = match cache
                .iter()
                .position(|e| matches!(e, Some(e) if e.cache_id == self.id))
            {
                Some(slot) => slot,
                None => {
                    // Newest first: shift the others down, dropping the oldest.
                    cache.rotate_right(1);
                    0
                }
            };
            cache[slot] = Some(ReaderEntry {
                cache_id: self.id,
                generation: served.generation,
                shared_generation: served.shared_generation,
                token: served.token,
            });
        });
    }
}
