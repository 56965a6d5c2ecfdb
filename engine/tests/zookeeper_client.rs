//! The `zookeeper-client` Rust crate against a running `ferrokeeper`: every
//! test drives the real binary over TCP, as an application would.

mod common;

use std::time::Duration;

use common::{connect, four_letter_word, within, Server};
use zookeeper_client as zk;

const OPEN: zk::CreateOptions<'static> =
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
const EPHEMERAL: zk::CreateOptions<'static> =
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
const SEQUENTIAL: zk::CreateOptions<'static> =
    zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());

#[tokio::test]
async fn create_get_set_delete_with_versions_and_stat() {
    // Proves the basic data operations and the Stat fields they report.
    let server = Server::start("");
    let client = connect(&server).await;
    let (stat, _) = client.create("/a", b"one", &OPEN).await.unwrap();
    assert_eq!(stat.version, 0);
    assert_eq!(stat.czxid, stat.mzxid);
    assert_eq!(stat.data_length, 3);
    assert_eq!(
        client.get_data("/a").await.unwrap(),
        (b"one".to_vec(), stat)
    );
    assert_eq!(
        client.create("/a", b"", &OPEN).await.unwrap_err(),
        zk::Error::NodeExists
    );
    assert_eq!(
        client.set_data("/a", b"two", Some(5)).await.unwrap_err(),
        zk::Error::BadVersion
    );
    let stat2 = client.set_data("/a", b"two", Some(0)).await.unwrap();
    assert_eq!(stat2.version, 1);
    assert!(stat2.mzxid > stat.mzxid);
    assert_eq!(stat2.czxid, stat.czxid);
    let (child, _) = client.create("/a/b", b"", &OPEN).await.unwrap();
    let (_, parent) = client.get_data("/a").await.unwrap();
    assert_eq!(parent.num_children, 1);
    assert_eq!(parent.cversion, 1);
    assert_eq!(parent.pzxid, child.czxid);
    assert_eq!(
        client.delete("/a", None).await.unwrap_err(),
        zk::Error::NotEmpty
    );
    assert_eq!(
        client.delete("/a/b", Some(3)).await.unwrap_err(),
        zk::Error::BadVersion
    );
    client.delete("/a/b", Some(0)).await.unwrap();
    let (_, parent) = client.get_data("/a").await.unwrap();
    assert_eq!(parent.cversion, 2, "cversion counts child deletes too");
    assert!(parent.pzxid > child.czxid, "pzxid moves on child delete");
    assert_eq!(
        client.get_data("/missing").await.unwrap_err(),
        zk::Error::NoNode
    );
    assert_eq!(
        client.create("/x/y", b"", &OPEN).await.unwrap_err(),
        zk::Error::NoNode
    );
    assert_eq!(client.check_stat("/missing").await.unwrap(), None);
}

#[tokio::test]
async fn sequential_names_come_from_the_parent_cversion() {
    // Proves the 10-digit suffix is the parent's cversion at create time.
    let server = Server::start("");
    let client = connect(&server).await;
    client.create("/q", b"", &OPEN).await.unwrap();
    client.create("/q/other", b"", &OPEN).await.unwrap();
    let (_, seq) = client.create("/q/item-", b"", &SEQUENTIAL).await.unwrap();
    assert_eq!(seq.into_i64(), 1);
    let mut children = client.list_children("/q").await.unwrap();
    children.sort();
    assert_eq!(children, vec!["item-0000000001", "other"]);
}

#[tokio::test]
async fn ephemerals_belong_to_their_session_and_go_with_it() {
    // Proves ephemeral ownership, getEphemerals, the no-children rule, and removal on close.
    let server = Server::start("");
    let owner = connect(&server).await;
    let other = connect(&server).await;
    let (stat, _) = owner.create("/e", b"", &EPHEMERAL).await.unwrap();
    assert_eq!(stat.ephemeral_owner, owner.session_id().0);
    assert_eq!(
        owner.create("/e/c", b"", &OPEN).await.unwrap_err(),
        zk::Error::NoChildrenForEphemerals
    );
    assert_eq!(
        owner.list_ephemerals("/").await.unwrap(),
        vec!["/e".to_string()]
    );
    assert!(other.list_ephemerals("/").await.unwrap().is_empty());
    let watcher = other.check_and_watch_stat("/e").await.unwrap().1;
    drop(owner);
    let event = within(watcher.changed()).await;
    assert_eq!(event.event_type, zk::EventType::NodeDeleted);
    assert_eq!(other.check_stat("/e").await.unwrap(), None);
}

