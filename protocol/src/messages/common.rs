//! Types shared by several links: responses, errors, room options.

use serde::{Deserialize, Serialize};

use crate::{Properties, ResultCode};

/// Largest game name, in bytes of UTF-8.
pub const MAX_GAME_NAME: usize = 128;
/// Largest user id, in bytes of UTF-8.
pub const MAX_USER_ID: usize = 128;

/// A failed operation: a [`ResultCode`] number and a message a person can read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct OpError {
    /// A [`ResultCode`] wire number.
    pub code: i16,
    /// Human-readable detail.
    pub message: String,
}

impl OpError {
    /// An error with a known code.
    pub fn new(code: ResultCode, message: impl Into<String>) -> Self {
        OpError {
            code: code.to_wire(),
            message: message.into(),
        }
    }

    /// The code, if this version knows it.
    pub fn result_code(&self) -> Option<ResultCode> {
        ResultCode::from_wire(self.code)
    }
}

/// The answer to a request: the request's id and the outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response<T> {
    /// The id the client gave the request.
    pub id: u32,
    /// `Ok` (variant 0) with the reply or `Err` (variant 1) with the error.
    pub result: Result<T, OpError>,
}

/// Options of a new room, given with `CreateGame`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomOptions {
    /// Largest number of actors; 0 = unlimited.
    pub max_players: u32,
    /// Whether the room accepts joins.
    pub is_open: bool,
    /// Whether the room is listed in lobbies and found by random matchmaking.
    pub is_visible: bool,
    /// Initial room properties.
    pub properties: Properties,
    /// Keys of the properties that are listed in the lobby.
    pub lobby_properties: Vec<String>,
    /// Whether actors see each other's user ids in `Join` events and actor lists.
    pub publish_user_id: bool,
}

impl Default for RoomOptions {
    fn default() -> Self {
        RoomOptions {
            max_players: 0,
            is_open: true,
            is_visible: true,
            properties: Properties::new(),
            lobby_properties: Vec::new(),
            publish_user_id: false,
        }
    }
}

/// Checks a game name: 1 to [`MAX_GAME_NAME`] bytes, no control characters.
pub fn check_game_name(name: &str) -> Result<(), OpError> {
    if name.is_empty() || name.len() > MAX_GAME_NAME || name.chars().any(char::is_control) {
        return Err(OpError::new(
            ResultCode::InvalidRequestParameters,
            format!("game name must be 1 to {MAX_GAME_NAME} bytes without control characters"),
        ));
    }
    Ok(())
}
