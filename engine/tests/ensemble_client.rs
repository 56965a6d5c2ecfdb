//! The `zookeeper-client` Rust crate against a real 3-server ferrokeeper
//! ensemble: three processes on 127.0.0.1, each with its own ports and data
//! directory, and clients on every server, as an application would use them.

mod common;

use std::time::{Duration, Instant};

use common::{four_letter_word, free_port, within, Server};
use zookeeper_client as zk;

const OPEN: zk::CreateOptions<'static> =
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
const EPHEMERAL: zk::CreateOptions<'static> =
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());

/// How long an ensemble may take to elect a leader and serve on every server.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Three ferrokeeper processes that form one ensemble; each `Server` kills
/// its process when dropped, so a panicking test leaves none behind.
struct Ensemble {
    members: Vec<Server>,
}

impl Ensemble {
    const SIZE: usize = 3;

    fn start() -> Ensemble {
        let ports: Vec<(u16, u16, u16)> = (0..Self::SIZE)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let servers: String = ports
            .iter()
            .enumerate()
            .map(|(index, (_, quorum, election))| {
                format!("server.{}=127.0.0.1:{quorum}:{election}\n", index + 1)
            })
            .collect();
        let members = ports
            .iter()
            .enumerate()
            .map(|(index, (client, _, _))| Self::member(index + 1, *client, &servers))
            .collect();
        let ensemble = Ensemble { members };
        ensemble.wait_settled();
        ensemble
    }

    fn member(sid: usize, client_port: u16, servers: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("dataDir");
        std::fs::write(data.join("myid"), format!("{sid}\n")).expect("myid");
        let config = format!(
            "tickTime=200\ninitLimit=10\nsyncLimit=5\n\
             minSessionTimeout=400\nmaxSessionTimeout=60000\n\
             dataDir={}\nclientPort={client_port}\nclientPortAddress=127.0.0.1\n\
             4lw.commands.whitelist=*\nferrokeeper.cores=1\n{servers}",
            data.display()
        );
        Server::start_with_config(dir, client_port, &config)
    }

    /// srvr's `Mode:` of each member (None while it does not serve).
    fn modes(&self) -> Vec<Option<String>> {
        self.members
            .iter()
            .map(|member| {
                let answer = four_letter_word(member.port, "srvr")?;
                answer
                    .lines()
                    .find_map(|line| line.strip_prefix("Mode: "))
                    .map(|mode| mode.trim().to_string())
            })
            .collect()
    }

    /// Waits until exactly one member leads and the others follow.
    fn wait_settled(&self) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let modes = self.modes();
            let leaders = modes.iter().filter(|m| m.as_deref() == Some("leader"));
            let followers = modes.iter().filter(|m| m.as_deref() == Some("follower"));
            if leaders.count() == 1 && followers.count() == Self::SIZE - 1 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no settled ensemble within {SETTLE_TIMEOUT:?}: {modes:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn follower(&self) -> &Server {
        let modes = self.modes();
        let index = modes
            .iter()
            .position(|mode| mode.as_deref() == Some("follower"))
            .expect("a follower");
        &self.members[index]
    }
}

/// A session on `server`, the connect itself bounded too.
async fn connect(server: &Server) -> zk::Client {
    within(common::connect(server)).await
}

#[tokio::test]
async fn clients_on_every_server_write_read_and_watch() {
    // Proves that a create through any server is read back (after sync) from
    // every server, that a watch set on one server fires for a change made
    // through another, and that an ephemeral is seen everywhere while its
    // session lives and goes from every server when that session closes.
    let ensemble = Ensemble::start();
    let mut clients = Vec::new();
    for member in &ensemble.members {
        clients.push(connect(member).await);
    }
    for (index, client) in clients.iter().enumerate() {
        let path = format!("/via{index}");
        within(client.create(&path, index.to_string().as_bytes(), &OPEN))
            .await
            .unwrap();
    }
    for client in &clients {
        within(client.sync("/")).await.unwrap();
        for index in 0..clients.len() {
            let (data, _) = within(client.get_data(&format!("/via{index}")))
                .await
                .unwrap();
            assert_eq!(data, index.to_string().as_bytes());
        }
    }

    let (_, _, changed) = within(clients[2].get_and_watch_data("/via0"))
        .await
        .unwrap();
    within(clients[0].set_data("/via0", b"changed", None))
        .await
        .unwrap();
    let event = within(changed.changed()).await;
    assert_eq!(
        (event.event_type, event.path.as_str()),
        (zk::EventType::NodeDataChanged, "/via0")
    );

    let owner = clients.remove(1);
    within(owner.create("/eph", b"", &EPHEMERAL)).await.unwrap();
    let mut deleted = Vec::new();
    for client in &clients {
        within(client.sync("/")).await.unwrap();
        let (stat, watcher) = within(client.check_and_watch_stat("/eph")).await.unwrap();
        let stat = stat.expect("the ephemeral is on every server");
        assert_eq!(stat.ephemeral_owner, owner.session_id().0);
        deleted.push(watcher);
    }
    drop(owner);
    for (client, watcher) in clients.iter().zip(deleted) {
        let event = within(watcher.changed()).await;
        assert_eq!(event.event_type, zk::EventType::NodeDeleted);
        assert_eq!(within(client.check_stat("/eph")).await.unwrap(), None);
    }
    let on_owners_server = connect(&ensemble.members[1]).await;
    within(on_owners_server.sync("/")).await.unwrap();
    assert_eq!(
        within(on_owners_server.check_stat("/eph")).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn a_client_of_a_follower_sees_its_own_writes() {
    // Proves FIFO client order through a follower: each read, sent right
    // behind a write on the same connection before that write is answered,
    // sees the write (the follower forwards the write to the leader and
    // holds the read until the write comes back committed).
    let ensemble = Ensemble::start();
    let client = connect(ensemble.follower()).await;
    within(client.create("/own", b"0", &OPEN)).await.unwrap();
    for round in 1..50u32 {
        let value = round.to_string();
        // The crate sends each request when the method is called, so both
        // are on the wire before either is awaited.
        let write = client.set_data("/own", value.as_bytes(), None);
        let read = client.get_data("/own");
        let stat = within(write).await.unwrap();
        let (data, read_stat) = within(read).await.unwrap();
        assert_eq!(data, value.as_bytes());
        assert_eq!(read_stat.mzxid, stat.mzxid);
    }
    let (_, stat) = within(client.get_data("/own")).await.unwrap();
    assert_eq!(stat.version, 49);
}
