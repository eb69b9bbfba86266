//! Input rules shared by client and server.
//!
//! The client calls these to give inline feedback as a person types; the server calls
//! the very same functions before acting, so the two can never disagree. Each returns
//! the normalised value to use (trimmed, case-folded where the rule says so).

/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 32;
/// Longest channel name, in characters.
pub const MAX_CHANNEL_CHARS: usize = 40;
/// Longest message text, in characters (not bytes: a user counts what they see).
pub const MAX_MESSAGE_CHARS: usize = 4000;
/// Length of a new private room's code: 26¹² ≈ 9.5·10¹⁶ codes, so guessing one is
/// hopeless even for someone with a whole IPv6 /48 of addresses to spread guesses over
/// (docs/protocol.md, "Room codes", has the arithmetic).
pub const ROOM_CODE_LEN: usize = 12;
/// Length of the codes rooms got before codes grew to [`ROOM_CODE_LEN`]; still valid.
pub const LEGACY_ROOM_CODE_LEN: usize = 8;
/// Longest `client_id` of a send, in bytes.
pub const MAX_CLIENT_ID_BYTES: usize = 64;

/// Fewest characters in a password (NIST SP 800-63B / OWASP: length beats composition
/// rules, so there are no "must contain a digit" rules).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Most characters in a password: long passphrases are welcome, unbounded input to a
/// deliberately slow hash is not.
pub const MAX_PASSWORD_CHARS: usize = 128;
/// Longest email address (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// Checks an email address loosely, as a form should: `local@domain` with no spaces or
/// control characters, at most 254 characters. Whether it exists is for the emailed
/// link to prove. Returns it trimmed.
pub fn email(raw: &str) -> Result<String, String> {
    let email = raw.trim();
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err("Enter an email address like ann@example.org.".into());
    };
    if local.is_empty() || domain.is_empty() || domain.starts_with('.') || domain.ends_with('.') {
        return Err("Enter an email address like ann@example.org.".into());
    }
    if email.chars().count() > MAX_EMAIL_CHARS {
        return Err(format!(
            "Email addresses are at most {MAX_EMAIL_CHARS} characters."
        ));
    }
    if email
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || is_invisible(c))
    {
        return Err("Email addresses cannot contain spaces or control characters.".into());
    }
    Ok(email.to_string())
}

/// The key under which email addresses are unique: "Ann@Example.org" and
/// "ann@example.org" are one account.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Checks a new password: 8–128 characters, any characters at all (not trimmed: a
/// space is part of a passphrase).
pub fn password(raw: &str) -> Result<(), String> {
    let chars = raw.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!(
            "Use at least {MIN_PASSWORD_CHARS} characters ({} more).",
            MIN_PASSWORD_CHARS - chars
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(format!(
            "Passwords are at most {MAX_PASSWORD_CHARS} characters."
        ));
    }
    Ok(())
}

/// Checks a display name: 1–32 characters after trimming; any visible characters
/// (people write names in every script and with punctuation); no control or invisible
/// formatting characters, no run of several spaces. Returns the trimmed name.
///
/// Names are always rendered as text, so `<b>` in a name is just three characters.
pub fn display_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err("Pick a name of at least one character.".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("Names are at most {MAX_NAME_CHARS} characters."));
    }
    if name.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Err("Names cannot contain control or invisible characters.".into());
    }
    if name.contains("  ") {
        return Err("Names may not contain several spaces in a row.".into());
    }
    Ok(name.to_string())
}

/// Zero-width and direction-override characters: they make two names look alike or
/// scramble the text around them (file names too).
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}')
}

/// The key under which display names are unique: case- and width-insensitive enough
/// that "Ann" and "ann" cannot both be online.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Checks a channel name: 1–40 characters; letters, digits and `_ - .`; no spaces.
/// Returns the trimmed name (uniqueness is case-insensitive, see [`name_key`]).
pub fn channel_name(raw: &str) -> Result<String, String> {
    let name = raw.trim().trim_start_matches('#');
    if name.is_empty() {
        return Err("Channel names need at least one character.".into());
    }
    if name.chars().count() > MAX_CHANNEL_CHARS {
        return Err(format!(
            "Channel names are at most {MAX_CHANNEL_CHARS} characters."
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "Channel names may use letters, digits and _ - . (not {bad:?})."
        ));
    }
    Ok(name.to_string())
}

