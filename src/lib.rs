//! The `switchboard` command's library side: the in-process development cluster
//! ([`dev`]) and the end-to-end smoke check ([`probe`]). `main.rs` only parses flags,
//! sets up logging and calls these or the server libraries.

pub mod dev;
pub mod probe;
