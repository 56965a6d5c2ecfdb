//! Feeds arbitrary bytes, in arbitrary pieces, to the quorum-port stream
//! decoder and reads every packet as both directions' typed messages. Any
//! panic is a bug; errors are expected.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replication::messages::{LeaderMessage, LearnerMessage};
use replication::packet::QuorumStreamDecoder;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the piece size, the second a small size limit.
    let Some((&piece, rest)) = data.split_first() else {
        return;
    };
    let Some((&limit, rest)) = rest.split_first() else {
        return;
    };
    let mut decoder = QuorumStreamDecoder::new(20 + usize::from(limit) * 16);
    for chunk in rest.chunks(usize::from(piece).max(1)) {
        decoder.push(chunk);
        while let Ok(Some(packet)) = decoder.next_packet() {
            let _ = LearnerMessage::from_packet(&packet);
            let _ = LeaderMessage::from_packet(&packet);
            let encoded = packet.to_bytes();
            assert_eq!(encoded.len(), packet.encoded_len());
        }
    }
});