#[tokio::test]
async fn one_shot_watches_fire_once() {
    // Proves data, exist and child watches deliver the right event, once.
    let server = Server::start("");
    let client = connect(&server).await;
    let writer = connect(&server).await;
    let (_, exist) = client.check_and_watch_stat("/w").await.unwrap();
    writer.create("/w", b"", &OPEN).await.unwrap();
    assert_eq!(
        within(exist.changed()).await.event_type,
        zk::EventType::NodeCreated
    );
    let (_, _, data) = client.get_and_watch_data("/w").await.unwrap();
    let (_, _, children) = client.get_and_watch_children("/w").await.unwrap();
    writer.set_data("/w", b"x", None).await.unwrap();
    let event = within(data.changed()).await;
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (zk::EventType::NodeDataChanged, "/w")
    );
    writer.create("/w/c", b"", &OPEN).await.unwrap();
    assert_eq!(
        within(children.changed()).await.event_type,
        zk::EventType::NodeChildrenChanged
    );
    let wchs = four_letter_word(server.port, "wchs").unwrap();
    assert!(
        wchs.contains("Total watches:0"),
        "fired watches are gone: {wchs}"
    );
}

#[tokio::test]
async fn persistent_and_recursive_watches_stay() {
    // Proves addWatch: persistent watches fire repeatedly; recursive ones cover descendants.
    let server = Server::start("");
    let client = connect(&server).await;
    client.create("/p", b"", &OPEN).await.unwrap();
    let mut persistent = client
        .watch("/p", zk::AddWatchMode::Persistent)
        .await
        .unwrap();
    let mut recursive = client
        .watch("/p", zk::AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    client.set_data("/p", b"1", None).await.unwrap();
    client.set_data("/p", b"2", None).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            within(persistent.changed()).await.event_type,
            zk::EventType::NodeDataChanged
        );
        assert_eq!(
            within(recursive.changed()).await.event_type,
            zk::EventType::NodeDataChanged
        );
    }
    client.create("/p/c", b"", &OPEN).await.unwrap();
    assert_eq!(
        within(persistent.changed()).await.event_type,
        zk::EventType::NodeChildrenChanged
    );
    let event = within(recursive.changed()).await;
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (zk::EventType::NodeCreated, "/p/c")
    );
    client.create("/p/c/d", b"", &OPEN).await.unwrap();
    let event = within(recursive.changed()).await;
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (zk::EventType::NodeCreated, "/p/c/d")
    );
}

#[tokio::test]
async fn multi_is_all_or_nothing() {
    // Proves multi applies every op or none, and reports the failing op.
    let server = Server::start("");
    let client = connect(&server).await;
    let mut writer = client.new_multi_writer();
    writer.add_create("/m1", b"", &OPEN).unwrap();
    writer.add_create("/m2", b"", &OPEN).unwrap();
    let results = writer.commit().await.unwrap();
    assert_eq!(results.len(), 2);
    let mut writer = client.new_multi_writer();
    writer.add_create("/m3", b"", &OPEN).unwrap();
    writer.add_check_version("/m1", 7).unwrap();
    let err = writer.commit().await.unwrap_err();
    assert_eq!(
        err,
        zk::MultiWriteError::OperationFailed {
            index: 1,
            source: zk::Error::BadVersion
        }
    );
    assert_eq!(
        client.check_stat("/m3").await.unwrap(),
        None,
        "nothing of a failed multi is applied"
    );
    let mut reader = client.new_multi_reader();
    reader.add_get_data("/m1").unwrap();
    reader.add_get_children("/missing").unwrap();
    let results = reader.commit().await.unwrap();
    assert!(matches!(results[0], zk::MultiReadResult::Data { .. }));
    assert!(matches!(
        results[1],
        zk::MultiReadResult::Error {
            err: zk::Error::NoNode
        }
    ));
}

