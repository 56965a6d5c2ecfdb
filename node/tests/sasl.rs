//! SASL DIGEST-MD5 on client connections, driven step by step: the exact
//! frames ZooKeeper's processSasl sends, the identity a completed exchange
//! adds, and what a failed one does to the connection.

mod common;

use std::collections::BTreeMap;

use common::*;
use node::sasl::digest_md5::{DigestInputs, REALM};
use node::{Action, ConnId, Input, RequestFrame, SaslSettings, Settings};
use proto::ops::{CreateRequest, Request, Response, SaslRequest, SetSaslResponse};
use proto::{perms, Acl, ErrorCode, Id, OpCode, Record};

const CNONCE: &str = "client-nonce";

fn sasl_settings() -> Settings {
    Settings {
        sasl: Some(SaslSettings {
            users: BTreeMap::from([
                ("jaasuser".to_string(), "jaas_password".to_string()),
                ("admin".to_string(), "admin_password".to_string()),
            ]),
            super_password: None,
            super_users: vec!["admin".to_string()],
            allow_failed_clients: false,
            nonce_secret: [7; 32],
        }),
        sasl_provider_enabled: true,
        ..settings()
    }
}

fn sasl(token: &[u8]) -> Request {
    Request::Sasl(SaslRequest {
        token: Some(token.to_vec()),
    })
}

fn server_token(frame: &Frame) -> Option<Vec<u8>> {
    match frame.response(OpCode::Sasl) {
        Response::Sasl(SetSaslResponse { token }) => token,
        other => panic!("not a SASL reply: {other:?}"),
    }
}

/// The client's side of DIGEST-MD5, as pure-sasl and the JDK client compute it.
fn client_response(challenge: &[u8], user: &str, password: &str) -> (String, String) {
    let challenge = String::from_utf8(challenge.to_vec()).unwrap();
    let nonce = challenge
        .split(',')
        .find_map(|d| d.strip_prefix("nonce=\""))
        .and_then(|n| n.strip_suffix('"'))
        .expect("a nonce in the challenge")
        .to_string();
    let inputs = DigestInputs {
        username: user,
        realm: REALM,
        password,
        nonce: &nonce,
        cnonce: CNONCE,
        nc: "00000001",
        authzid: None,
        digest_uri: "zookeeper/zk-sasl-md5",
    };
    let response = format!(
        "username=\"{user}\",realm=\"{REALM}\",nonce=\"{nonce}\",cnonce=\"{CNONCE}\",nc=00000001,qop=auth,digest-uri=\"zookeeper/zk-sasl-md5\",response={},charset=utf-8",
        inputs.response("AUTHENTICATE")
    );
    (response, format!("rspauth={}", inputs.response("")))
}

/// Runs a whole exchange on `conn` with xids 1 and 2; returns the second reply's frame.
fn authenticate(
    h: &mut Harness,
    conn: ConnId,
    user: &str,
    password: &str,
) -> (Vec<Action>, String) {
    let frames = h.call(conn, 1, sasl(b""));
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].xid, frames[0].zxid, frames[0].err), (1, 0, 0));
    let challenge = server_token(&frames[0]).expect("a challenge");
    let (response, rspauth) = client_response(&challenge, user, password);
    let mut actions = h.send(conn, vec![(2, sasl(response.as_bytes()))]);
    actions.extend(h.settle());
    (actions, rspauth)
}

fn create_with(path: &str, acl: Vec<Acl>) -> Request {
    Request::Create(CreateRequest {
        path: path.to_string(),
        data: Some(b"secret".to_vec()),
        acl,
        flags: 0,
    })
}

/// A completed exchange answers rspauth with zxid 0 and gives the
/// connection `sasl:<user>`: it may create a node only it can read, which
/// another session cannot.
#[test]
fn digest_md5_authenticates_the_connection_as_sasl_user() {
    let mut h = Harness::new(sasl_settings());
    let (conn, _) = h.connect(10_000);
    let (actions, rspauth) = authenticate(&mut h, conn, "jaasuser", "jaas_password");
    let frames = frames_to(&actions, conn);
    assert_eq!(frames.len(), 1);
    assert_eq!((frames[0].xid, frames[0].zxid, frames[0].err), (2, 0, 0));
    assert_eq!(server_token(&frames[0]), Some(rspauth.into_bytes()));
    assert!(closes(&actions).is_empty());

    let acl = vec![Acl {
        perms: perms::ALL,
        id: Id::new("sasl", "jaasuser"),
    }];
    let frames = h.call(conn, 3, create_with("/secure", acl));
    assert_eq!(frames[0].error(), ErrorCode::Ok);
    assert_eq!(
        h.call(conn, 4, get_data("/secure", false))[0].error(),
        ErrorCode::Ok
    );
    let frames = h.call(conn, 5, Request::WhoAmI);
    let Response::WhoAmI(who) = frames[0].response(OpCode::WhoAmI) else {
        panic!("a whoAmI reply");
    };
    assert!(who
        .client_info
        .iter()
        .any(|c| c.auth_scheme == "sasl" && c.user == "jaasuser"));

    let (other, _) = h.connect(10_000);
    let frames = h.call(other, 1, get_data("/secure", false));
    assert_eq!(frames[0].error(), ErrorCode::NoAuth);

    // "auth" expands to the sasl identity.
    let auth_acl = vec![Acl {
        perms: perms::ALL,
        id: Id::new("auth", ""),
    }];
    assert_eq!(
        h.call(conn, 6, create_with("/mine", auth_acl))[0].error(),
        ErrorCode::Ok
    );
    assert_eq!(
        h.node.tree().node("/mine").unwrap().acl.to_vec(),
        vec![Acl {
            perms: perms::ALL,
            id: Id::new("sasl", "jaasuser"),
        }]
    );
}

