//! Access control: the world, auth, digest, ip and super schemes, as
//! ZooKeeper's authentication providers define them.
//!
//! A caller carries the identities it has proven: `ip:<address>` from its
//! connection, `digest:<user>:<hash>` for each successful digest auth, and
//! `super:` when its digest matched the configured super digest.
//! [`authenticate`] turns an auth packet into those identities.

use base64::Engine;
use proto::{perms, Acl, ErrorCode, Id, Nulls};
use sha1::{Digest, Sha1};
use thiserror::Error;

/// Why an auth packet was refused. ZooKeeper answers every one of these
/// with AUTHFAILED and closes the connection (`ZooKeeperServer.processPacket`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// No authentication provider has this scheme (world, auth, sasl, x509
    /// without configuration, or a null or empty scheme).
    #[error("no authentication provider for scheme {scheme:?}")]
    UnknownScheme { scheme: String },
    /// A digest packet whose credential was jute's null buffer:
    /// `new String(null)` throws inside the provider.
    #[error("digest auth packet without a credential (null buffer)")]
    NullCredential,
}

impl AuthError {
    /// The reply's error code: always AUTHFAILED.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::AuthFailed
    }
}

/// The identities an auth packet proves, in the order ZooKeeper adds them to
/// the connection (the caller skips any it already holds, as
/// `ServerCnxn.addAuthInfo` does).
///
/// - `digest`: any credential is accepted, colon or not, empty or not
///   (`DigestAuthenticationProvider.handleAuthentication`): the id is
///   `<text before the first colon>:base64(sha1(credential))`, which simply
///   matches no ACL unless one names exactly that id. Bytes that are not
///   UTF-8 are read the way Java's `new String(bytes)` reads them, each bad
///   sequence becoming U+FFFD. When the id equals `super_digest`,
///   `super:` comes first.
/// - `ip`: the credential is ignored; the id is the peer's address as text
///   (`IPAuthenticationProvider`).
/// - anything else has no provider: [`AuthError::UnknownScheme`].
///
/// `credential` is `None` when the packet carried jute's null buffer.
pub fn authenticate(
    scheme: &str,
    credential: Option<&[u8]>,
    peer_ip: &str,
    super_digest: Option<&str>,
) -> Result<Vec<Id>, AuthError> {
    match scheme {
        "digest" => {
            let credential = credential.ok_or(AuthError::NullCredential)?;
            let id = digest_id(&String::from_utf8_lossy(credential));
            let mut proven = Vec::with_capacity(2);
            if super_digest == Some(id.as_str()) {
                proven.push(Id::new("super", ""));
            }
            proven.push(Id::new("digest", id));
            Ok(proven)
        }
        "ip" => Ok(vec![Id::new("ip", peer_ip)]),
        _ => Err(AuthError::UnknownScheme {
            scheme: scheme.to_string(),
        }),
    }
}

