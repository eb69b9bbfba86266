//! `@mentions` in message text: where they may be, and how a client finds the ones
//! the server resolved.
//!
//! A mention is `@` at the start of the text or after a space or opening bracket,
//! followed by someone's display name — which may itself hold single spaces, so
//! `@Ann Lee, hi` could mean `Ann` or `Ann Lee`. [`candidates`] lists, per `@`, every
//! name it could be (longest first); the server keeps the longest that names a member
//! of the room, by user id, and stores it in the message as a [`crate::Mention`]
//! with the name as written. [`split`] is what a client does with those to highlight
//! them: the text cut into plain runs and mentions.

use crate::types::Mention;
use crate::validate::MAX_NAME_CHARS;

/// How many `@`s of one message are looked at; later ones stay text. Bounds the
/// server's lookup per message.
pub const MAX_MENTIONS: usize = 20;

/// The name that mentions everyone in the room (see [`crate::ErrorCode::MentionRoomNotAllowed`]).
pub const ROOM: &str = "room";

/// Could a mention start right after `c`?
fn opens_mention(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | '[' | '{' | '"' | '\'' | '>')
}

/// Could a mentioned name end right before `c`?
fn ends_name(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            ',' | '.' | ';' | ':' | '!' | '?' | ')' | ']' | '}' | '"' | '\''
        )
}

/// Every name each `@` of `text` could stand for, longest first (at most
/// [`MAX_MENTIONS`] `@`s, names of at most [`MAX_NAME_CHARS`] characters).
pub fn candidates(text: &str) -> Vec<Vec<&str>> {
    let mut found = Vec::new();
    let mut previous: Option<char> = None;
    for (at, c) in text.char_indices() {
        let starts = c == '@' && previous.is_none_or(opens_mention);
        previous = Some(c);
        if !starts {
            continue;
        }
        let rest = &text[at + 1..];
        let mut names = Vec::new();
        let mut whole = true;
        for (count, (end, c)) in rest.char_indices().enumerate() {
            if end > 0 && ends_name(c) {
                names.push(&rest[..end]);
            }
            if c == '\n' || c == '@' || count == MAX_NAME_CHARS {
                whole = false;
                break;
            }
        }
        if whole {
            names.push(rest);
        }
        names.dedup();
        names.retain(|n| !n.trim().is_empty() && n.trim() == *n);
        if !names.is_empty() {
            names.reverse();
            found.push(names);
            if found.len() == MAX_MENTIONS {
                break;
            }
        }
    }
    found
}

/// A run of a message's text: plain, or one of its mentions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text as it is.
    Text(&'a str),
    /// `@name` as written, standing for this mention.
    Mention(&'a str, &'a Mention),
}

/// `text` cut at each `@name` of `mentions` (the first place each is written as a
/// whole mention — `@Ann` is not found inside `@Anna` — in the order they appear),
/// for a client to show mentions apart.
pub fn split<'a>(text: &'a str, mentions: &'a [Mention]) -> Vec<Piece<'a>> {
    let mut marks: Vec<(usize, usize, &Mention)> = Vec::new();
    for mention in mentions {
        let mut from = 0;
        while let Some(found) = text[from..].find('@') {
            let at = from + found;
            let end = at + 1 + mention.name.len();
            let taken = marks.iter().any(|(s, e, _)| at < *e && *s < end);
            let opens = text[..at].chars().next_back().is_none_or(opens_mention);
            let closes = text
                .get(end..)
                .is_some_and(|rest| rest.chars().next().is_none_or(ends_name));
            let written = text.get(at + 1..end) == Some(mention.name.as_str());
            if !taken && opens && closes && written {
                marks.push((at, end, mention));
                break;
            }
            from = at + 1;
        }
    }
    marks.sort_by_key(|(at, _, _)| *at);
    let mut pieces = Vec::new();
    let mut from = 0;
    for (at, end, mention) in marks {
        if at > from {
            pieces.push(Piece::Text(&text[from..at]));
        }
        pieces.push(Piece::Mention(&text[at..end], mention));
        from = end;
    }
    if from < text.len() {
        pieces.push(Piece::Text(&text[from..]));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserId;

    #[test]
    fn each_at_lists_the_names_it_could_be_longest_first() {
        assert_eq!(
            candidates("hi @Ann Lee, how"),
            vec![vec!["Ann Lee, how", "Ann Lee,", "Ann Lee", "Ann"]]
        );
        assert_eq!(candidates("@bo"), vec![vec!["bo"]]);
        assert_eq!(
            candidates("(@bo) and @room!"),
            vec![vec!["bo) and", "bo)", "bo"], vec!["room!", "room"]]
        );
    }

    #[test]
    fn an_at_inside_a_word_or_alone_is_no_mention() {
        assert!(candidates("mail ann@example.com").is_empty());
        assert!(candidates("@ alone").is_empty());
        assert!(candidates("@").is_empty());
    }

    #[test]
    fn names_stop_at_the_line_and_the_name_length() {
        assert_eq!(candidates("@ann\nlee"), vec![vec!["ann"]]);
        let long = format!("@{}", "x".repeat(40));
        assert!(candidates(&long).is_empty());
    }

    #[test]
    fn only_so_many_ats_are_looked_at() {
        let text = "@a ".repeat(MAX_MENTIONS + 5);
        assert_eq!(candidates(&text).len(), MAX_MENTIONS);
    }

    #[test]
    fn split_marks_each_mention_where_it_is_written() {
        let ann = Mention {
            user: Some(UserId("u1".into())),
            name: "Ann Lee".into(),
        };
        let room = Mention {
            user: None,
            name: "room".into(),
        };
        let mentions = [room.clone(), ann.clone()];
        assert_eq!(
            split("hey @Ann Lee and @room!", &mentions),
            vec![
                Piece::Text("hey "),
                Piece::Mention("@Ann Lee", &ann),
                Piece::Text(" and "),
                Piece::Mention("@room", &room),
                Piece::Text("!"),
            ]
        );
        assert_eq!(split("no one", &mentions), vec![Piece::Text("no one")]);
        assert_eq!(
            split("@roomy", &mentions),
            vec![Piece::Text("@roomy")],
            "not inside a longer name"
        );
    }
}
