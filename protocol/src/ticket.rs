//! Signed, expiring join tickets.
//!
//! The master issues a ticket when it sends a client to a game server; the game server
//! accepts a create or join only with a valid ticket. Layout of the ticket bytes (opaque to
//! clients, which pass them through unchanged):
//!
//! ```text
//! claims: postcard(TicketClaims) | tag: 32 bytes HMAC-SHA256(key[claims.key_id], claims)
//! ```
//!
//! The tag is compared in constant time. Keys have ids so that a master can rotate its
//! signing key while game servers still accept tickets signed with the previous one.

use std::collections::BTreeMap;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::{Properties, ResultCode};

type HmacSha256 = Hmac<Sha256>;

/// Length of the HMAC-SHA256 tag at the end of a ticket.
pub const TAG_LEN: usize = 32;
/// Largest ticket a game server looks at.
pub const MAX_TICKET_LEN: usize = 1024;
/// Smallest accepted signing key.
pub const MIN_KEY_LEN: usize = 16;

/// What a ticket lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketAction {
    /// 0: create the game (the master reserved the name for this user).
    Create,
    /// 1: join the existing game.
    Join,
}

/// The signed content of a ticket. Field order is the wire order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketClaims {
    /// The user the master authenticated.
    pub user_id: String,
    /// The game's name.
    pub game: String,
    /// The id of the game server the ticket is valid on.
    pub game_server: String,
    /// Create or join.
    pub action: TicketAction,
    /// Expiry, milliseconds since the Unix epoch (UTC).
    pub expires_at_ms: u64,
    /// Id of the key that signed the ticket.
    pub key_id: u32,
    /// What the master decided for this create or join ([`terms_digest`]): the game
    /// server accepts only the same room options and expected users.
    pub terms: u64,
    /// Whether the user authenticated as a dedicated server (`AuthenticateServer`).
    pub authority: bool,
    /// What the master's authentication verified about the user (at most 512 bytes
    /// encoded), handed to a `Server` room's authority with the join.
    pub claims: Properties,
}

/// The digest of what the master decided for a create (`options` given) or a join
/// (`None`): the first 8 bytes, little-endian, of SHA-256 over the postcard encoding of
/// `(Option<RoomOptions>, expected users)`, the expected users sorted, without
/// duplicates and without `user` itself.
pub fn terms_digest(
    options: Option<&crate::RoomOptions>,
    expected_users: &[String],
    user: &str,
) -> u64 {
    use sha2::Digest;
    let mut expected: Vec<&str> = expected_users
        .iter()
        .map(String::as_str)
        .filter(|u| *u != user)
        .collect();
    expected.sort_unstable();
    expected.dedup();
    let bytes =
        postcard::to_stdvec(&(options, expected)).expect("encoding into memory cannot fail");
    let hash = Sha256::digest(&bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(first)
}

/// Why a ticket was refused. Each maps to its own [`ResultCode`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TicketError {
    /// The bytes are not a ticket.
    #[error("ticket is malformed")]
    Malformed,
    /// The ticket names a key this server does not have.
    #[error("ticket signed with unknown key id {0}")]
    UnknownKey(u32),
    /// The tag does not match the claims.
    #[error("ticket signature is invalid")]
    BadSignature,
    /// The ticket has expired.
    #[error("ticket expired")]
    Expired,
    /// The ticket was issued for another game server.
    #[error("ticket is for game server {0:?}")]
    WrongGameServer(String),
    /// The ticket was issued for another game.
    #[error("ticket is for game {0:?}")]
    WrongGame(String),
    /// The ticket allows another action (join instead of create or the reverse).
    #[error("ticket does not allow this operation")]
    WrongAction,
}

impl TicketError {
    /// The result code a game server answers with.
    pub fn code(&self) -> ResultCode {
        match self {
            TicketError::Malformed | TicketError::UnknownKey(_) | TicketError::BadSignature => {
                ResultCode::InvalidAuthentication
            }
            TicketError::Expired => ResultCode::AuthenticationTokenExpired,
            TicketError::WrongGameServer(_) => ResultCode::ExpectedGsCheckFailure,
            TicketError::WrongGame(_) | TicketError::WrongAction => {
                ResultCode::ExpectedGameCheckFailure
            }
        }
    }
}

/// A set of HMAC keys by id, one of which signs. Each key's HMAC state is keyed once
/// (the inner and outer pads hashed) and cloned per ticket.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "KeySet", into = "KeySet")]
pub struct TicketKeys {
    keys: BTreeMap<u32, Vec<u8>>,
    signing: u32,
    macs: BTreeMap<u32, HmacSha256>,
}

/// What travels: the keys and the signing id.
#[derive(Clone, Serialize, Deserialize)]
struct KeySet {
    keys: BTreeMap<u32, Vec<u8>>,
    signing: u32,
}