/// `user:base64(sha1("user:password"))`, the digest scheme's stored form.
/// `user` is everything before the first colon (all of it when there is none).
pub fn digest_id(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or_default();
    let hash = Sha1::digest(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Whether `auth` grants any of the `perm` bits on a node with `acl`
/// (ZooKeeperServer.checkACL). An ACL entry on a scheme without a provider
/// (`sasl` or `x509` when the server has none) matches nobody. Fails with NoAuth.
pub fn check(acl: &[Acl], perm: i32, auth: &[Id], providers: Providers) -> Result<(), ErrorCode> {
    if auth.iter().any(|id| id.scheme == "super") || acl.is_empty() {
        return Ok(());
    }
    let granted = acl
        .iter()
        .filter(|entry| entry.perms & perm != 0)
        .any(|entry| {
            let id = &entry.id;
            if id.scheme == "world" && id.id == "anyone" {
                return true;
            }
            auth.iter()
                .filter(|proven| proven.scheme == id.scheme)
                .any(|proven| matches(&id.scheme, &proven.id, &id.id, providers))
        });
    if granted {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

/// Whether a proven identity satisfies an ACL id of the same scheme.
fn matches(scheme: &str, proven: &str, acl_id: &str, providers: Providers) -> bool {
    match scheme {
        "ip" => ip_matches(proven, acl_id),
        "digest" => proven == acl_id,
        // X509AuthenticationProvider.matches: the subject DN, as the TLS
        // layer proved it (the super user is proven as `super` there).
        // Kept without the provider check it always had: a connection only
        // holds an x509 id when the server authenticates certificates.
        "x509" => proven == acl_id,
        // SASLAuthenticationProvider.matches: the exact id, and a SASL user
        // named "super" matches every sasl ACL.
        "sasl" => providers.sasl && (proven == "super" || proven == acl_id),
        _ => false,
    }
}

/// Checks an ACL list for a create or setACL and expands the `auth` scheme
/// into the caller's authenticated identities (PrepRequestProcessor.fixupACL).
/// Fails with InvalidAcl.
pub fn fixup(acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    fixup_with_nulls(acl, auth, &Nulls::NONE, 0, Providers::default())
}

/// The authentication providers a server has beyond `ip` and `digest`
/// (ZooKeeper's ProviderRegistry): an ACL on a scheme without one is
/// INVALIDACL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Providers {
    /// `x509`: the server authenticates TLS client certificates.
    pub x509: bool,
    /// `sasl`: `authProvider.N=org.apache.zookeeper.server.auth.SASLAuthenticationProvider`
    /// is configured.
    pub sasl: bool,
}

/// [`fixup`] for an ACL list whose schemes and ids may have been jute nulls
/// (listed in `nulls` for op `op`; they read as ""). ZooKeeper checks no
/// field for null, so each null fails where Java first touches it:
///
/// - removing duplicates calls the later entry's `equals` on each kept one:
///   with equal perms, a null scheme throws, and with equal schemes too, a
///   null id throws: MARSHALLINGERROR;
/// - a null scheme is INVALIDACL;
/// - a null id is never read for `auth`; `world` compares it with "anyone"
///   and `ip` and `digest` validate it, which throws: MARSHALLINGERROR;
///   other schemes have no provider: INVALIDACL.
pub fn fixup_with_nulls(
    acl: &[Acl],
    auth: &[Id],
    nulls: &Nulls,
    op: usize,
    providers: Providers,
) -> Result<Vec<Acl>, ErrorCode> {
    let scheme_null = |entry: usize| !nulls.is_empty() && nulls.acl_scheme(op, entry);
    let id_null = |entry: usize| !nulls.is_empty() && nulls.acl_id(op, entry);
    // ACL.equals as jute generates it: perms, then scheme.equals, then id.equals,
    // each called on the later entry's field.
    let java_equals = |later: usize, kept: usize| -> Result<bool, ErrorCode> {
        let (a, b) = (&acl[later], &acl[kept]);
        if a.perms != b.perms {
            return Ok(false);
        }
        if scheme_null(later) {
            return Err(ErrorCode::MarshallingError);
        }
        if scheme_null(kept) || a.id.scheme != b.id.scheme {
            return Ok(false);
        }
        if id_null(later) {
            return Err(ErrorCode::MarshallingError);
        }
        Ok(!id_null(kept) && a.id.id == b.id.id)
    };
    let mut unique: Vec<usize> = Vec::with_capacity(acl.len());
    for later in 0..acl.len() {
        let mut duplicate = false;
        for &kept in &unique {
            if java_equals(later, kept)? {
                duplicate = true;
                break;
            }
        }
        if !duplicate {
            unique.push(later);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut fixed = Vec::with_capacity(unique.len());
    for index in unique {
        let entry = &acl[index];
        let id = &entry.id;
        if scheme_null(index) {
            return Err(ErrorCode::InvalidAcl);
        }
        if id.scheme == "world" && id_null(index) {
            return Err(ErrorCode::MarshallingError);
        }
        if id.scheme == "world" && id.id == "anyone" {
            fixed.push(entry.clone());
        } else if id.scheme == "auth" {
            // Only identities whose provider counts as "authenticated":
            // digest, x509 and sasl (ZooKeeper's isAuthenticated()), not ip;
            // sasl only when the server has the provider.
            let mut any = false;
            for proven in auth.iter().filter(|p| match p.scheme.as_str() {
                "digest" | "x509" => true,
                "sasl" => providers.sasl,
                _ => false,
            }) {
                any = true;
                fixed.push(Acl {
                    perms: entry.perms,
                    id: proven.clone(),
                });
            }
            if !any {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if !has_provider(&id.scheme, providers) {
            return Err(ErrorCode::InvalidAcl);
        } else if id_null(index) {
            return Err(ErrorCode::MarshallingError);
        } else if is_valid_id(&id.scheme, &id.id) {
            fixed.push(entry.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(fixed)
}

/// Schemes with a server authentication provider (ProviderRegistry): the
/// ones whose ACL ids are validated.
fn has_provider(scheme: &str, providers: Providers) -> bool {
    match scheme {
        "digest" | "ip" => true,
        "x509" => providers.x509,
        "sasl" => providers.sasl,
        _ => false,
    }
}

fn is_valid_id(scheme: &str, id: &str) -> bool {
    match scheme {
        "digest" => java_split_count(id, ':') == 2,
        "ip" => parse_ip_mask(id).is_some(),
        // X509AuthenticationProvider.isValid: an X.500 name, `type=value` RDNs.
        "x509" => is_x500_name(id),
        // SASLAuthenticationProvider.isValid: what KerberosName accepts.
        "sasl" => is_kerberos_name(id),
        _ => false,
    }
}

/// Whether ZooKeeper's `KerberosName` constructor accepts `name`: either
/// `service[/host]@realm` (no further `/` or `@` in any part), or a name
/// with no `@` at all, which is taken whole as the service name.
pub fn is_kerberos_name(name: &str) -> bool {
    let Some((principal, realm)) = name.split_once('@') else {
        return true;
    };
    let no_separators = |part: &str| !part.contains(['/', '@']);
    let service_and_host_ok = match principal.split_once('/') {
        Some((service, host)) => no_separators(service) && no_separators(host),
        None => true,
    };
    service_and_host_ok && no_separators(realm)
}

/// How many parts Java's `String.split` returns: trailing empty parts are
/// dropped, and a string without the separator is one part even when empty.
/// `DigestAuthenticationProvider.isValid` counts parts this way, so
/// `user:hash:` is a valid digest id and `user:` is not.
fn java_split_count(text: &str, separator: char) -> usize {
    if !text.contains(separator) {
        return 1;
    }
    let parts: Vec<&str> = text.split(separator).collect();
    parts.len() - parts.iter().rev().take_while(|p| p.is_empty()).count()
}

/// Whether `id` reads as an RFC 2253 name: `type=value` RDNs separated by
/// unescaped commas (X509AuthenticationProvider.isValid's X500Principal).
fn is_x500_name(id: &str) -> bool {
    let mut rdns = vec![String::new()];
    let mut escaped = false;
    for c in id.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                rdns.push(String::new());
                continue;
            }
            _ => {}
        }
        rdns.last_mut().expect("one at least").push(c);
    }
    rdns.iter().all(|rdn| {
        rdn.split_once('=')
            .is_some_and(|(key, _)| !key.trim().is_empty())
    })
}

/// The ACL a getACL caller may see: digest hashes are hidden (`user:x`)
/// unless the caller has ADMIN (ZOOKEEPER-1392 / CVE-2019-0201).
pub fn visible_to(acl: &[Acl], auth: &[Id], providers: Providers) -> Vec<Acl> {
    if check(acl, perms::ADMIN, auth, providers).is_ok() {
        return acl.to_vec();
    }
    acl.iter()
        .map(|entry| {
            if entry.id.scheme != "digest" {
                return entry.clone();
            }
            let user = entry.id.id.split(':').next().unwrap_or_default();
            Acl {
                perms: entry.perms,
                id: Id::new("digest", format!("{user}:x")),
            }
        })
        .collect()
}

/// `a.b.c.d` or `a.b.c.d/bits` → (address bytes, prefix bits). IPv6 likewise.
fn parse_ip_mask(id: &str) -> Option<(Vec<u8>, u32)> {
    let (address, bits) = match id.split_once('/') {
        Some((address, bits)) => (address, Some(bits.parse::<u32>().ok()?)),
        None => (id, None),
    };
    let bytes = match address.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
        std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    let full = bytes.len() as u32 * 8;
    let bits = bits.unwrap_or(full);
    (bits <= full).then_some((bytes, bits))
}

fn ip_matches(proven: &str, acl_id: &str) -> bool {
    let (Some((address, _)), Some((network, bits))) =
        (parse_ip_mask(proven), parse_ip_mask(acl_id))
    else {
        return false;
    };
    if address.len() != network.len() {
        return false;
    }
    (0..bits as usize).all(|bit| {
        let mask = 0x80u8 >> (bit % 8);
        address[bit / 8] & mask == network[bit / 8] & mask
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id::new(scheme, id),
        }
    }

    #[test]
    fn digest_id_matches_zookeeper() {
        // DigestAuthenticationProvider.generateDigest("super:test"), from ZooKeeper's docs.
        assert_eq!(
            digest_id("super:test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
    }

    #[test]
    fn world_digest_ip_and_super_are_checked() {
        let alice = Id::new("digest", digest_id("alice:pw"));
        let list = vec![
            acl(perms::READ, "digest", &alice.id),
            acl(perms::WRITE, "ip", "10.0.0.0/8"),
        ];
        assert_eq!(
            check(
                &list,
                perms::READ,
                std::slice::from_ref(&alice),
                Providers::default()
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &list,
                perms::WRITE,
                std::slice::from_ref(&alice),
                Providers::default()
            ),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(
            check(
                &list,
                perms::WRITE,
                &[Id::new("ip", "10.1.2.3")],
                Providers::default()
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &list,
                perms::WRITE,
                &[Id::new("ip", "11.1.2.3")],
                Providers::default()
            ),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(
            check(
                &list,
                perms::ADMIN,
                &[Id::new("super", "")],
                Providers::default()
            ),
            Ok(())
        );
        assert_eq!(
            check(&Acl::open_unsafe(), perms::ADMIN, &[], Providers::default()),
            Ok(())
        );
    }

    /// ACLs on the x509 scheme match the certificate subject exactly, and
    /// the auth scheme expands to it (X509AuthenticationProvider).
    #[test]
    fn x509_ids_match_exactly_and_expand_from_auth() {
        let dn = "CN=client,OU=test,O=kazoo";
        let list = vec![acl(perms::READ, "x509", dn)];
        assert_eq!(
            check(
                &list,
                perms::READ,
                &[Id::new("x509", dn)],
                Providers::default()
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &list,
                perms::READ,
                &[Id::new("x509", "CN=other")],
                Providers::default()
            ),
            Err(ErrorCode::NoAuth)
        );
        let x509 = Providers {
            x509: true,
            ..Providers::default()
        };
        let with_x509 =
            |list: &[Acl], auth: &[Id]| fixup_with_nulls(list, auth, &Nulls::NONE, 0, x509);
        let fixed = with_x509(&[acl(perms::ALL, "auth", "")], &[Id::new("x509", dn)]).unwrap();
        assert_eq!(fixed, vec![acl(perms::ALL, "x509", dn)]);
        assert_eq!(
            with_x509(&[acl(1, "x509", "not a name")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        assert!(with_x509(&[acl(1, "x509", "CN=a\\,b,O=c")], &[]).is_ok());
        assert_eq!(
            fixup(&[acl(1, "x509", "CN=a")], &[]),
            Err(ErrorCode::InvalidAcl),
            "no x509 provider without TLS client authentication"
        );
    }

    #[test]
    fn sasl_ids_match_exactly_or_as_super_and_only_with_the_provider() {
        // SASLAuthenticationProvider: matches(id, aclExpr) is id == "super"
        // or id == aclExpr; isValid is KerberosName's syntax; isAuthenticated.
        let sasl = Providers {
            sasl: true,
            ..Providers::default()
        };
        let list = vec![acl(perms::READ, "sasl", "jaasuser")];
        let as_user = |name: &str| vec![Id::new("sasl", name)];
        assert_eq!(
            check(&list, perms::READ, &as_user("jaasuser"), sasl),
            Ok(())
        );
        assert_eq!(check(&list, perms::READ, &as_user("super"), sasl), Ok(()));
        assert_eq!(
            check(&list, perms::READ, &as_user("jaasuser2"), sasl),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(
            check(
                &list,
                perms::READ,
                &as_user("jaasuser"),
                Providers::default()
            ),
            Err(ErrorCode::NoAuth),
            "without the provider a sasl ACL matches nobody"
        );
        let with_sasl =
            |list: &[Acl], auth: &[Id]| fixup_with_nulls(list, auth, &Nulls::NONE, 0, sasl);
        let fixed = with_sasl(&[acl(perms::ALL, "auth", "")], &as_user("jaasuser")).unwrap();
        assert_eq!(fixed, vec![acl(perms::ALL, "sasl", "jaasuser")]);
        assert_eq!(
            fixup(&[acl(perms::ALL, "auth", "")], &as_user("jaasuser")),
            Err(ErrorCode::InvalidAcl),
            "a sasl id does not count as authenticated without the provider"
        );
        for valid in ["jaasuser", "a/b", "zk/host@REALM", "user@REALM", "@"] {
            assert!(with_sasl(&[acl(1, "sasl", valid)], &[]).is_ok(), "{valid}");
        }
        for invalid in ["a@b@c", "a/b/c@R", "a@b/c"] {
            assert_eq!(
                with_sasl(&[acl(1, "sasl", invalid)], &[]),
                Err(ErrorCode::InvalidAcl),
                "{invalid}"
            );
        }
        assert_eq!(
            fixup(&[acl(1, "sasl", "jaasuser")], &[]),
            Err(ErrorCode::InvalidAcl),
            "no sasl provider without authProvider"
        );
    }

    #[test]
    fn auth_scheme_expands_to_digest_identities_only() {
        let alice = Id::new("digest", digest_id("alice:pw"));
        let ip = Id::new("ip", "127.0.0.1");
        let fixed = fixup(&[acl(perms::ALL, "auth", "")], &[ip.clone(), alice.clone()]).unwrap();
        assert_eq!(
            fixed,
            vec![Acl {
                perms: perms::ALL,
                id: alice
            }]
        );
        assert_eq!(
            fixup(&[acl(perms::ALL, "auth", "")], &[ip]),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(fixup(&[], &[]), Err(ErrorCode::InvalidAcl));
        assert_eq!(
            fixup(&[acl(1, "digest", "nocolon")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup(&[acl(1, "ip", "300.1.1.1")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup(&[acl(1, "madeup", "x")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
    }

    #[test]
    fn digest_auth_accepts_any_credential() {
        // Proves a digest credential without a colon, empty, or not UTF-8 is
        // accepted with the id ZooKeeper 3.8 derives (measured with whoAmI),
        // and that a null credential or an unknown scheme is refused.
        let peer = "10.0.0.7";
        let id = |credential: &[u8]| authenticate("digest", Some(credential), peer, None);
        let sha =
            |text: &[u8]| base64::engine::general_purpose::STANDARD.encode(Sha1::digest(text));
        assert_eq!(
            id(b"nocolon"),
            Ok(vec![Id::new(
                "digest",
                format!("nocolon:{}", sha(b"nocolon"))
            )])
        );
        assert_eq!(
            id(b""),
            Ok(vec![Id::new("digest", format!(":{}", sha(b"")))])
        );
        assert_eq!(
            id(b"u\xff:p"),
            Ok(vec![Id::new(
                "digest",
                format!("u\u{fffd}:{}", sha("u\u{fffd}:p".as_bytes()))
            )])
        );
        assert_eq!(
            authenticate("digest", None, peer, None),
            Err(AuthError::NullCredential)
        );
        for scheme in ["", "world", "auth", "super", "sasl", "x509"] {
            let refused = authenticate(scheme, Some(b"a:b"), peer, None).unwrap_err();
            assert_eq!(refused.code(), ErrorCode::AuthFailed, "{scheme}");
        }
    }

    #[test]
    fn digest_auth_adds_super_first_and_ip_auth_names_the_peer() {
        // Proves the super digest adds `super:` before the digest id, and that
        // the ip scheme ignores its credential (even a null one).
        let peer = "10.0.0.7";
        let super_id = digest_id("super:test");
        assert_eq!(
            authenticate("digest", Some(b"super:test"), peer, Some(&super_id)),
            Ok(vec![Id::new("super", ""), Id::new("digest", super_id)])
        );
        assert_eq!(
            authenticate("ip", None, peer, None),
            Ok(vec![Id::new("ip", "10.0.0.7")])
        );
    }

    #[test]
    fn digest_ids_are_split_as_java_splits_them() {
        // Proves DigestAuthenticationProvider.isValid's `split(":").length == 2`:
        // Java drops trailing empty parts.
        for (id, valid) in [
            ("user:hash", true),
            ("user:hash:", true),
            (":hash", true),
            ("user:", false),
            ("user::", false),
            (":", false),
            ("", false),
            ("nocolon", false),
            ("a:b:c", false),
        ] {
            assert_eq!(is_valid_id("digest", id), valid, "{id:?}");
        }
    }

    #[test]
    fn null_acl_fields_fail_where_java_touches_them() {
        // Proves fixupACL's answers for a null scheme or id, per scheme and
        // per position, as measured against ZooKeeper 3.8.0.
        use proto::NullAt;
        let alice = Id::new("digest", digest_id("alice:pw"));
        let nulls = |at: &[NullAt]| at.iter().copied().collect::<Nulls>();
        let one_null_id = nulls(&[NullAt::AclId { op: 0, entry: 0 }]);
        let one_null_scheme = nulls(&[NullAt::AclScheme { op: 0, entry: 0 }]);
        let fix = |scheme: &str, nulls: &Nulls, auth: &[Id]| {
            fixup_with_nulls(
                &[acl(perms::ALL, scheme, "")],
                auth,
                nulls,
                0,
                Providers::default(),
            )
        };
        for scheme in ["world", "digest", "ip"] {
            assert_eq!(
                fix(scheme, &one_null_id, &[]),
                Err(ErrorCode::MarshallingError),
                "{scheme}"
            );
        }
        for scheme in ["super", "madeup", "x509", "sasl"] {
            assert_eq!(
                fix(scheme, &one_null_id, &[]),
                Err(ErrorCode::InvalidAcl),
                "{scheme}"
            );
        }
        assert_eq!(fix("auth", &one_null_id, &[]), Err(ErrorCode::InvalidAcl));
        assert_eq!(
            fix("auth", &one_null_id, std::slice::from_ref(&alice)),
            Ok(vec![Acl {
                perms: perms::ALL,
                id: alice.clone()
            }]),
            "kazoo's CREATOR_ALL_ACL"
        );
        assert_eq!(fix("", &one_null_scheme, &[]), Err(ErrorCode::InvalidAcl));
        // The second entry's null fields meet Java's equals only when the perms
        // (and, for the id, the schemes) match an entry kept before it.
        let second = |at: NullAt, first: Acl, second: Acl| {
            let nulls = nulls(&[at]);
            fixup_with_nulls(
                &[first, second],
                std::slice::from_ref(&alice),
                &nulls,
                0,
                Providers::default(),
            )
        };
        let null_scheme = NullAt::AclScheme { op: 0, entry: 1 };
        let null_id = NullAt::AclId { op: 0, entry: 1 };
        assert_eq!(
            second(null_scheme, acl(31, "world", "anyone"), acl(31, "", "x")),
            Err(ErrorCode::MarshallingError)
        );
        assert_eq!(
            second(null_scheme, acl(31, "world", "anyone"), acl(1, "", "x")),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            second(null_id, acl(31, "auth", ""), acl(31, "auth", "")),
            Err(ErrorCode::MarshallingError)
        );
        assert_eq!(
            second(null_id, acl(31, "madeup", "x"), acl(1, "world", "")),
            Err(ErrorCode::InvalidAcl),
            "the first entry fails before the null is read"
        );
    }

    #[test]
    fn get_acl_hides_digests_without_admin() {
        let list = vec![
            acl(perms::READ, "digest", "alice:hash"),
            acl(perms::READ, "world", "anyone"),
        ];
        let seen = visible_to(&list, &[], Providers::default());
        assert_eq!(seen[0].id.id, "alice:x");
        assert_eq!(seen[1], list[1]);
        assert_eq!(
            visible_to(&list, &[Id::new("super", "")], Providers::default()),
            list
        );
    }
}
