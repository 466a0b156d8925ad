//! Error messages for people: `address already in use`, not `Address already in use (os error
//! 98)` nor `Os { code: 98, .. }`.

use std::io;

/// `e` as a short lower-case phrase: the system's description without the `(os error N)`
/// suffix; other errors as they display.
pub fn describe(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match (e.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => &text[..at],
        _ => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        // Only the system's phrases start with a capital that is not part of a name.
        Some(first) if e.raw_os_error().is_some() => first.to_lowercase().chain(chars).collect(),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_errors_read_as_phrases() {
        let e = io::Error::from_raw_os_error(98);
        assert_eq!(describe(&e), "address already in use");
        assert_eq!(describe(&io::Error::from_raw_os_error(2)), "no such file or directory");
        let custom = io::Error::other("Root: gone");
        assert_eq!(describe(&custom), "Root: gone");
    }
}
