//! JAAS login configuration files (`-Djava.security.auth.login.config=...`),
//! read as the JDK's `ConfigFile` reads them, for ZooKeeper's SASL server:
//!
//! ```text
//! Server {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!         user_super="adminsecret"
//!         user_bob="bobsecret";
//! };
//! ```
//!
//! A file is a list of sections `Name { entry; ... };`; an entry is a login
//! module class, a control flag (required, requisite, sufficient,
//! optional) and `key=value` options, the value a word or a double-quoted
//! string (`\` escapes the next character). `//` and `/* */` comments.
//! ZooKeeper's `SaslServerCallbackHandler` takes every option named
//! `user_<name>` of the section `zookeeper.sasl.serverconfig` (default
//! `Server`) as a DIGEST-MD5 user and its password.

use std::collections::BTreeMap;

use thiserror::Error;

/// A section's entries, in file order.
pub type Sections = BTreeMap<String, Vec<LoginEntry>>;

/// One login module line of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginEntry {
    pub login_module: String,
    pub flag: String,
    pub options: Vec<(String, String)>,
}

/// Why a JAAS file does not parse; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {reason}")]
pub struct JaasError {
    pub line: usize,
    pub reason: String,
}

/// The login module of Kerberos (GSSAPI), which ferrokeeper does not offer.
pub const KERBEROS_LOGIN_MODULE: &str = "com.sun.security.auth.module.Krb5LoginModule";

/// The prefix of the options that name DIGEST-MD5 users.
const USER_PREFIX: &str = "user_";

/// Parses a whole JAAS file.
pub fn parse(text: &str) -> Result<Sections, JaasError> {
    let tokens = tokenize(text)?;
    let mut tokens = tokens.iter().peekable();
    let mut sections = Sections::new();
    let end_line = text.lines().count().max(1);
    let fail = |line: usize, reason: String| Err(JaasError { line, reason });
    while let Some(name) = tokens.next() {
        let Token::Word(section) = &name.token else {
            return fail(
                name.line,
                format!("expected a section name, found {}", name.token),
            );
        };
        expect(
            &mut tokens,
            Token::Open,
            &format!("'{{' after the section name {section}"),
            end_line,
        )?;
        let mut entries = Vec::new();
        loop {
            let Some(next) = tokens.next() else {
                return fail(
                    end_line,
                    format!("section {section} is not closed with '}};'"),
                );
            };
            let module = match &next.token {
                Token::Close => break,
                Token::Word(module) => module.clone(),
                other => {
                    return fail(
                        next.line,
                        format!(
                            "expected a login module class in section {section}, found {other}"
                        ),
                    )
                }
            };
            let flag = match tokens.next() {
                Some(Located {
                    token: Token::Word(flag),
                    ..
                }) if ["required", "requisite", "sufficient", "optional"]
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(flag)) =>
                {
                    flag.to_ascii_lowercase()
                }
                Some(other) => {
                    return fail(other.line, format!("invalid control flag {} for {module} (expected required, requisite, sufficient or optional)", other.token))
                }
                None => return fail(end_line, format!("{module} has no control flag")),
            };
            let mut options = Vec::new();
            loop {
                let Some(next) = tokens.next() else {
                    return fail(
                        end_line,
                        format!("the entry {module} does not end with ';'"),
                    );
                };
                let key = match &next.token {
                    Token::Semicolon => break,
                    Token::Word(key) => key.clone(),
                    other => {
                        return fail(
                            next.line,
                            format!(
                                "expected an option or ';' in the entry {module}, found {other}"
                            ),
                        )
                    }
                };
                expect(
                    &mut tokens,
                    Token::Equals,
                    &format!("'=' after the option {key}"),
                    end_line,
                )?;
                let value = match tokens.next() {
                    Some(Located {
                        token: Token::Word(value) | Token::Quoted(value),
                        ..
                    }) => value.clone(),
                    Some(other) => {
                        return fail(
                            other.line,
                            format!(
                                "expected a value for the option {key}, found {}",
                                other.token
                            ),
                        )
                    }
                    None => return fail(end_line, format!("the option {key} has no value")),
                };
                options.push((key, value));
            }
            entries.push(LoginEntry {
                login_module: module,
                flag,
                options,
            });
        }
        expect(
            &mut tokens,
            Token::Semicolon,
            &format!("';' after the section {section}'s '}}'"),
            end_line,
        )?;
        if sections.insert(section.clone(), entries).is_some() {
            return fail(name.line, format!("the section {section} appears twice"));
        }
    }
    Ok(sections)
}

