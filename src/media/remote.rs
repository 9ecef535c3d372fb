//! http(s) inputs on servers that ignore Range requests.
//!
//! libav streams a URL and seeks in it with Range requests. An MP4 or
//! QuickTime file whose index (`moov`) comes after its media data can only
//! be demuxed by seeking back from the index to the data; on a server that
//! ignores Range (`python3 -m http.server`, some origins) every such read
//! fails with "the file may be truncated or damaged".
//!
//! [`RemoteInput::connect`] makes one GET request through libav's own http
//! protocol. Its answer tells whether the server honours Range; if not, the
//! first top-level boxes of the body tell whether the file is an MP4 with
//! its index last ([`RemoteInput::needs_seeking`]). Only then is that same
//! body saved to a scratch file in the temp dir ([`RemoteInput::save`]),
//! which libav reads instead of the URL and which is removed when the
//! returned [`ScratchCopy`] is dropped, or by
//! [`crate::fsutil::remove_scratch`] when the process exits at once.

use super::ff;
use std::ffi::CString;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Top-level boxes skipped while looking for the index: beyond this much,
/// the file is treated as needing seeks.
const SCAN_LIMIT: u64 = 16 << 20;

/// A local copy of a remote input in the temp dir, removed when dropped
/// (or by [`crate::fsutil::remove_scratch`] on a hard exit).
#[derive(Debug)]
pub struct ScratchCopy {
    path: tempfile::TempPath,
}

impl ScratchCopy {
    fn register(path: tempfile::TempPath) -> Self {
        crate::fsutil::track_scratch(&path);
        ScratchCopy { path }
    }

    /// Where the copy is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchCopy {
    fn drop(&mut self) {
        crate::fsutil::untrack_scratch(&self.path);
        // `TempPath` removes the file itself.
    }
}

/// Why a remote input could not be made readable.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The user asked to stop while the copy was being made.
    #[error("stopped on request while copying it")]
    Interrupted,
    /// The request, the transfer or the scratch file failed.
    #[error("{0}")]
    Failed(String),
}

/// One GET request to an http(s) input, read from the start.
pub struct RemoteInput<'a> {
    ctx: *mut ff::ffi::AVIOContext,
    /// Polled by libav while it waits for the network (see
    /// [`stop_requested`]), so Ctrl-C does not wait for a stalled server.
    cancel: &'a AtomicBool,
    /// Bytes already read from the body (while looking for the index).
    head: Vec<u8>,
}

impl<'a> RemoteInput<'a> {
    /// Sends the request, with the same network timeout as the demuxer;
    /// setting `cancel` stops this and every later read.
    pub fn connect(url: &str, cancel: &'a AtomicBool) -> Result<Self, RemoteError> {
        super::init();
        let c_url = CString::new(url)
            .map_err(|_| RemoteError::Failed("the URL contains a NUL byte".into()))?;
        let mut options = ff::Dictionary::new();
        options.set("rw_timeout", "30000000");
        let mut ctx = std::ptr::null_mut();
        // libav keeps a copy of this; `opaque` stays valid for 'a, which
        // outlives the context (closed on drop).
        let interrupt = ff::ffi::AVIOInterruptCB {
            callback: Some(stop_requested),
            opaque: std::ptr::from_ref(cancel).cast_mut().cast(),
        };
        // SAFETY: every pointer is valid for the call; libav takes the
        // options it uses and leaves the rest, which `own` frees.
        let ret = unsafe {
            let mut opts = options.disown();
            let ret = ff::ffi::avio_open2(
                &mut ctx,
                c_url.as_ptr(),
                ff::ffi::AVIO_FLAG_READ,
                &interrupt,
                &mut opts,
            );
            drop(ff::Dictionary::own(opts));
            ret
        };
        if ret < 0 {
            return Err(if cancel.load(Ordering::Relaxed) {
                RemoteError::Interrupted
            } else {
                RemoteError::Failed(format!("cannot open: {}", ff::Error::from(ret)))
            });
        }
        Ok(RemoteInput {
            ctx,
            cancel,
            head: Vec::new(),
        })
    }

