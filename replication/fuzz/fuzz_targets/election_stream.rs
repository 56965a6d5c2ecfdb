//! Feeds arbitrary bytes, in arbitrary pieces, to an accepted election
//! connection and decodes every frame as a notification. Any panic is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replication::election_wire::{ElectionFrame, ElectionStreamDecoder, Notification};

fuzz_target!(|data: &[u8]| {
    let Some((&piece, rest)) = data.split_first() else {
        return;
    };
    let mut decoder = ElectionStreamDecoder::accepted();
    for chunk in rest.chunks(usize::from(piece).max(1)) {
        decoder.push(chunk);
        while let Ok(Some(frame)) = decoder.next_frame() {
            if let ElectionFrame::Message(message) = frame {
                if let Ok(notification) = Notification::decode(&message) {
                    let again = Notification::decode(&notification.encode());
                    assert!(again.is_ok());
                }
            }
        }
    }
});