impl From<KeySet> for TicketKeys {
    fn from(k: KeySet) -> Self {
        let macs = k
            .keys
            .iter()
            .map(|(id, key)| {
                let mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
                (*id, mac)
            })
            .collect();
        TicketKeys {
            keys: k.keys,
            signing: k.signing,
            macs,
        }
    }
}

impl From<TicketKeys> for KeySet {
    fn from(k: TicketKeys) -> Self {
        KeySet {
            keys: k.keys,
            signing: k.signing,
        }
    }
}

impl PartialEq for TicketKeys {
    fn eq(&self, other: &Self) -> bool {
        self.keys == other.keys && self.signing == other.signing
    }
}

impl Eq for TicketKeys {}

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKeys")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("signing", &self.signing)
            .finish()
    }
}

/// A key set that cannot sign: the signing key is missing or too short.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// A key shorter than [`MIN_KEY_LEN`].
    #[error("ticket key {0} is shorter than {MIN_KEY_LEN} bytes")]
    TooShort(u32),
    /// The signing key id is not in the set.
    #[error("signing key id {0} is not among the keys")]
    MissingSigningKey(u32),
}

impl TicketKeys {
    /// A set with one key, used for signing.
    pub fn single(key_id: u32, key: Vec<u8>) -> Result<Self, KeyError> {
        Self::new(BTreeMap::from([(key_id, key)]), key_id)
    }

    /// A set of keys, `signing` naming the one that signs new tickets.
    pub fn new(keys: BTreeMap<u32, Vec<u8>>, signing: u32) -> Result<Self, KeyError> {
        if let Some((id, _)) = keys.iter().find(|(_, k)| k.len() < MIN_KEY_LEN) {
            return Err(KeyError::TooShort(*id));
        }
        if !keys.contains_key(&signing) {
            return Err(KeyError::MissingSigningKey(signing));
        }
        Ok(KeySet { keys, signing }.into())
    }

    /// The id of the signing key.
    pub fn signing_key_id(&self) -> u32 {
        self.signing
    }

    fn mac(&self, key_id: u32) -> Option<HmacSha256> {
        self.macs.get(&key_id).cloned()
    }

    /// Signs claims (their `key_id` is set to the signing key's id).
    pub fn sign(&self, mut claims: TicketClaims) -> Bytes {
        claims.key_id = self.signing;
        let mut out = postcard::to_stdvec(&claims).expect("encoding into memory cannot fail");
        let mut mac = self.mac(self.signing).expect("signing key exists");
        mac.update(&out);
        out.extend_from_slice(&mac.finalize().into_bytes());
        Bytes::from(out)
    }

    /// Checks a ticket's signature and expiry and that it is for `game_server`; returns
    /// the claims. The caller checks the game and the action against the operation.
    pub fn verify(
        &self,
        ticket: &[u8],
        now_ms: u64,
        game_server: &str,
    ) -> Result<TicketClaims, TicketError> {
        if ticket.len() > MAX_TICKET_LEN || ticket.len() <= TAG_LEN {
            return Err(TicketError::Malformed);
        }
        let (body, tag) = ticket.split_at(ticket.len() - TAG_LEN);
        let claims: TicketClaims =
            crate::frame::decode_body(body).map_err(|_| TicketError::Malformed)?;
        let mut mac = self
            .mac(claims.key_id)
            .ok_or(TicketError::UnknownKey(claims.key_id))?;
        mac.update(body);
        mac.verify_slice(tag)
            .map_err(|_| TicketError::BadSignature)?;
        if now_ms >= claims.expires_at_ms {
            return Err(TicketError::Expired);
        }
        if claims.game_server != game_server {
            return Err(TicketError::WrongGameServer(claims.game_server));
        }
        Ok(claims)
    }
}

