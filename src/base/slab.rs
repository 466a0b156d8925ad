//! A generational slab: connections are addressed by [`ConnId`] (slot index + generation),
//! never by their raw fd, so a stale id can never reach a connection that reused a slot.

use std::fmt;

/// Identifies one connection within its IO loop for its whole life.
///
/// It packs the slot index (low 32 bits) and the slot's generation (high 32 bits). When a
/// connection closes its slot's generation is bumped, so an id kept after the close — in a
/// timer, a map, or a [`crate::ConnHandle`] — never matches the connection that reuses the slot.
/// The same value is the epoll token of the connection's socket.
///
/// Any thread may hold and compare ids; they are only meaningful to the loop that issued them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    pub(crate) fn new(index: u32, generation: u32) -> Self {
        ConnId(((generation as u64) << 32) | index as u64)
    }

    /// The id as a raw `u64` (e.g. for logs or maps keyed by integers).
    pub fn as_u64(self) -> u64 {
        self.0
    }

    pub(crate) fn from_u64(v: u64) -> Self {
        ConnId(v)
    }

    pub(crate) fn index(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }

    pub(crate) fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnId({}#{})", self.index(), self.generation())
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.index(), self.generation())
    }
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Slots of `T` addressed by [`ConnId`]; freed slots are reused, their generation bumped.
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

/// Most slots a slab holds: indices with the top bit set are never issued, so the reactor can
/// give its own epoll tokens (the waker's, a role's) that bit and never collide with a
/// connection's.
pub(crate) const MAX_SLOTS: usize = (1 << 31) - 1;

impl<T> Slab<T> {
    pub(crate) fn new() -> Self {
        Slab { slots: Vec::new(), free: Vec::new(), len: 0 }
    }

    /// Number of occupied slots.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Inserts the value built from its future id.
    pub(crate) fn insert_with(&mut self, make: impl FnOnce(ConnId) -> T) -> ConnId {
        let index = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                assert!(self.slots.len() < MAX_SLOTS, "slab is full");
                self.slots.push(Slot { generation: 0, value: None });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        let id = ConnId::new(index as u32, slot.generation);
        slot.value = Some(make(id));
        self.len += 1;
        id
    }

    pub(crate) fn get(&self, id: ConnId) -> Option<&T> {
        match self.slots.get(id.index()) {
            Some(slot) if slot.generation == id.generation() => slot.value.as_ref(),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut T> {
        match self.slots.get_mut(id.index()) {
            Some(slot) if slot.generation == id.generation() => slot.value.as_mut(),
            _ => None,
        }
    }

    /// Removes the value; the slot's generation is bumped so `id` goes stale.
    pub(crate) fn remove(&mut self, id: ConnId) -> Option<T> {
        let slot = self.slots.get_mut(id.index())?;
        if slot.generation != id.generation() {
            return None;
        }
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index() as u32);
        self.len -= 1;
        Some(value)
    }

    /// The values of all occupied slots.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|s| s.value.as_ref())
    }

    /// Ids of all occupied slots.
    pub(crate) fn ids(&self) -> Vec<ConnId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.value.is_some())
            .map(|(i, s)| ConnId::new(i as u32, s.generation))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_id_never_reaches_reused_slot() {
        let mut slab = Slab::new();
        let a = slab.insert_with(|id| (id, "a"));
        assert_eq!(slab.get(a).unwrap().1, "a");
        assert_eq!(slab.remove(a).unwrap().1, "a");
        let b = slab.insert_with(|id| (id, "b"));
        assert_eq!(a.index(), b.index(), "slot is reused");
        assert_ne!(a, b);
        assert!(slab.get(a).is_none());
        assert!(slab.get_mut(a).is_none());
        assert!(slab.remove(a).is_none());
        assert_eq!(slab.get(b).unwrap().0, b);
        assert_eq!(slab.len(), 1);
        assert_eq!(slab.ids(), vec![b]);
    }

    #[test]
    fn id_round_trips_through_u64() {
        let id = ConnId::new(7, 3);
        assert_eq!(ConnId::from_u64(id.as_u64()), id);
        assert_eq!((id.index(), id.generation()), (7, 3));
        assert_eq!(id.to_string(), "7#3");
    }
}