/// A configured super user (`zookeeper.superUser`) passes every ACL.
#[test]
fn a_super_user_passes_every_acl() {
    let mut h = Harness::new(sasl_settings());
    let (owner, _) = h.connect(10_000);
    authenticate(&mut h, owner, "jaasuser", "jaas_password");
    let acl = vec![Acl {
        perms: perms::ALL,
        id: Id::new("sasl", "jaasuser"),
    }];
    h.call(owner, 3, create_with("/secure", acl));
    let (admin, _) = h.connect(10_000);
    authenticate(&mut h, admin, "admin", "admin_password");
    assert_eq!(
        h.call(admin, 3, get_data("/secure", false))[0].error(),
        ErrorCode::Ok
    );
}

/// A wrong password or an unknown user: ReplyHeader(xid, 0, AUTHFAILED)
/// with a null-token SetSASLResponse, then the connection closes; nothing
/// more is answered on it.
#[test]
fn a_failed_exchange_answers_authfailed_and_closes() {
    for (user, password) in [("jaasuser", "wrong"), ("baduser", "badpassword")] {
        let mut h = Harness::new(sasl_settings());
        let (conn, _) = h.connect(10_000);
        let (actions, _) = authenticate(&mut h, conn, user, password);
        let frames = frames_to(&actions, conn);
        assert_eq!(frames.len(), 1, "{user}");
        assert_eq!(frames[0].xid, 2);
        assert_eq!(frames[0].zxid, 0);
        assert_eq!(frames[0].error(), ErrorCode::AuthFailed);
        assert_eq!(
            frames[0].body,
            (-1i32).to_be_bytes(),
            "a null token follows"
        );
        assert_eq!(closes(&actions), vec![conn]);
        let later = h.send(conn, vec![(3, get_data("/", false))]);
        assert!(frames_to(&later, conn).is_empty());
        h.step(Input::Closed { conn });
    }
}

/// Without a JAAS Server section ZooKeeper has no SASL server and answers
/// OK with a null token (processSasl's NullPointerException path); a null
/// client token closes the connection without a reply.
#[test]
fn no_sasl_server_answers_ok_and_a_null_token_closes() {
    let mut h = Harness::new(settings());
    let (conn, _) = h.connect(10_000);
    let frames = h.call(conn, 7, sasl(b""));
    assert_eq!((frames[0].xid, frames[0].zxid, frames[0].err), (7, 0, 0));
    assert_eq!(server_token(&frames[0]), None);

    let mut h = Harness::new(sasl_settings());
    let (conn, _) = h.connect(10_000);
    let actions = h.step(Input::Requests {
        conn,
        requests: vec![RequestFrame {
            xid: 1,
            op: OpCode::Sasl.code(),
            body: Ok(Request::Sasl(SaslRequest { token: None })),
            nulls: proto::Nulls::default(),
        }],
    });
    assert!(frames_to(&actions, conn).is_empty());
    assert_eq!(closes(&actions), vec![conn]);
}

/// Two connections get different nonces, and a response made for one
/// exchange's nonce fails on another (no replay across connections).
#[test]
fn nonces_are_per_exchange_and_a_replayed_response_fails() {
    let mut h = Harness::new(sasl_settings());
    let (first, _) = h.connect(10_000);
    let (second, _) = h.connect(10_000);
    let challenge_first = server_token(&h.call(first, 1, sasl(b""))[0]).unwrap();
    let challenge_second = server_token(&h.call(second, 1, sasl(b""))[0]).unwrap();
    assert_ne!(challenge_first, challenge_second);
    let (response, _) = client_response(&challenge_first, "jaasuser", "jaas_password");
    let frames = h.call(second, 2, sasl(response.as_bytes()));
    assert_eq!(frames[0].error(), ErrorCode::AuthFailed);
    let frames = h.call(first, 2, sasl(response.as_bytes()));
    assert_eq!(frames[0].error(), ErrorCode::Ok);
}

/// Without the SASLAuthenticationProvider a sasl ACL is INVALIDACL, even
/// for an authenticated connection.
#[test]
fn sasl_acls_need_the_provider() {
    let mut h = Harness::new(Settings {
        sasl_provider_enabled: false,
        ..sasl_settings()
    });
    let (conn, _) = h.connect(10_000);
    authenticate(&mut h, conn, "jaasuser", "jaas_password");
    let acl = vec![Acl {
        perms: perms::ALL,
        id: Id::new("sasl", "jaasuser"),
    }];
    let frames = h.call(conn, 3, create_with("/secure", acl));
    assert_eq!(frames[0].error(), ErrorCode::InvalidAcl);
    // The SetSASLResponse body decodes as jute says.
    let body = SetSaslResponse { token: None }.to_bytes();
    assert_eq!(body, (-1i32).to_be_bytes());
}
