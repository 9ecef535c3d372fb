//! The HTTP headers a stored object carries, from its key's extension.
//!
//! [`kind_of`] is the one mapping from an extension to a Content-Type and
//! Cache-Control: playlists change while a stream is live, so players must
//! re-read them soon; segments, captions and pictures are long-lived but not
//! `immutable`, since a re-run with other settings rewrites the same names.
//! [`for_output`] is what vidpipe's own output gets, [`for_upload`] what
//! `upload-chunked` sends for a file of any kind.

/// Cache-Control of a playlist: re-read every couple of seconds.
const PLAYLIST_CACHE: &str = "max-age=2";

/// Cache-Control of media, captions, pictures and reports: a day.
const MEDIA_CACHE: &str = "max-age=86400";

/// The type of an object vidpipe knows nothing about.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// The headers one stored object is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHeaders {
    /// Its `Content-Type`.
    pub content_type: String,
    /// Its `Cache-Control`, when one suits it.
    pub cache_control: Option<&'static str>,
}

/// The Content-Type and Cache-Control of the kinds of object vidpipe
/// writes, by the extension of `key` (case-insensitive); `None` for any
/// other extension.
pub fn kind_of(key: &str) -> Option<(&'static str, &'static str)> {
    let kind = match extension(key)?.as_str() {
        "m3u8" => ("application/vnd.apple.mpegurl", PLAYLIST_CACHE),
        "ts" => ("video/mp2t", MEDIA_CACHE),
        "m4s" => ("video/iso.segment", MEDIA_CACHE),
        "mp4" => ("video/mp4", MEDIA_CACHE),
        "vtt" => ("text/vtt; charset=utf-8", MEDIA_CACHE),
        "jpg" | "jpeg" => ("image/jpeg", MEDIA_CACHE),
        "json" => ("application/json", MEDIA_CACHE),
        _ => return None,
    };
    Some(kind)
}

/// The headers of an object of vidpipe's output at `key`: its kind's, or
/// `application/octet-stream` without Cache-Control.
pub fn for_output(key: &str) -> ObjectHeaders {
    match kind_of(key) {
        Some((content_type, cache_control)) => ObjectHeaders {
            content_type: content_type.to_string(),
            cache_control: Some(cache_control),
        },
        None => ObjectHeaders {
            content_type: OCTET_STREAM.to_string(),
            cache_control: None,
        },
    }
}

/// The headers of a file uploaded to `key`: its kind's, else the type its
/// extension commonly has (octet-stream when there is none) without
/// Cache-Control. `content_type` (`--content-type`) replaces the type.
pub fn for_upload(key: &str, content_type: Option<&str>) -> ObjectHeaders {
    let mut headers = match kind_of(key) {
        Some(_) => for_output(key),
        None => ObjectHeaders {
            content_type: guess(key),
            cache_control: None,
        },
    };
    if let Some(forced) = content_type {
        headers.content_type = forced.to_string();
    }
    headers
}

/// Checks a Content-Type given by the user (`video/mp4`,
/// `text/plain; charset=utf-8`): a media type, as written.
pub fn parse_content_type(s: &str) -> Result<String, String> {
    let text = s.trim();
    match text.parse::<mime_guess::mime::Mime>() {
        Ok(m) if !m.type_().as_str().is_empty() && !m.subtype().as_str().is_empty() => {
            Ok(text.to_string())
        }
        _ => Err(format!(
            "`{s}` is not a media type such as `video/mp4` or `text/plain; charset=utf-8`"
        )),
    }
}

/// The common type of `key`'s extension, or octet-stream.
fn guess(key: &str) -> String {
    extension(key)
        .and_then(|ext| mime_guess::from_ext(&ext).first())
        .map_or_else(|| OCTET_STREAM.to_string(), |m| m.essence_str().to_string())
}

/// The lower-cased extension of the last path segment of `key`.
fn extension(key: &str) -> Option<String> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_of_maps_every_extension_vidpipe_writes() {
        let cases = [
            (
                "a/master.m3u8",
                "application/vnd.apple.mpegurl",
                "max-age=2",
            ),
            (
                "a/720p/index.M3U8",
                "application/vnd.apple.mpegurl",
                "max-age=2",
            ),
            ("a/720p/seg_00000.ts", "video/mp2t", "max-age=86400"),
            ("a/720p/seg_00000.m4s", "video/iso.segment", "max-age=86400"),
            ("a/720p/init.mp4", "video/mp4", "max-age=86400"),
            ("clip.mp4", "video/mp4", "max-age=86400"),
            ("a/subs/en.vtt", "text/vtt; charset=utf-8", "max-age=86400"),
            ("a/thumbnail.jpg", "image/jpeg", "max-age=86400"),
            ("a/sprite.jpeg", "image/jpeg", "max-age=86400"),
            ("a/report.json", "application/json", "max-age=86400"),
        ];
        for (key, content_type, cache) in cases {
            assert_eq!(kind_of(key), Some((content_type, cache)), "{key}");
        }
        for key in ["a/data.bin", "a/noext", "a/.m3u8", "a.ts/noext", "a/x."] {
            assert_eq!(kind_of(key), None, "{key}");
        }
    }

    #[test]
    fn unknown_output_is_octet_stream_without_cache_control() {
        assert_eq!(
            for_output("a/notes.txt"),
            ObjectHeaders {
                content_type: OCTET_STREAM.into(),
                cache_control: None
            }
        );
        assert_eq!(for_output("a/seg_1.ts").cache_control, Some(MEDIA_CACHE));
    }

    #[test]
    fn uploads_guess_unknown_types_and_take_an_override() {
        assert_eq!(for_upload("x/movie.mp4", None), for_output("x/movie.mp4"));
        let png = for_upload("x/a.png", None);
        assert_eq!(
            (png.content_type.as_str(), png.cache_control),
            ("image/png", None)
        );
        assert_eq!(for_upload("x/a.bin", None).content_type, OCTET_STREAM);
        assert_eq!(
            for_upload("x/a.zzzunknown", None).content_type,
            OCTET_STREAM
        );
        let forced = for_upload("x/a.bin", Some("video/x-custom"));
        assert_eq!(
            (forced.content_type.as_str(), forced.cache_control),
            ("video/x-custom", None)
        );
        let forced = for_upload("x/a.mp4", Some("video/quicktime"));
        assert_eq!(forced.content_type, "video/quicktime");
        assert_eq!(forced.cache_control, Some(MEDIA_CACHE));
    }

    #[test]
    fn parse_content_type_takes_media_types_only() {
        assert_eq!(parse_content_type(" video/mp4 "), Ok("video/mp4".into()));
        assert_eq!(
            parse_content_type("text/plain; charset=utf-8"),
            Ok("text/plain; charset=utf-8".into())
        );
        for bad in ["", "mp4", "video/", "video/mp4\r\nX-Evil: 1"] {
            assert!(parse_content_type(bad).is_err(), "{bad:?}");
        }
    }
}
