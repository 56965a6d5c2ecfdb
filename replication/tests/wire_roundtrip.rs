//! Property tests for the peer wire: every election and quorum message
//! round-trips through its bytes, stream decoders give the same messages
//! however the bytes are split, and no byte string — random, truncated or
//! mutated — makes any decoder panic.

use bytes::Bytes;
use proptest::prelude::*;
use proto::Id;
use replication::election_wire::{
    frame_election_message, ElectionFrame, ElectionHello, ElectionStreamDecoder, HelloVersion,
    HostPort, LegacyNotificationForm, Notification, ServerState,
};
use replication::messages::{
    ForwardedRequest, LeaderMessage, LearnerInfo, LearnerMessage, SessionTouch,
};
use replication::packet::{QuorumPacket, QuorumStreamDecoder, PACKET_BYTES_MAX_DEFAULT};
use replication::ServerSpec;

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn state() -> impl Strategy<Value = ServerState> {
    prop_oneof![
        Just(ServerState::Looking),
        Just(ServerState::Following),
        Just(ServerState::Leading),
        Just(ServerState::Observing),
    ]
}

fn notification() -> impl Strategy<Value = Notification> {
    (state(), any::<[i64; 4]>(), 2..i32::MAX, bytes(200)).prop_map(|(state, l, version, config)| {
        Notification {
            state,
            leader: l[0],
            zxid: l[1],
            election_epoch: l[2],
            peer_epoch: l[3],
            version,
            config,
        }
    })
}

fn host_port() -> impl Strategy<Value = HostPort> {
    let host = prop_oneof![
        "[a-z][a-z0-9.-]{0,30}",
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        "[0-9a-f]{0,4}:[0-9a-f]{0,4}:[0-9a-f:]{0,12}",
    ];
    (host, any::<u16>()).prop_map(|(host, port)| HostPort::new(host, port))
}

fn hello() -> impl Strategy<Value = ElectionHello> {
    prop_oneof![
        (any::<i64>(), host_port()).prop_map(|(sid, a)| ElectionHello::new(sid, vec![a])),
        (any::<i64>(), prop::collection::vec(host_port(), 2..5))
            .prop_map(|(sid, addresses)| ElectionHello::new(sid, addresses)),
        (0..i64::MAX).prop_map(|sid| ElectionHello {
            version: HelloVersion::Legacy,
            sid,
            addresses: vec![],
        }),
    ]
}

fn id() -> impl Strategy<Value = Id> {
    ("[a-z]{0,8}", "[a-z0-9:.ü]{0,16}").prop_map(|(scheme, id)| Id::new(scheme, id))
}

fn quorum_packet() -> impl Strategy<Value = QuorumPacket> {
    (
        any::<i32>(),
        any::<i64>(),
        prop::option::of(bytes(300)),
        prop::option::of(prop::collection::vec(id(), 0..3)),
    )
        .prop_map(|(packet_type, zxid, data, authinfo)| QuorumPacket {
            packet_type,
            zxid,
            data,
            authinfo,
        })
}

fn learner_info() -> impl Strategy<Value = LearnerInfo> {
    (
        any::<i64>(),
        any::<i32>(),
        any::<i64>(),
        0..4u8,
        any::<i64>(),
    )
        .prop_map(|(sid, v, c, fields, z)| LearnerInfo {
            sid,
            protocol_version: (fields >= 1).then_some(v),
            config_version: (fields >= 2).then_some(c),
            recovering: (fields >= 3).then_some(z),
        })
}