/// The DIGEST-MD5 users of a section: every `user_<name>` option of every
/// entry (a later one wins, as in ZooKeeper's map).
pub fn digest_users(entries: &[LoginEntry]) -> BTreeMap<String, String> {
    entries
        .iter()
        .flat_map(|entry| &entry.options)
        .filter_map(|(key, value)| {
            key.strip_prefix(USER_PREFIX)
                .map(|user| (user.to_string(), value.clone()))
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semicolon,
    Equals,
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Word(word) => write!(f, "{word:?}"),
            Token::Quoted(_) => write!(f, "a quoted string"),
            Token::Open => write!(f, "'{{'"),
            Token::Close => write!(f, "'}}'"),
            Token::Semicolon => write!(f, "';'"),
            Token::Equals => write!(f, "'='"),
        }
    }
}

#[derive(Debug)]
struct Located {
    token: Token,
    line: usize,
}

fn expect<'a>(
    tokens: &mut impl Iterator<Item = &'a Located>,
    wanted: Token,
    what: &str,
    end_line: usize,
) -> Result<(), JaasError> {
    match tokens.next() {
        Some(found) if found.token == wanted => Ok(()),
        Some(found) => Err(JaasError {
            line: found.line,
            reason: format!("expected {what}, found {}", found.token),
        }),
        None => Err(JaasError {
            line: end_line,
            reason: format!("expected {what}, found the end of the file"),
        }),
    }
}

fn tokenize(text: &str) -> Result<Vec<Located>, JaasError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        let at = line;
        let token = match c {
            '\n' => {
                line += 1;
                continue;
            }
            c if c.is_whitespace() => continue,
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
                continue;
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                loop {
                    match chars.next() {
                        None => {
                            return Err(JaasError {
                                line: at,
                                reason: "a /* comment is not closed".into(),
                            })
                        }
                        Some('/') if previous == '*' => break,
                        Some(c) => {
                            line += usize::from(c == '\n');
                            previous = c;
                        }
                    }
                }
                continue;
            }
            '{' => Token::Open,
            '}' => Token::Close,
            ';' => Token::Semicolon,
            '=' => Token::Equals,
            '"' => {
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(JaasError {
                                line: at,
                                reason: "a quoted string is not closed".into(),
                            })
                        }
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(escaped) => {
                                line += usize::from(escaped == '\n');
                                value.push(escaped);
                            }
                            None => continue,
                        },
                        Some(c) => {
                            line += usize::from(c == '\n');
                            value.push(c);
                        }
                    }
                }
                Token::Quoted(value)
            }
            c => {
                let mut word = String::from(c);
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || "{};=\"".contains(next) {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                Token::Word(word)
            }
        };
        tokens.push(Located { token, line: at });
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kazoos_digest_section_parses() {
        // The file kazoo's test harness writes for ZOOKEEPER_JAAS_AUTH=digest.
        let text = "\nServer {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n    user_super=\"super_secret\"\n    user_jaasuser=\"jaas_password\";\n};";
        let sections = parse(text).unwrap();
        let entries = &sections["Server"];
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries[0].login_module,
            "org.apache.zookeeper.server.auth.DigestLoginModule"
        );
        assert_eq!(entries[0].flag, "required");
        let users = digest_users(entries);
        assert_eq!(users["super"], "super_secret");
        assert_eq!(users["jaasuser"], "jaas_password");
        assert_eq!(users.len(), 2);
    }

    #[test]
    fn several_sections_comments_escapes_and_words() {
        let text = r#"
// the client side
Client { org.apache.zookeeper.server.auth.DigestLoginModule REQUIRED
    username="bob" password="bob\"s"; };
/* the server
   side */
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule optional
        user_a=plain debug=true;
    other.Module sufficient user_b="two words";
};"#;
        let sections = parse(text).unwrap();
        assert_eq!(sections.len(), 2);
        assert_eq!(sections["Client"][0].options[1].1, "bob\"s");
        assert_eq!(sections["Client"][0].flag, "required");
        let users = digest_users(&sections["Server"]);
        assert_eq!(users["a"], "plain");
        assert_eq!(users["b"], "two words");
        assert_eq!(
            parse("").unwrap(),
            Sections::new(),
            "an empty file has no sections"
        );
        assert_eq!(parse("// nothing\n").unwrap(), Sections::new());
    }

    #[test]
    fn bad_files_say_where_and_why() {
        let cases = [
            (
                "Server {\n m required user_a=\"x\";\n}",
                3,
                "';' after the section Server's '}'",
            ),
            ("Server {\n m bogus;\n};", 2, "invalid control flag"),
            (
                "Server {\n m required user_a;\n};",
                2,
                "'=' after the option user_a",
            ),
            (
                "Server {\n m required user_a=\"x;\n};",
                2,
                "quoted string is not closed",
            ),
            (
                "Server {\n m required user_a=x\n",
                2,
                "does not end with ';'",
            ),
            ("Server m required;", 1, "'{' after the section name Server"),
            ("{ };", 1, "expected a section name"),
            ("S { m required; };\nS { m required; };", 2, "appears twice"),
            ("/* open", 1, "comment is not closed"),
        ];
        for (text, line, reason) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(err.line, line, "{text}: {err}");
            assert!(err.reason.contains(reason), "{text}: {err}");
        }
    }
}
