//! Message types of the three links. Each link has one enum per direction; postcard
//! writes an enum as its variant index (varint) followed by the variant's fields in
//! declaration order. Variants are only ever appended, never reordered.

pub mod cluster;
pub mod common;
pub mod game;
pub mod master;
