//! `vidpipe run`'s engine parts: the manifest's shape and placeholders
//! ([`manifest`]), the files each input brings along ([`files`]), fetching a
//! remote input once for every step that decodes it ([`fetch`]), and the
//! record that lets a re-run skip a finished input without reading it
//! ([`record`]). Running the steps themselves is the CLI's job: each step
//! is a subcommand run through its own settings and run functions.

pub mod fetch;
pub mod files;
pub mod manifest;
pub mod record;