/// Checks a room code: 12 ASCII letters (or 8, an older room's), any case. Returns it
/// in upper case.
pub fn room_code(raw: &str) -> Result<String, String> {
    let code = raw.trim();
    let length_ok = code.len() == ROOM_CODE_LEN || code.len() == LEGACY_ROOM_CODE_LEN;
    if !length_ok || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!(
            "Room codes are {ROOM_CODE_LEN} letters ({LEGACY_ROOM_CODE_LEN} for older rooms)."
        ));
    }
    Ok(code.to_ascii_uppercase())
}

/// Checks message text: not blank, at most 4000 characters, no control characters
/// other than newline and tab. Returns it with trailing whitespace removed.
pub fn message_text(raw: &str) -> Result<String, String> {
    let text = raw.trim_end();
    if text.trim_start().is_empty() {
        return Err("Messages cannot be empty.".into());
    }
    if text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(format!(
            "Messages are at most {MAX_MESSAGE_CHARS} characters."
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("Messages cannot contain control characters.".into());
    }
    Ok(text.to_string())
}

/// Checks a send's text as [`message_text`] does, except that it may be empty when
/// `files` come with it (how many a message may carry is the caller's check: it has
/// its own error). Returns the text to store.
pub fn message_with_files(raw: &str, files: usize) -> Result<String, String> {
    if files > 0 && raw.trim().is_empty() {
        return Ok(String::new());
    }
    message_text(raw)
}

/// Most characters (code points) in one emoji: a family or a flag with modifiers is
/// a sequence of several joined by zero-width joiners.
pub const MAX_EMOJI_CHARS: usize = 10;

/// Checks a reaction: one emoji, not text. It starts with a pictograph (U+2000 and
/// up) or is a keycap (`1️⃣`); the rest may only be further pictographs, the joiners,
/// variation selectors, skin tones and tags emoji sequences are made of; no letters,
/// digits, spaces or controls anywhere, at most [`MAX_EMOJI_CHARS`] code points.
pub fn emoji(raw: &str) -> Result<(), String> {
    let refuse = || Err("A reaction is one emoji.".to_string());
    let chars: Vec<char> = raw.chars().collect();
    let Some(&first) = chars.first() else {
        return refuse();
    };
    if chars.len() > MAX_EMOJI_CHARS {
        return refuse();
    }
    let keycap = matches!(first, '0'..='9' | '#' | '*') && chars[1..] == ['\u{FE0F}', '\u{20E3}'];
    if keycap {
        return Ok(());
    }
    let joiner = |c: char| matches!(c, '\u{200D}' | '\u{FE0E}' | '\u{FE0F}' | '\u{20E3}');
    let pictograph = |c: char| {
        (c as u32) >= 0x2000
            && !c.is_alphanumeric()
            && !c.is_whitespace()
            && !c.is_control()
            && !is_invisible(c)
    };
    if !pictograph(first) || !chars[1..].iter().all(|&c| joiner(c) || pictograph(c)) {
        return refuse();
    }
    Ok(())
}

/// Checks a send's `client_id`: 1–64 bytes of printable ASCII.
pub fn client_id(raw: &str) -> Result<(), String> {
    if raw.is_empty()
        || raw.len() > MAX_CLIENT_ID_BYTES
        || !raw.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(format!(
            "client_id must be 1–{MAX_CLIENT_ID_BYTES} printable ASCII characters."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_are_single_emoji_and_never_text() {
        for ok in ["👍", "❤️", "🎉", "👩‍👩‍👧‍👦", "👍🏽", "🇳🇴", "1️⃣", "🏳️‍🌈", "✅"]
        {
            assert_eq!(emoji(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a",
            "ok",
            "👍 ",
            " 👍",
            "👍a",
            "日",
            "1",
            "<b>",
            "\u{200B}",
            "👍\u{202E}",
            "👍👍👍👍👍👍👍👍👍👍👍",
            "\n",
        ] {
            assert!(emoji(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn display_names() {
        assert_eq!(display_name("  Ann Lee ").as_deref(), Ok("Ann Lee"));
        assert_eq!(
            display_name("Zoë_O'Neil-2.0").as_deref(),
            Ok("Zoë_O'Neil-2.0")
        );
        assert!(display_name("").is_err());
        assert!(display_name("   ").is_err());
        assert_eq!(
            display_name("<img src=x onerror=alert(1)>").as_deref(),
            Ok("<img src=x onerror=alert(1)>"),
            "shown as text, so allowed"
        );
        assert!(display_name("zero\u{200B}width").is_err());
        assert!(display_name("rtl\u{202E}override").is_err());
        assert!(display_name("a  b").is_err());
        assert!(display_name(&"x".repeat(33)).is_err());
        assert!(display_name(&"é".repeat(32)).is_ok());
        assert!(display_name("tab\there").is_err());
    }

    #[test]
    fn name_keys_fold_case() {
        assert_eq!(name_key("Ann"), name_key(" ann "));
        assert_ne!(name_key("Ann"), name_key("Anne"));
    }

    #[test]
    fn emails() {
        assert_eq!(email(" Ann@Example.org ").as_deref(), Ok("Ann@Example.org"));
        assert_eq!(email_key("Ann@Example.org"), "ann@example.org");
        assert!(email("ann").is_err());
        assert!(email("@example.org").is_err());
        assert!(email("ann@").is_err());
        assert!(email("ann@.org").is_err());
        assert!(email("an n@example.org").is_err());
        assert!(email(&format!("{}@example.org", "a".repeat(250))).is_err());
    }

    #[test]
    fn passwords() {
        assert!(password("1234567").is_err());
        assert!(password("12345678").is_ok());
        assert!(
            password("        ").is_ok(),
            "spaces count: it is a passphrase"
        );
        assert!(password(&"p".repeat(MAX_PASSWORD_CHARS)).is_ok());
        assert!(password(&"p".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
        assert_eq!(
            password("abc").expect_err("too short"),
            "Use at least 8 characters (5 more)."
        );
    }

    #[test]
    fn channel_names() {
        assert_eq!(channel_name("#rust-lang").as_deref(), Ok("rust-lang"));
        assert!(channel_name("two words").is_err());
        assert!(channel_name("#").is_err());
        assert!(channel_name(&"c".repeat(41)).is_err());
    }

    #[test]
    fn room_codes() {
        assert_eq!(room_code(" abcdEFGH ").as_deref(), Ok("ABCDEFGH"));
        assert_eq!(room_code("abcdefghIJKL").as_deref(), Ok("ABCDEFGHIJKL"));
        assert!(room_code("ABCDEFG").is_err());
        assert!(room_code("ABCDEFGHI").is_err());
        assert!(room_code("ABCDEFGHIJKLM").is_err());
        assert!(room_code("ABCDEFG1").is_err());
        assert!(room_code("ÄBCDEFGH").is_err());
    }

    #[test]
    fn message_texts() {
        assert_eq!(message_text("hi  \n").as_deref(), Ok("hi"));
        assert_eq!(message_text("  indented").as_deref(), Ok("  indented"));
        assert!(message_text(" \n\t ").is_err());
        assert!(message_text("bell\u{7}").is_err());
        assert!(message_text(&"y".repeat(MAX_MESSAGE_CHARS)).is_ok());
        assert!(message_text(&"y".repeat(MAX_MESSAGE_CHARS + 1)).is_err());
    }

    #[test]
    fn client_ids() {
        assert!(client_id("c-1").is_ok());
        assert!(client_id("").is_err());
        assert!(client_id("has space").is_err());
        assert!(client_id(&"k".repeat(65)).is_err());
    }
}
