//! Eviction in one shard's map: its best victim, evicting it (logged first), and making room
//! for a write as long as this shard holds the store's best victim.

use super::caps::{rank, Caps, Need, NEW_SHARE, NO_VICTIM};
use crate::error::StoreError;
use crate::store::embedded::context::Ctx;
use crate::store::embedded::durable::OpRef;
use crate::store::embedded::expiry::{bucket_of, BACK, NEW};
use crate::store::embedded::map::Map;

/// What [`Map::evict_one`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Evicted {
    One,
    Moved,
    Nothing,
}

/// The rest of the store, as a write making room in its own shard sees it.
pub(crate) trait Elsewhere {
    /// Make what room the own shard can give and go ahead (the last attempt).
    fn insist(&self) -> bool;
    /// The rank of the best victim outside the writer's shard.
    fn best(&self) -> u64;
}

impl Map {
    /// This shard's best victim for eviction: its lane and its rank ([`rank`]).
    pub(crate) fn victim(&self) -> Option<(u8, u64)> {
        let new = self.wheel.earliest(NEW);
        let back = self.wheel.earliest(BACK);
        let flooded = self.wheel.lane_len(NEW) * NEW_SHARE > self.slab.len();
        match (new, back) {
            (Some(n), _) if flooded => Some((NEW, rank(true, n))),
            (Some(n), Some(b)) if n <= b => Some((NEW, rank(false, n))),
            (_, Some(b)) => Some((BACK, rank(false, b))),
            (Some(n), None) => Some((NEW, rank(false, n))),
            (None, None) => None,
        }
    }

    /// The rank of this shard's best victim ([`NO_VICTIM`] if it has none).
    pub(crate) fn victim_rank(&self) -> u64 {
        self.victim().map_or(NO_VICTIM, |(_, r)| r)
    }

    /// Evicts this shard's best victim, never the entry at `spare`. An entry found out of
    /// place (it came back, or expires later than its bucket says) is moved to its place
    /// instead. In a durable store the eviction is logged first; if the log refuses, the
    /// entry is kept and the error returned.
    pub(crate) fn evict_one(
        &mut self,
        spare: Option<u32>,
        ctx: &Ctx<'_>,
    ) -> Result<Evicted, StoreError> {
        let Some((first, _)) = self.victim() else {
            return Ok(Evicted::Nothing);
        };
        for lane in [first, first ^ 1] {
            let Some((bucket, pos)) = self.wheel.oldest(lane).find(|&(_, p)| Some(p) != spare)
            else {
                continue;
            };
            let Some(e) = self.slab.get(pos) else {
                continue;
            };
            let deadline = e.deadline();
            if bucket_of(deadline) > bucket || (lane == NEW && e.is_back()) {
                // Touched or changed since it was placed, or it came back: move it to its
                // own bucket and lane rather than evict it.
                self.rebucket(pos, deadline);
                return Ok(Evicted::Moved);
            }
            if deadline > ctx.now_ms {
                ctx.append(OpRef::Destroy {
                    sid: self.slab.key(pos),
                })?;
                self.evicted += 1;
            } else {
                self.expired += 1;
            }
            // An expired entry is only freed early: recovery drops it too.
            self.remove_at(pos);
            return Ok(Evicted::One);
        }
        Ok(Evicted::Nothing)
    }

    /// Makes room in the store for `need` by evicting from this shard, as long as it holds
    /// the store's best victim (compared with the `others`), never the entry at `spare`.
    /// Returns false when the best victim is elsewhere (nothing was evicted for the rest of
    /// the need; the caller evicts there without this lock and tries again).
    pub(crate) fn make_room(
        &mut self,
        caps: &Caps,
        others: &dyn Elsewhere,
        need: Need,
        spare: Option<u32>,
        ctx: &Ctx<'_>,
    ) -> Result<bool, StoreError> {
        // No sweep here: it could compact the slab and move `spare`. Expired entries are in
        // the earliest buckets, so they are the first victims anyway.
        loop {
            if caps.fits(need, self.recorded, self.holds()) {
                return Ok(true);
            }
            if !others.insist() && others.best() < self.victim_rank() {
                return Ok(false);
            }
            match self.evict_one(spare, ctx)? {
                Evicted::One | Evicted::Moved => {}
                Evicted::Nothing => {
                    return Ok(others.insist() || others.best() == NO_VICTIM);
                }
            }
        }
    }
}

/// What a write under its shard's lock came to.
pub(crate) enum Written<T> {
    Done(T),
    /// The store's best victim is in another shard: the write let go of its lock without
    /// changing anything, and needs this much room.
    Short(Need),
}