#[tokio::test]
async fn digest_acls_deny_and_allow() {
    // Proves digest auth, ACL enforcement (NoAuth) and whoAmI.
    let server = Server::start("");
    let alice = zk::Client::connector()
        .with_auth("digest", b"alice:secret")
        .connect(&server.address())
        .await
        .unwrap();
    let stranger = connect(&server).await;
    let creator_only = zk::CreateMode::Persistent.with_acls(zk::Acls::creator_all());
    alice.create("/private", b"s", &creator_only).await.unwrap();
    assert_eq!(
        stranger.get_data("/private").await.unwrap_err(),
        zk::Error::NoAuth
    );
    assert_eq!(
        stranger.set_data("/private", b"x", None).await.unwrap_err(),
        zk::Error::NoAuth
    );
    assert_eq!(alice.get_data("/private").await.unwrap().0, b"s");
    let (acl, _) = alice.get_acl("/private").await.unwrap();
    assert_eq!(acl[0].scheme(), "digest");
    assert!(acl[0].id().starts_with("alice:"));
    let users = alice.list_auth_users().await.unwrap();
    assert!(
        users
            .iter()
            .any(|u| u.scheme() == "digest" && u.user().starts_with("alice")),
        "{users:?}"
    );
    assert_eq!(
        stranger
            .create("/open-no-auth", b"", &creator_only)
            .await
            .unwrap_err(),
        zk::Error::InvalidAcl
    );
}

#[tokio::test]
async fn sessions_expire_and_reconnect_with_id_and_password() {
    // Proves a detached session can be resumed by id and password, and expires after its timeout.
    let server = Server::start("");
    let first = zk::Client::connector()
        .with_session_timeout(Duration::from_millis(1500))
        .with_detached()
        .connect(&server.address())
        .await
        .unwrap();
    first.create("/mine", b"", &EPHEMERAL).await.unwrap();
    let session = first.into_session();
    let resumed = zk::Client::connector()
        .with_session(session.clone())
        .connect(&server.address())
        .await
        .unwrap();
    assert_eq!(resumed.session_id(), session.id());
    let (_, stat) = resumed.get_data("/mine").await.unwrap();
    assert_eq!(stat.ephemeral_owner, session.id().0);
    drop(resumed);
    // Closing the resumed client closes the session (asynchronously: wait for
    // its ephemeral to go, or a reconnect could win the race and resume it).
    let observer = connect(&server).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while observer.check_stat("/mine").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "closeSession did not take effect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The id is no longer valid.
    let err = zk::Client::connector()
        .with_session(session)
        .connect(&server.address())
        .await
        .unwrap_err();
    assert_eq!(err, zk::Error::SessionExpired);

    let doomed = zk::Client::connector()
        .with_session_timeout(Duration::from_millis(800))
        .with_detached()
        .connect(&server.address())
        .await
        .unwrap();
    doomed.create("/doomed", b"", &EPHEMERAL).await.unwrap();
    let session = doomed.into_session();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let observer = connect(&server).await;
    assert_eq!(
        observer.check_stat("/doomed").await.unwrap(),
        None,
        "expiry removed the ephemeral"
    );
    let err = zk::Client::connector()
        .with_session(session)
        .connect(&server.address())
        .await
        .unwrap_err();
    assert_eq!(err, zk::Error::SessionExpired);
}

#[tokio::test]
async fn containers_are_reaped_after_their_last_child_goes() {
    // Proves the container reaper removes an emptied container (checkIntervalMs=200 in tests).
    let server = Server::start("");
    let client = connect(&server).await;
    let container = zk::CreateMode::Container.with_acls(zk::Acls::anyone_all());
    client.create("/c", b"", &container).await.unwrap();
    client.create("/c/child", b"", &OPEN).await.unwrap();
    client.delete("/c/child", None).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while client.check_stat("/c").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "container was not reaped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn ttl_nodes_and_counts_and_sync() {
    // Proves TTL creates (extendedTypesEnabled), getAllChildrenNumber and sync.
    let server = Server::start("");
    let client = connect(&server).await;
    let ttl = zk::CreateMode::Persistent
        .with_acls(zk::Acls::anyone_all())
        .with_ttl(Duration::from_secs(60));
    let (stat, _) = client.create("/t", b"", &ttl).await.unwrap();
    assert_eq!(
        stat.ephemeral_owner, 0,
        "clients see 0 as the owner of TTL nodes (DataNode.getClientEphemeralOwner)"
    );
    client.create("/t/a", b"", &OPEN).await.unwrap();
    client.create("/t/a/b", b"", &OPEN).await.unwrap();
    assert_eq!(client.count_descendants_number("/t").await.unwrap(), 2);
    client.sync("/t").await.unwrap();
}
