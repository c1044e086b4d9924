//! The `switchboard` command's library side: the in-process development cluster
//! ([`dev`]), the end-to-end smoke check ([`probe`]) and the operator client ([`admin`]). `main.rs` only parses flags,
//! sets up logging and calls these or the server libraries.

pub mod admin;
pub mod bench;
pub mod dev;
pub mod devstate;
pub mod limits;
pub mod probe;
pub mod procs;