fn learner_message() -> impl Strategy<Value = LearnerMessage> {
    prop_oneof![
        (any::<i64>(), prop::option::of(learner_info()))
            .prop_map(|(zxid, info)| LearnerMessage::FollowerInfo { zxid, info }),
        (any::<i64>(), prop::option::of(learner_info()))
            .prop_map(|(zxid, info)| LearnerMessage::ObserverInfo { zxid, info }),
        (any::<i64>(), any::<i32>()).prop_map(|(z, e)| LearnerMessage::AckEpoch {
            last_logged_zxid: z,
            current_epoch: e
        }),
        any::<i64>().prop_map(|zxid| LearnerMessage::Ack { zxid }),
        (
            any::<i64>(),
            prop::collection::vec(any::<(i64, i32)>(), 0..5)
        )
            .prop_map(|(zxid, t)| {
                LearnerMessage::Ping {
                    zxid,
                    touches: t
                        .into_iter()
                        .map(|(session_id, timeout_ms)| SessionTouch {
                            session_id,
                            timeout_ms,
                        })
                        .collect(),
                }
            }),
        any::<(i64, i32)>().prop_map(|(session_id, timeout_ms)| LearnerMessage::Revalidate {
            session_id,
            timeout_ms
        }),
        (
            any::<(i64, i32, i32)>(),
            bytes(100),
            prop::collection::vec(id(), 0..3)
        )
            .prop_map(|((session_id, cxid, op_type), body, authinfo)| {
                LearnerMessage::Request(ForwardedRequest {
                    session_id,
                    cxid,
                    op_type,
                    body,
                    authinfo,
                })
            }),
    ]
}

fn leader_message() -> impl Strategy<Value = LeaderMessage> {
    let zxid = any::<i64>;
    prop_oneof![
        (zxid(), any::<i32>()).prop_map(|(zxid, protocol_version)| LeaderMessage::LeaderInfo {
            zxid,
            protocol_version
        }),
        zxid().prop_map(|zxid| LeaderMessage::Diff { zxid }),
        zxid().prop_map(|zxid| LeaderMessage::Trunc { zxid }),
        zxid().prop_map(|zxid| LeaderMessage::Snap { zxid }),
        (zxid(), prop::option::of(bytes(100)))
            .prop_map(|(zxid, config)| LeaderMessage::NewLeader { zxid, config }),
        Just(LeaderMessage::UpToDate),
        (zxid(), bytes(200)).prop_map(|(zxid, txn)| LeaderMessage::Proposal { zxid, txn }),
        zxid().prop_map(|zxid| LeaderMessage::Commit { zxid }),
        (zxid(), any::<i64>()).prop_map(|(zxid, designated_leader)| {
            LeaderMessage::CommitAndActivate {
                zxid,
                designated_leader,
            }
        }),
        (zxid(), bytes(200)).prop_map(|(zxid, txn)| LeaderMessage::Inform { zxid, txn }),
        (zxid(), any::<i64>(), bytes(200)).prop_map(|(zxid, designated_leader, txn)| {
            LeaderMessage::InformAndActivate {
                zxid,
                designated_leader,
                txn,
            }
        }),
        zxid().prop_map(|zxid| LeaderMessage::Ping { zxid }),
        (any::<i64>(), any::<bool>())
            .prop_map(|(session_id, valid)| LeaderMessage::Revalidate { session_id, valid }),
        Just(LeaderMessage::Sync),
    ]
}

/// Cuts `bytes` into pieces at the given fractions.
fn split_points(len: usize, cuts: &[prop::sample::Index]) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
    points.push(0);
    points.push(len);
    points.sort_unstable();
    points.dedup();
    points
}

fn flip(bytes: &[u8], at: prop::sample::Index, mask: u8) -> Vec<u8> {
    let mut mutated = bytes.to_vec();
    if !mutated.is_empty() {
        let i = at.index(mutated.len());
        mutated[i] ^= mask | 1;
    }
    mutated
}

