//! The epoll tokens of a loop: each says whose event it is — a connection's (its [`ConnId`]),
//! the waker's, or one of the role's own (the listener, a connect in progress). Never a raw fd.

use crate::base::slab::ConnId;

/// The token of the loop's waker.
pub(crate) const WAKER: u64 = u64::MAX;

/// Set in the tokens of the role's sockets; a [`ConnId`]'s index never has it (the slab stays
/// below [`crate::base::slab::MAX_SLOTS`]).
const ROLE_BIT: u64 = 1 << 31;

/// Whose event a token names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    /// The waker: the mailbox has work, or another loop nudged this one.
    Waker,
    /// One of the loop's connections.
    Conn(ConnId),
    /// One of the role's sockets, by the role's own key.
    Role(u64),
}

impl Token {
    /// Reads a token back from an epoll event.
    pub(crate) fn from_raw(raw: u64) -> Token {
        if raw == WAKER {
            Token::Waker
        } else if raw & ROLE_BIT != 0 {
            Token::Role(raw & !ROLE_BIT)
        } else {
            Token::Conn(ConnId::from_u64(raw))
        }
    }
}

/// The epoll token of the role's socket with `key` (whose bit 31 must be clear, as in any
/// [`ConnId`]).
pub(crate) fn role_token(key: u64) -> u64 {
    debug_assert_eq!(key & ROLE_BIT, 0, "a role key must leave bit 31 clear");
    key | ROLE_BIT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_never_collide() {
        let conn = ConnId::from_u64((7 << 32) | 5);
        assert_eq!(Token::from_raw(conn.as_u64()), Token::Conn(conn));
        assert_eq!(Token::from_raw(role_token(conn.as_u64())), Token::Role(conn.as_u64()));
        assert_eq!(Token::from_raw(role_token(0)), Token::Role(0));
        assert_eq!(Token::from_raw(WAKER), Token::Waker);
        let biggest = ((u32::MAX as u64) << 32) | (crate::base::slab::MAX_SLOTS as u64 - 1);
        assert_ne!(role_token(biggest), WAKER);
    }
}
