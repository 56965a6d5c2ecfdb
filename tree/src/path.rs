//! ZooKeeper path rules (`PathUtils.validatePath`) and parent/child splitting.

use proto::ErrorCode;

/// Checks a full znode path the way ZooKeeper does: absolute, no trailing
/// slash (except "/"), no empty, "." or ".." components, and none of the
/// characters ZooKeeper refuses (NUL, control characters, surrogates and the
/// private-use and specials ranges). Fails with BadArguments.
pub fn validate(path: &str) -> Result<(), ErrorCode> {
    let bad = Err(ErrorCode::BadArguments);
    if !path.starts_with('/') {
        return bad;
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return bad;
    }
    // Components: none empty (no "//"), none "." or "..".
    if path[1..]
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return bad;
    }
    let refused = |c: char| {
        c == '\0'
            || ('\u{1}'..='\u{1f}').contains(&c)
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || ('\u{fff0}'..='\u{ffff}').contains(&c)
    };
    // Plain ASCII paths (nearly all) need only the byte checks.
    let ascii_refused = |b: u8| b < 0x20 || b == 0x7f;
    if path.is_ascii() {
        if path.bytes().any(ascii_refused) {
            return bad;
        }
    } else if path.chars().any(refused) {
        return bad;
    }
    Ok(())
}

/// The parent of an absolute path ("/" for top-level nodes), and the last
/// component. `None` when the path has no slash or holds a NUL character.
pub fn split(path: &str) -> Option<(&str, &str)> {
    if path.contains('\0') {
        return None;
    }
    let slash = path.rfind('/')?;
    let parent = if slash == 0 { "/" } else { &path[..slash] };
    Some((parent, &path[slash + 1..]))
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Nodes the server owns: they can be neither deleted nor replaced.
pub fn is_special(path: &str) -> bool {
    matches!(
        path,
        "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_paths_pass() {
        for path in ["/", "/a", "/a/b", "/a.b", "/a/..b", "/a/b.", "/ü/日本"] {
            assert_eq!(validate(path), Ok(()), "{path}");
        }
    }

    #[test]
    fn invalid_paths_are_bad_arguments() {
        for path in [
            "",
            "a",
            "/a/",
            "/a//b",
            "/a/./b",
            "/a/../b",
            "/.",
            "/..",
            "/a\0b",
            "/a\u{1}",
            "/\u{e000}",
            "/\u{fffd}",
        ] {
            assert_eq!(validate(path), Err(ErrorCode::BadArguments), "{path:?}");
        }
    }

    /// ZooKeeper's character-by-character rule (PathUtils.validatePath), as
    /// the reference for the component-wise implementation.
    fn reference(path: &str) -> bool {
        if !path.starts_with('/') {
            return false;
        }
        if path.len() == 1 {
            return true;
        }
        if path.ends_with('/') {
            return false;
        }
        let chars: Vec<char> = path.chars().collect();
        !chars.iter().enumerate().skip(1).any(|(i, &c)| {
            let previous = chars[i - 1];
            let next_is_end = i + 1 == chars.len() || chars[i + 1] == '/';
            c == '\0'
                || (c == '/' && previous == '/')
                || (c == '.' && previous == '.' && i >= 2 && chars[i - 2] == '/' && next_is_end)
                || (c == '.' && previous == '/' && next_is_end)
                || ('\u{1}'..='\u{1f}').contains(&c)
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || ('\u{e000}'..='\u{f8ff}').contains(&c)
                || ('\u{fff0}'..='\u{ffff}').contains(&c)
        })
    }

    proptest::proptest! {
        #[test]
        fn validate_agrees_with_zookeepers_rule(path in "[/a.\\x00\\x01\\x7fé\u{e000}\u{fff5}]{0,8}") {
            proptest::prop_assert_eq!(validate(&path).is_ok(), reference(&path), "{:?}", path);
        }
    }

    #[test]
    fn split_finds_parent_and_name() {
        assert_eq!(split("/a"), Some(("/", "a")));
        assert_eq!(split("/a/b"), Some(("/a", "b")));
        assert_eq!(split("/a/"), Some(("/a", "")));
        assert_eq!(split("a"), None);
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }
}