proptest! {
    #[test]
    fn notifications_round_trip_in_every_form(n in notification()) {
        prop_assert_eq!(Notification::decode(&n.encode()).unwrap(), n.clone());
        let forty = Notification::decode(&n.encode_legacy(LegacyNotificationForm::Bytes40)).unwrap();
        prop_assert_eq!(forty, Notification { version: 0, config: Bytes::new(), ..n.clone() });
        let oldest = Notification::decode(&n.encode_legacy(LegacyNotificationForm::Bytes28)).unwrap();
        prop_assert_eq!(oldest, Notification { version: 0, config: Bytes::new(), peer_epoch: n.zxid >> 32, ..n });
    }

    #[test]
    fn election_streams_decode_the_same_however_split(
        hello in hello(),
        messages in prop::collection::vec(notification(), 0..4),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut stream = hello.encode().to_vec();
        for n in &messages {
            stream.extend_from_slice(&frame_election_message(&n.encode()));
        }
        let mut decoder = ElectionStreamDecoder::accepted();
        let mut frames = Vec::new();
        let points = split_points(stream.len(), &cuts);
        for piece in points.windows(2) {
            decoder.push(&stream[piece[0]..piece[1]]);
            while let Some(frame) = decoder.next_frame().unwrap() {
                frames.push(frame);
            }
        }
        prop_assert_eq!(decoder.buffered(), 0);
        prop_assert_eq!(&frames[0], &ElectionFrame::Hello(hello));
        let decoded: Vec<Notification> = frames[1..]
            .iter()
            .map(|f| match f {
                ElectionFrame::Message(m) => Notification::decode(m).unwrap(),
                ElectionFrame::Hello(_) => panic!("a second hello"),
            })
            .collect();
        prop_assert_eq!(decoded, messages);
    }

    #[test]
    fn quorum_packets_round_trip_and_stream_however_split(
        packets in prop::collection::vec(quorum_packet(), 1..5),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut stream = Vec::new();
        for p in &packets {
            let encoded = p.to_bytes();
            prop_assert_eq!(encoded.len(), p.encoded_len());
            prop_assert_eq!(&QuorumPacket::decode(&encoded).unwrap(), p);
            stream.extend_from_slice(&encoded);
        }
        let mut decoder = QuorumStreamDecoder::new(PACKET_BYTES_MAX_DEFAULT);
        let mut out = Vec::new();
        let points = split_points(stream.len(), &cuts);
        for piece in points.windows(2) {
            decoder.push(&stream[piece[0]..piece[1]]);
            while let Some(p) = decoder.next_packet().unwrap() {
                out.push(p);
            }
        }
        prop_assert_eq!(out, packets);
        prop_assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn a_cut_stream_yields_exactly_its_whole_packets(
        packets in prop::collection::vec(quorum_packet(), 1..5),
        cut in any::<prop::sample::Index>(),
    ) {
        // Never a packet that was not sent, never one cut short.
        let encoded: Vec<Bytes> = packets.iter().map(QuorumPacket::to_bytes).collect();
        let stream: Vec<u8> = encoded.iter().flat_map(|b| b.to_vec()).collect();
        let cut = cut.index(stream.len() + 1);
        let mut whole = 0;
        let mut end = 0;
        for e in &encoded {
            if end + e.len() > cut {
                break;
            }
            end += e.len();
            whole += 1;
        }
        let mut decoder = QuorumStreamDecoder::new(PACKET_BYTES_MAX_DEFAULT);
        decoder.push(&stream[..cut]);
        let mut out = Vec::new();
        while let Some(p) = decoder.next_packet().unwrap() {
            out.push(p);
        }
        prop_assert_eq!(&out[..], &packets[..whole]);
        prop_assert_eq!(decoder.buffered(), cut - end);
    }

    #[test]
    fn learner_messages_round_trip(message in learner_message()) {
        let bytes = message.to_packet().to_bytes();
        let packet = QuorumPacket::decode(&bytes).unwrap();
        prop_assert_eq!(LearnerMessage::from_packet(&packet).unwrap(), message);
    }

    #[test]
    fn leader_messages_round_trip(message in leader_message()) {
        let bytes = message.to_packet().to_bytes();
        let packet = QuorumPacket::decode(&bytes).unwrap();
        prop_assert_eq!(LeaderMessage::from_packet(&packet).unwrap(), message);
    }

    #[test]
    fn server_lines_round_trip_through_config_text(
        host in "[a-z][a-z0-9.-]{0,20}",
        ports in (1..u16::MAX, 1..u16::MAX),
        observer in any::<bool>(),
        client in prop::option::of(any::<u16>()),
    ) {
        prop_assume!(ports.0 != ports.1);
        let kind = if observer { ":observer" } else { "" };
        let client = client.map(|p| format!(";{p}")).unwrap_or_default();
        let line = format!("{host}:{}:{}{kind}{client}", ports.0, ports.1);
        let spec = ServerSpec::parse(3, &line).unwrap();
        prop_assert_eq!(ServerSpec::parse(3, &spec.to_config_value()).unwrap(), spec);
    }

    #[test]
    fn config_like_text_never_panics_the_server_line_parser(
        value in "[a-z0-9:;|\\[\\]. ]{0,30}",
    ) {
        if let Ok(spec) = ServerSpec::parse(1, &value) {
            prop_assert_ne!(spec.quorum.port, spec.election.port);
        }
        let _ = ServerSpec::parse_line(&format!("server.{value}"));
    }

    #[test]
    fn truncated_and_mutated_messages_never_panic(
        n in notification(),
        hello in hello(),
        learner in learner_message(),
        leader in leader_message(),
        cut in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        mask in any::<u8>(),
    ) {
        let encoded = [
            n.encode(),
            hello.encode(),
            learner.to_packet().to_bytes(),
            leader.to_packet().to_bytes(),
        ];
        for bytes in encoded {
            let cut_bytes = &bytes[..cut.index(bytes.len() + 1)];
            let mutated = flip(&bytes, at, mask);
            for candidate in [cut_bytes, &mutated[..]] {
                decode_everything(candidate);
            }
        }
    }

    #[test]
    fn random_bytes_never_panic_any_decoder(
        random in prop::collection::vec(any::<u8>(), 0..300),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        decode_everything(&random);
        // Streams fed in pieces, with a small limit so the size check runs too.
        let mut quorum = QuorumStreamDecoder::new(64);
        let mut accepted = ElectionStreamDecoder::accepted();
        let points = split_points(random.len(), &cuts);
        for piece in points.windows(2) {
            quorum.push(&random[piece[0]..piece[1]]);
            accepted.push(&random[piece[0]..piece[1]]);
            while let Ok(Some(_)) = quorum.next_packet() {}
            while let Ok(Some(_)) = accepted.next_frame() {}
        }
    }
}

/// Runs every decoder of the crate over `bytes`, discarding the results.
fn decode_everything(bytes: &[u8]) {
    let _ = Notification::decode(bytes);
    let shared = Bytes::copy_from_slice(bytes);
    if let Ok(packet) = QuorumPacket::decode(&shared) {
        let _ = LearnerMessage::from_packet(&packet);
        let _ = LeaderMessage::from_packet(&packet);
    }
    let _ = QuorumPacket::decode_prefix(&shared);
    for mut decoder in [
        ElectionStreamDecoder::accepted(),
        ElectionStreamDecoder::dialled(),
    ] {
        decoder.push(bytes);
        while let Ok(Some(frame)) = decoder.next_frame() {
            if let ElectionFrame::Message(m) = frame {
                let _ = Notification::decode(&m);
            }
        }
    }
    let mut quorum = QuorumStreamDecoder::new(PACKET_BYTES_MAX_DEFAULT);
    quorum.push(bytes);
    while let Ok(Some(packet)) = quorum.next_packet() {
        let _ = LearnerMessage::from_packet(&packet);
        let _ = LeaderMessage::from_packet(&packet);
    }
    for packet_type in 1..=19 {
        // The same data under every type, in both directions.
        let packet = QuorumPacket {
            packet_type,
            zxid: 0,
            data: Some(shared.clone()),
            authinfo: None,
        };
        let _ = LearnerMessage::from_packet(&packet);
        let _ = LeaderMessage::from_packet(&packet);
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = ServerSpec::parse(1, text);
        let _ = ServerSpec::parse_line(text);
    }
}
