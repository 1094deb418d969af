//! Expiry in one shard's map: freeing the expired entries of due buckets a budget at a time,
//! moving the touched ones to their bucket, and giving memory back once most of the shard is
//! gone.

use crate::store::embedded::expiry::bucket_of;
use crate::store::embedded::map::Map;
use crate::sync::Ordering;

impl Map {
    /// Frees expired entries of due buckets, at most `budget` entries looked at.
    pub(crate) fn sweep(&mut self, now_ms: i64, mut budget: usize) -> usize {
        let mut freed = 0;
        while budget > 0 {
            let Some((lane, bucket)) = self.wheel.due(now_ms) else {
                break;
            };
            let taken = self.wheel.take(lane, bucket, budget);
            budget -= taken.len();
            for pos in taken {
                let Some(e) = self.slab.get(pos) else {
                    continue;
                };
                if e.bucket != bucket || e.lane != lane {
                    continue;
                }
                let deadline = e.deadline();
                if deadline <= now_ms {
                    // `take` already removed it from the wheel.
                    if self.remove_unplaced(pos) {
                        freed += 1;
                    }
                } else {
                    self.place(pos, deadline);
                }
            }
        }
        if freed > 0 {
            self.expired += freed as u64;
            self.compact_if_sparse();
        }
        freed
    }

    /// Frees the expired entries of the bucket of `now_ms`, the second that is not over
    /// yet and that sweeps leave alone (an entry's bucket is never later than its deadline's,
    /// so this and the due buckets hold every expired entry). Scans that one bucket.
    pub(crate) fn purge_current(&mut self, now_ms: i64) -> usize {
        let expired: Vec<u32> = self
            .wheel
            .keys(bucket_of(now_ms))
            .iter()
            .copied()
            .filter(|&p| self.slab.get(p).is_some_and(|e| !e.live_at(now_ms)))
            .collect();
        for &pos in &expired {
            self.remove_at(pos);
        }
        if !expired.is_empty() {
            self.expired += expired.len() as u64;
            self.compact_if_sparse();
        }
        expired.len()
    }

    /// Gives memory back once most of the shard is gone: packs the slab (fixing the wheel
    /// for every moved entry) and shrinks the index. Not while a snapshot copies the shard.
    fn compact_if_sparse(&mut self) {
        if !self.slab.sparse() || self.copying.load(Ordering::Acquire) > 0 {
            return;
        }
        let Map { slab, wheel, .. } = self;
        slab.compact(|e, to| wheel.set(e.place(), to));
    }
}