impl TicketClaims {
    /// Checks that the ticket is for `game` and allows `action`.
    pub fn check_game(&self, game: &str, action: TicketAction) -> Result<(), TicketError> {
        if self.game != game {
            return Err(TicketError::WrongGame(self.game.clone()));
        }
        if self.action != action {
            return Err(TicketError::WrongAction);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> TicketClaims {
        TicketClaims {
            user_id: "alice".into(),
            game: "room1".into(),
            game_server: "gs-1".into(),
            action: TicketAction::Join,
            expires_at_ms: 10_000,
            key_id: 0,
            terms: 0x0102,
            authority: false,
            claims: Properties::new(),
        }
    }

    fn keys() -> TicketKeys {
        TicketKeys::single(7, b"0123456789abcdef0123456789abcdef".to_vec()).unwrap()
    }

    #[test]
    fn valid_ticket_verifies() {
        let t = keys().sign(claims());
        let c = keys().verify(&t, 9_999, "gs-1").unwrap();
        assert_eq!(c.key_id, 7);
        assert_eq!(c.user_id, "alice");
        c.check_game("room1", TicketAction::Join).unwrap();
    }

    #[test]
    fn golden_bytes() {
        let t = keys().sign(claims());
        let body = &t[..t.len() - TAG_LEN];
        #[rustfmt::skip]
        let expected: &[u8] = &[
            5, b'a', b'l', b'i', b'c', b'e',        // user_id: len 5 + UTF-8
            5, b'r', b'o', b'o', b'm', b'1',        // game
            4, b'g', b's', b'-', b'1',              // game_server
            1,                                      // action: Join
            0x90, 0x4e,                             // expires_at_ms: 10000 as varint
            7,                                      // key_id
            0x82, 0x02,                             // terms: 0x0102 as varint
            0,                                      // authority: false
            0,                                      // claims: none
        ];
        assert_eq!(body, expected);
        assert_eq!(t.len(), expected.len() + TAG_LEN);
    }

    #[test]
    fn each_failure_has_its_own_error_and_code() {
        let k = keys();
        let t = k.sign(claims());
        assert_eq!(k.verify(&t, 10_000, "gs-1"), Err(TicketError::Expired));
        assert_eq!(
            TicketError::Expired.code(),
            ResultCode::AuthenticationTokenExpired
        );
        let e = k.verify(&t, 0, "gs-2").unwrap_err();
        assert_eq!(e.code(), ResultCode::ExpectedGsCheckFailure);
        let c = k.verify(&t, 0, "gs-1").unwrap();
        let e = c.check_game("room2", TicketAction::Join).unwrap_err();
        assert_eq!(e.code(), ResultCode::ExpectedGameCheckFailure);
        assert_eq!(
            c.check_game("room1", TicketAction::Create),
            Err(TicketError::WrongAction)
        );

        let mut tampered = t.to_vec();
        tampered[1] = b'b'; // user "blice"
        assert_eq!(
            k.verify(&tampered, 0, "gs-1"),
            Err(TicketError::BadSignature)
        );
        let mut bad_tag = t.to_vec();
        *bad_tag.last_mut().unwrap() ^= 1;
        assert_eq!(
            k.verify(&bad_tag, 0, "gs-1"),
            Err(TicketError::BadSignature)
        );
        assert_eq!(k.verify(&t[..10], 0, "gs-1"), Err(TicketError::Malformed));
        assert_eq!(k.verify(&[0; 2000], 0, "gs-1"), Err(TicketError::Malformed));

        let other = TicketKeys::single(8, vec![1; 32]).unwrap();
        assert_eq!(other.verify(&t, 0, "gs-1"), Err(TicketError::UnknownKey(7)));
    }

    #[test]
    fn rotation_keeps_old_tickets_valid() {
        let old = keys();
        let t = old.sign(claims());
        let mut both = BTreeMap::new();
        both.insert(7, b"0123456789abcdef0123456789abcdef".to_vec());
        both.insert(8, vec![9; 32]);
        let rotated = TicketKeys::new(both, 8).unwrap();
        rotated.verify(&t, 0, "gs-1").unwrap();
        let t2 = rotated.sign(claims());
        assert_eq!(rotated.verify(&t2, 0, "gs-1").unwrap().key_id, 8);
        assert_eq!(old.verify(&t2, 0, "gs-1"), Err(TicketError::UnknownKey(8)));
    }

    #[test]
    fn short_or_missing_keys_are_refused() {
        assert_eq!(
            TicketKeys::single(1, vec![0; 8]),
            Err(KeyError::TooShort(1))
        );
        assert_eq!(
            TicketKeys::new(BTreeMap::from([(1, vec![0; 32])]), 2),
            Err(KeyError::MissingSigningKey(2))
        );
    }
}

#[cfg(test)]
mod terms_tests {
    use super::*;
    use crate::RoomOptions;

    #[test]
    fn the_terms_are_what_was_decided_in_a_canonical_order() {
        let o = RoomOptions {
            max_players: 2,
            ..RoomOptions::default()
        };
        let a = terms_digest(
            Some(&o),
            &["b".into(), "c".into(), "b".into(), "me".into()],
            "me",
        );
        assert_eq!(a, terms_digest(Some(&o), &["c".into(), "b".into()], "me"));
        let five = RoomOptions {
            max_players: 5,
            ..o.clone()
        };
        assert_ne!(
            a,
            terms_digest(Some(&five), &["b".into(), "c".into()], "me")
        );
        assert_ne!(
            a,
            terms_digest(Some(&o), &[], "me"),
            "dropped expected users"
        );
        assert_ne!(
            terms_digest(None, &[], "me"),
            terms_digest(Some(&RoomOptions::default()), &[], "me"),
            "a join is not a create"
        );
        // Pinned: SHA-256 of 00 00 (None, no expected users), first 8 bytes little-endian.
        assert_eq!(terms_digest(None, &[], "me"), 0xc685_f224_d296_a296);
    }
}
