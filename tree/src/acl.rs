//! Access control: the world, auth, digest, ip and super schemes, as
//! ZooKeeper's authentication providers define them.
//!
//! A caller carries the identities it has proven: `ip:<address>` from its
//! connection, `digest:<user>:<hash>` for each successful digest auth, and
//! `super:` when its digest matched the configured super digest.

use base64::Engine;
use proto::{perms, Acl, ErrorCode, Id};
use sha1::{Digest, Sha1};

/// `user:base64(sha1("user:password"))`, the digest scheme's stored form.
pub fn digest_id(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or_default();
    let hash = Sha1::digest(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Whether `auth` grants any of the `perm` bits on a node with `acl`
/// (ZooKeeperServer.checkACL). Fails with NoAuth.
pub fn check(acl: &[Acl], perm: i32, auth: &[Id]) -> Result<(), ErrorCode> {
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
                .any(|proven| matches(&id.scheme, &proven.id, &id.id))
        });
    if granted {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

/// Whether a proven identity satisfies an ACL id of the same scheme.
fn matches(scheme: &str, proven: &str, acl_id: &str) -> bool {
    match scheme {
        "ip" => ip_matches(proven, acl_id),
        // X509AuthenticationProvider.matches: the subject DN, as the TLS
        // layer proved it (the super user is proven as `super` there).
        "digest" | "x509" => proven == acl_id,
        _ => false,
    }
}

/// Checks an ACL list for a create or setACL and expands the `auth` scheme
/// into the caller's authenticated identities (PrepRequestProcessor.fixupACL).
/// Fails with InvalidAcl.
pub fn fixup(acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for entry in acl {
        if !unique.contains(&entry) {
            unique.push(entry);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut fixed = Vec::with_capacity(unique.len());
    for entry in unique {
        let id = &entry.id;
        if id.scheme == "world" && id.id == "anyone" {
            fixed.push(entry.clone());
        } else if id.scheme == "auth" {
            // Only identities whose provider counts as "authenticated":
            // digest and x509 (ZooKeeper's isAuthenticated()), not ip.
            let mut any = false;
            for proven in auth
                .iter()
                .filter(|p| p.scheme == "digest" || p.scheme == "x509")
            {
                any = true;
                fixed.push(Acl {
                    perms: entry.perms,
                    id: proven.clone(),
                });
            }
            if !any {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if is_valid_id(&id.scheme, &id.id) {
            fixed.push(entry.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(fixed)
}

fn is_valid_id(scheme: &str, id: &str) -> bool {
    match scheme {
        "digest" => id.split(':').count() == 2,
        "ip" => parse_ip_mask(id).is_some(),
        // X509AuthenticationProvider.isValid: an X.500 name, `type=value` RDNs.
        "x509" => is_x500_name(id),
        _ => false,
    }
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
pub fn visible_to(acl: &[Acl], auth: &[Id]) -> Vec<Acl> {
    if check(acl, perms::ADMIN, auth).is_ok() {
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
            check(&list, perms::READ, std::slice::from_ref(&alice)),
            Ok(())
        );
        assert_eq!(
            check(&list, perms::WRITE, std::slice::from_ref(&alice)),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(
            check(&list, perms::WRITE, &[Id::new("ip", "10.1.2.3")]),
            Ok(())
        );
        assert_eq!(
            check(&list, perms::WRITE, &[Id::new("ip", "11.1.2.3")]),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(check(&list, perms::ADMIN, &[Id::new("super", "")]), Ok(()));
        assert_eq!(check(&Acl::open_unsafe(), perms::ADMIN, &[]), Ok(()));
    }

    /// ACLs on the x509 scheme match the certificate subject exactly, and
    /// the auth scheme expands to it (X509AuthenticationProvider).
    #[test]
    fn x509_ids_match_exactly_and_expand_from_auth() {
        let dn = "CN=client,OU=test,O=kazoo";
        let list = vec![acl(perms::READ, "x509", dn)];
        assert_eq!(check(&list, perms::READ, &[Id::new("x509", dn)]), Ok(()));
        assert_eq!(
            check(&list, perms::READ, &[Id::new("x509", "CN=other")]),
            Err(ErrorCode::NoAuth)
        );
        let fixed = fixup(&[acl(perms::ALL, "auth", "")], &[Id::new("x509", dn)]).unwrap();
        assert_eq!(fixed, vec![acl(perms::ALL, "x509", dn)]);
        assert_eq!(
            fixup(&[acl(1, "x509", "not a name")], &[]),
            Err(ErrorCode::InvalidAcl)
        );
        assert!(fixup(&[acl(1, "x509", "CN=a\\,b,O=c")], &[]).is_ok());
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
    fn get_acl_hides_digests_without_admin() {
        let list = vec![
            acl(perms::READ, "digest", "alice:hash"),
            acl(perms::READ, "world", "anyone"),
        ];
        let seen = visible_to(&list, &[]);
        assert_eq!(seen[0].id.id, "alice:x");
        assert_eq!(seen[1], list[1]);
        assert_eq!(visible_to(&list, &[Id::new("super", "")]), list);
    }
}