    /// Whether the server answered as one that honours Range requests
    /// (`Accept-Ranges: bytes` or a `Content-Range`), so libav can seek.
    pub fn honours_range(&self) -> bool {
        // SAFETY: `ctx` is open until drop.
        unsafe { (*self.ctx).seekable != 0 }
    }

    /// Whether demuxing the body needs seeks: an MP4/QuickTime file whose
    /// index comes after its media data. Reads the first boxes, which
    /// [`Self::save`] still writes.
    pub fn needs_seeking(&mut self) -> Result<bool, RemoteError> {
        let mut reader = Recorder {
            inner: self,
            seen: Vec::new(),
        };
        let needs = needs_seeking(&mut reader);
        let seen = reader.seen;
        self.head = seen;
        needs.map_err(|e| {
            if self.cancel.load(Ordering::Relaxed) {
                RemoteError::Interrupted
            } else {
                RemoteError::Failed(format!("reading the response: {e}"))
            }
        })
    }

    /// The body's length when the server gave one.
    fn size(&self) -> Option<u64> {
        // SAFETY: `ctx` is open until drop.
        let size = unsafe { ff::ffi::avio_size(self.ctx) };
        u64::try_from(size).ok().filter(|&s| s > 0)
    }

    /// Saves the whole body to a new file in the temp dir. The file is
    /// removed on failure (or cancel), or later when the returned copy is
    /// dropped.
    pub fn save(mut self) -> Result<ScratchCopy, RemoteError> {
        let expected = self.size();
        let dir = std::env::temp_dir();
        let room = expected
            .map(|size| format!(" (it needs {})", bytesize::ByteSize(size)))
            .unwrap_or_default();
        let scratch = |e: std::io::Error| {
            RemoteError::Failed(format!(
                "cannot write the local copy in {}{room}: {e}",
                dir.display()
            ))
        };
        let (mut file, path) = tempfile::Builder::new()
            .prefix("vidpipe-input-")
            .tempfile()
            .map_err(scratch)?
            .into_parts();
        let copy = ScratchCopy::register(path);
        let head = std::mem::take(&mut self.head);
        file.write_all(&head).map_err(scratch)?;
        let mut written = head.len() as u64;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = match self.read_some(&mut buf) {
                _ if self.cancel.load(Ordering::Relaxed) => return Err(RemoteError::Interrupted),
                Ok(n) => n,
                Err(e) => return Err(stopped(written, expected, &e.to_string())),
            };
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n]).map_err(scratch)?;
            written += n as u64;
        }
        if expected.is_some_and(|size| size != written) {
            return Err(stopped(
                written,
                expected,
                "the server closed the connection",
            ));
        }
        Ok(copy)
    }

    /// Reads the next bytes of the body; 0 at its end.
    fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, ff::Error> {
        let len = i32::try_from(buf.len()).unwrap_or(i32::MAX);
        // SAFETY: `ctx` is open and `buf` holds at least `len` bytes.
        let n = unsafe { ff::ffi::avio_read(self.ctx, buf.as_mut_ptr(), len) };
        match n {
            n if n >= 0 => Ok(n as usize),
            ff::ffi::AVERROR_EOF => Ok(0),
            n => Err(ff::Error::from(n)),
        }
    }
}

/// A download that ended early, with how far it got.
fn stopped(written: u64, expected: Option<u64>, reason: &str) -> RemoteError {
    let of = expected
        .map(|size| format!(" of {size}"))
        .unwrap_or_default();
    RemoteError::Failed(format!(
        "the download stopped after {written}{of} bytes: {reason}"
    ))
}

/// libav's interrupt callback: non-zero once the user asked to stop.
unsafe extern "C" fn stop_requested(opaque: *mut std::ffi::c_void) -> std::ffi::c_int {
    // SAFETY: `opaque` is the `&AtomicBool` given to `connect`, which
    // outlives the context that calls this.
    let cancel = unsafe { &*opaque.cast::<AtomicBool>() };
    std::ffi::c_int::from(cancel.load(Ordering::Relaxed))
}

