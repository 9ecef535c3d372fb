//! Language tags: the one place that checks, normalises and names BCP-47
//! tags, for caption tracks (`captions`) and the audio rendition
//! (`transcode-hls`) alike. Containers often carry ISO 639-2 codes
//! (`eng`, `fre`); [`shortest_language_tag`] turns the common ones into the
//! two-letter tags players expect.

/// Checks and normalises a BCP-47 language tag (`en`, `pt-BR`, `zh-Hant`,
/// `und`): the primary subtag lower case, a 4-letter script title case, a
/// 2-letter region upper case.
pub fn language_tag(text: &str) -> Result<String, String> {
    let bad = || {
        let hint = if text.contains('_') {
            format!(" (did you mean {}?)", text.replace('_', "-"))
        } else {
            String::new()
        };
        format!("`{text}` is not a BCP-47 language tag such as en, fr or pt-BR{hint}")
    };
    let mut subtags = text.split('-');
    let primary = subtags.next().unwrap_or_default();
    if !(2..=8).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(bad());
    }
    let mut tag = primary.to_ascii_lowercase();
    for sub in subtags {
        if sub.is_empty() || sub.len() > 8 || !sub.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        tag.push('-');
        match sub.len() {
            2 if sub.bytes().all(|b| b.is_ascii_alphabetic()) => {
                tag.push_str(&sub.to_ascii_uppercase())
            }
            4 if sub.bytes().all(|b| b.is_ascii_alphabetic()) => {
                tag.push_str(&sub[..1].to_ascii_uppercase());
                tag.push_str(&sub[1..].to_ascii_lowercase());
            }
            _ => tag.push_str(&sub.to_ascii_lowercase()),
        }
    }
    Ok(tag)
}

/// The language of a `name.<lang>.srt` file name, if its second extension
/// looks like a language tag (2–3 letter primary subtag).
pub fn language_from_file_name(name: &str) -> Option<String> {
    let stem = name.rsplit_once('.')?.0;
    let candidate = stem.rsplit_once('.')?.1;
    let primary = candidate.split('-').next()?;
    if !(2..=3).contains(&primary.len()) {
        return None;
    }
    language_tag(candidate).ok()
}

/// `tag` with a three-letter ISO 639-2 primary subtag (the codes media
/// containers use, `eng`, `fre`/`fra`) replaced by its two-letter code
/// when the language has one in the names table (`eng-US` → `en-US`), as
/// BCP-47 asks; other tags unchanged. `tag` is already normalised.
pub fn shortest_language_tag(tag: &str) -> String {
    const ISO_639_2: [(&str, &str); 50] = [
        ("ara", "ar"),
        ("bul", "bg"),
        ("cat", "ca"),
        ("ces", "cs"),
        ("cze", "cs"),
        ("dan", "da"),
        ("deu", "de"),
        ("ger", "de"),
        ("ell", "el"),
        ("gre", "el"),
        ("eng", "en"),
        ("spa", "es"),
        ("est", "et"),
        ("fas", "fa"),
        ("per", "fa"),
        ("fin", "fi"),
        ("fra", "fr"),
        ("fre", "fr"),
        ("heb", "he"),
        ("hin", "hi"),
        ("hrv", "hr"),
        ("hun", "hu"),
        ("ind", "id"),
        ("ita", "it"),
        ("jpn", "ja"),
        ("kor", "ko"),
        ("lit", "lt"),
        ("lav", "lv"),
        ("msa", "ms"),
        ("may", "ms"),
        ("nob", "nb"),
        ("nld", "nl"),
        ("dut", "nl"),
        ("nor", "no"),
        ("pol", "pl"),
        ("por", "pt"),
        ("ron", "ro"),
        ("rum", "ro"),
        ("rus", "ru"),
        ("slk", "sk"),
        ("slo", "sk"),
        ("slv", "sl"),
        ("srp", "sr"),
        ("swe", "sv"),
        ("tha", "th"),
        ("tur", "tr"),
        ("ukr", "uk"),
        ("vie", "vi"),
        ("zho", "zh"),
        ("chi", "zh"),
    ];
    let (primary, rest) = tag
        .split_once('-')
        .map_or((tag, None), |(p, r)| (p, Some(r)));
    match ISO_639_2.iter().find(|(long, _)| *long == primary) {
        Some((_, short)) => match rest {
            Some(rest) => format!("{short}-{rest}"),
            None => (*short).to_string(),
        },
        None => tag.to_string(),
    }
}

