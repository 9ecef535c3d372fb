//! Shared helpers for the integration tests, one module per concern; the
//! re-exports below let every test file use them as `common::name`.
//! Each test binary compiles this module on its own and uses only part of
//! it, hence the allows.
#![allow(dead_code, unused_imports)]

pub mod binary;
pub mod clips;
pub mod faulty_proxy;
pub mod ffprobe;
pub mod fmp4;
pub mod garage;
pub mod http;
pub mod package;
pub mod playlists;
pub mod slurm;

pub use binary::{events, interrupt_when, ok, run, vidpipe};
pub use clips::{make_clip, make_natural_clip, succeeded, ClipSpec};
pub use ffprobe::{decode_master, duration_of, ffprobe, first_video_packet};
pub use http::HttpServer;
pub use package::{assert_only_listed_files, check_package, Expect};
pub use playlists::{attributes, media_entries, target_duration, variants, Entry, StreamInf};
