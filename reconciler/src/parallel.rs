//! An ordered map over the machine's cores, for the pure per-item work of the offline stages
//! (parsing files in `load`, evaluating guardrail policies in `validate`). The result is exactly
//! what the sequential loop gives, in the same order: callers stay deterministic. Threads take
//! small chunks from a shared counter, so one core that is busy with another process does not
//! hold the others back. No I/O, no state beyond the call.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `items.iter().map(work).collect()`, computed on up to `available_parallelism` threads in
/// chunks of `chunk` items; sequential when there is only one core or one chunk.
pub fn ordered_map<T: Sync, R: Send>(items: &[T], chunk: usize, work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let chunks: Vec<&[T]> = items.chunks(chunk.max(1)).collect();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(chunks.len());
    if threads <= 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut done: Vec<(usize, Vec<R>)> = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(part) = chunks.get(i) else { return done };
            done.push((i, part.iter().map(&work).collect()));
        }
    };
    let mut parts: Vec<(usize, Vec<R>)> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(worker)).collect();
        let mut parts = worker();
        for helper in helpers {
            // A panic in a worker is a bug in `work`: surface it as the sequential loop would.
            parts.extend(helper.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        parts
    });
    parts.sort_unstable_by_key(|(i, _)| *i);
    parts.into_iter().flat_map(|(_, results)| results).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_is_the_sequential_one() {
        let items: Vec<u64> = (0..10_007).collect();
        let squares = ordered_map(&items, 7, |i| i * i);
        assert_eq!(squares, items.iter().map(|i| i * i).collect::<Vec<_>>());
        assert!(ordered_map(&[] as &[u64], 4, |i| *i).is_empty());
        assert_eq!(ordered_map(&[3u64], 0, |i| *i + 1), [4]);
    }
}