/// A human-readable, unique NAME for a subtitle rendition: the language's
/// English name, with the rest of the tag in brackets (`English (GB)`);
/// the tag itself for languages not in the table.
pub fn language_name(tag: &str) -> String {
    const NAMES: [(&str, &str); 40] = [
        ("ar", "Arabic"),
        ("bg", "Bulgarian"),
        ("ca", "Catalan"),
        ("cs", "Czech"),
        ("da", "Danish"),
        ("de", "German"),
        ("el", "Greek"),
        ("en", "English"),
        ("es", "Spanish"),
        ("et", "Estonian"),
        ("fa", "Persian"),
        ("fi", "Finnish"),
        ("fr", "French"),
        ("he", "Hebrew"),
        ("hi", "Hindi"),
        ("hr", "Croatian"),
        ("hu", "Hungarian"),
        ("id", "Indonesian"),
        ("it", "Italian"),
        ("ja", "Japanese"),
        ("ko", "Korean"),
        ("lt", "Lithuanian"),
        ("lv", "Latvian"),
        ("ms", "Malay"),
        ("nb", "Norwegian Bokmål"),
        ("nl", "Dutch"),
        ("no", "Norwegian"),
        ("pl", "Polish"),
        ("pt", "Portuguese"),
        ("ro", "Romanian"),
        ("ru", "Russian"),
        ("sk", "Slovak"),
        ("sl", "Slovenian"),
        ("sr", "Serbian"),
        ("sv", "Swedish"),
        ("th", "Thai"),
        ("tr", "Turkish"),
        ("uk", "Ukrainian"),
        ("vi", "Vietnamese"),
        ("zh", "Chinese"),
    ];
    let (primary, rest) = tag.split_once('-').unwrap_or((tag, ""));
    match NAMES.iter().find(|(code, _)| *code == primary) {
        Some((_, name)) if rest.is_empty() => (*name).to_string(),
        Some((_, name)) => format!("{name} ({rest})"),
        None if primary == "und" => "Undetermined".to_string(),
        None => tag.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags() {
        assert_eq!(language_tag("EN-us"), Ok("en-US".into()));
        assert_eq!(language_tag("zh-hant-tw"), Ok("zh-Hant-TW".into()));
        assert_eq!(language_tag("und"), Ok("und".into()));
        assert!(language_tag("en_US")
            .expect_err("should fail")
            .contains("did you mean en-US"));
        assert!(language_tag("e").is_err());
        assert!(language_tag("en-").is_err());
        assert_eq!(language_from_file_name("talk.fr.srt"), Some("fr".into()));
        assert_eq!(
            language_from_file_name("talk.pt-br.vtt"),
            Some("pt-BR".into())
        );
        assert_eq!(language_from_file_name("talk.srt"), None);
        assert_eq!(language_from_file_name("my.talk.srt"), None);
        assert_eq!(language_name("en-GB"), "English (GB)");
        assert_eq!(language_name("und"), "Undetermined");
        assert_eq!(language_name("tlh"), "tlh");
        assert_eq!(shortest_language_tag("eng"), "en");
        assert_eq!(shortest_language_tag("fre"), "fr");
        assert_eq!(shortest_language_tag("por-BR"), "pt-BR");
        assert_eq!(shortest_language_tag("und"), "und");
        assert_eq!(shortest_language_tag("tlh"), "tlh");
        assert_eq!(shortest_language_tag("en-GB"), "en-GB");
    }
}