impl Drop for RemoteInput<'_> {
    fn drop(&mut self) {
        // SAFETY: `ctx` came from `avio_open2` and is closed only here.
        unsafe { ff::ffi::avio_closep(&mut self.ctx) };
    }
}

/// Reads through a [`RemoteInput`], keeping what it read.
struct Recorder<'a, 'b> {
    inner: &'a mut RemoteInput<'b>,
    seen: Vec<u8>,
}

impl Read for Recorder<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read_some(buf).map_err(std::io::Error::other)?;
        self.seen.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// Whether `body` is an MP4/QuickTime file whose `moov` comes after its
/// `mdat` (or lies beyond [`SCAN_LIMIT`]), from its top-level boxes. Other
/// formats, and MP4s with the index first, stream front to back.
fn needs_seeking(body: &mut impl Read) -> std::io::Result<bool> {
    const FIRST_BOXES: &[&[u8; 4]] = &[b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide"];
    let mut scanned = 0u64;
    let mut first = true;
    loop {
        let mut header = [0u8; 8];
        if !read_full(body, &mut header)? {
            return Ok(false);
        }
        let kind: [u8; 4] = [header[4], header[5], header[6], header[7]];
        if first && !FIRST_BOXES.contains(&&kind) {
            return Ok(false);
        }
        first = false;
        match &kind {
            b"moov" => return Ok(false),
            b"mdat" => return Ok(true),
            _ => {}
        }
        let mut size = u64::from(u32::from_be_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        let mut header_len = 8;
        if size == 1 {
            let mut large = [0u8; 8];
            if !read_full(body, &mut large)? {
                return Ok(false);
            }
            size = u64::from_be_bytes(large);
            header_len = 16;
        }
        if size == 0 || size < header_len {
            // Runs to the end of the file, or is not a box at all.
            return Ok(false);
        }
        scanned += size;
        if scanned > SCAN_LIMIT {
            return Ok(true);
        }
        let skip = size - header_len;
        if std::io::copy(&mut body.take(skip), &mut std::io::sink())? < skip {
            return Ok(false);
        }
    }
}

/// Fills `buf`; `false` when the body ends first.
fn read_full(body: &mut impl Read, buf: &mut [u8]) -> std::io::Result<bool> {
    match body.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], payload: usize) -> Vec<u8> {
        let mut b = u32::try_from(8 + payload)
            .expect("small box")
            .to_be_bytes()
            .to_vec();
        b.extend_from_slice(kind);
        b.resize(8 + payload, 0);
        b
    }

    fn needs(boxes: &[Vec<u8>]) -> bool {
        needs_seeking(&mut boxes.concat().as_slice()).expect("in memory")
    }

    #[test]
    fn an_mp4_with_its_index_last_needs_seeking() {
        let ftyp = boxed(b"ftyp", 24);
        assert!(needs(&[
            ftyp.clone(),
            boxed(b"free", 8),
            boxed(b"mdat", 100)
        ]));
        assert!(!needs(&[
            ftyp.clone(),
            boxed(b"moov", 40),
            boxed(b"mdat", 100)
        ]));
        // QuickTime files may start with a `wide` atom.
        assert!(needs(&[boxed(b"wide", 0), boxed(b"mdat", 100)]));
    }

    #[test]
    fn other_formats_and_odd_files_stream() {
        let ts = [0x47u8; 188 * 4];
        assert!(!needs_seeking(&mut ts.as_slice()).expect("in memory"));
        assert!(!needs_seeking(&mut b"ab".as_slice()).expect("in memory"));
        // A box that would run past the end of a short body.
        assert!(!needs(&[boxed(b"ftyp", 24)[..20].to_vec()]));
    }

    #[test]
    fn a_64_bit_box_size_is_followed() {
        let mut large = 1u32.to_be_bytes().to_vec();
        large.extend_from_slice(b"free");
        large.extend_from_slice(&24u64.to_be_bytes());
        large.resize(24, 0);
        assert!(needs(&[boxed(b"ftyp", 8), large, boxed(b"mdat", 10)]));
    }
}
