//! Making room across shards: a write whose shard does not hold the store's best victim lets
//! go of its lock, evicts in the shard that holds it, and tries again (see `policy/`).

use super::context::Ctx;
use super::policy::{Elsewhere, Need, Written, NO_VICTIM};
use super::shard::Shard;
use crate::error::StoreError;

/// How many times a write lets go of its lock to make room elsewhere before it makes what
/// room it can in its own shard and goes ahead.
const ATTEMPTS: usize = 4;

/// Where a write may take room from.
pub(crate) struct Room<'a> {
    shards: &'a [Shard],
    own: &'a Shard,
    /// Make what room the own shard can give and go ahead (the last attempt).
    insist: bool,
}

impl<'a> Room<'a> {
    /// A store of one shard (for tests).
    #[cfg(all(test, not(sessile_loom)))]
    pub(crate) fn single(own: &'a Shard) -> Self {
        Room {
            shards: std::slice::from_ref(own),
            own,
            insist: false,
        }
    }
}

impl Elsewhere for Room<'_> {
    fn insist(&self) -> bool {
        self.insist
    }

    fn best(&self) -> u64 {
        self.shards
            .iter()
            .filter(|s| !std::ptr::eq(*s, self.own))
            .map(Shard::rank)
            .min()
            .unwrap_or(NO_VICTIM)
    }
}

/// Runs `write` on `own` (one of `shards`), making room in other shards when it asks for it
/// (see `policy/`).
pub(crate) fn with_room<T>(
    shards: &[Shard],
    own: &Shard,
    ctx: &Ctx<'_>,
    mut write: impl FnMut(&Room<'_>) -> Result<Written<T>, StoreError>,
) -> Result<T, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let room = Room {
            shards,
            own,
            insist: attempt >= ATTEMPTS,
        };
        match write(&room)? {
            Written::Done(t) => return Ok(t),
            Written::Short(need) => make_room_elsewhere(&room, need, ctx)?,
        }
    }
}

/// Evicts from the shards other than the writer's, best victim first, until the store has
/// room for `need` (or nothing is left to evict there).
fn make_room_elsewhere(room: &Room<'_>, need: Need, ctx: &Ctx<'_>) -> Result<(), StoreError> {
    let Some(caps) = room.own.caps() else {
        return Ok(());
    };
    // Each round evicts one session or moves one that came back to its right place; the
    // bound only guards against a bug turning this into a spin.
    for _ in 0..1_000_000 {
        if caps.fits(need, (0, 0), (0, 0)) {
            return Ok(());
        }
        let best = room
            .shards
            .iter()
            .filter(|s| !std::ptr::eq(*s, room.own))
            .min_by_key(|s| s.rank());
        match best {
            Some(s) if s.rank() != NO_VICTIM => {
                // Evicted, moved, or found nothing (its rank is then published as such).
                s.evict_one(ctx)?;
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}
