//! Session ids and passwords, as ZooKeeper makes them.
//!
//! A session id is `(server_id << 56) | ((start_ms << 24) >>> 8)` and then
//! incremented for each new session (`SessionTrackerImpl`), so ids from
//! different servers and different starts do not collide. The password is a
//! pure function of the id — `java.util.Random(id ^ SECRET).nextBytes(16)` —
//! which is what lets any server of an ensemble (or this one after a restart)
//! check a reconnecting client's password without having stored it.

/// The constant ZooKeeper mixes into the password seed.
const PASSWORD_SECRET: i64 = 0xB341_5C00;

pub const PASSWORD_LENGTH: usize = 16;

/// The first session id a server hands out after starting at `now_ms`.
pub fn initial_session_id(server_id: u8, now_ms: i64) -> i64 {
    let time_part = ((now_ms << 24) as u64 >> 8) as i64;
    (i64::from(server_id) << 56) | time_part
}

/// The password a client must present to reconnect to `session_id`.
pub fn session_password(session_id: i64) -> [u8; PASSWORD_LENGTH] {
    let mut random = JavaRandom::new(session_id ^ PASSWORD_SECRET);
    let mut password = [0u8; PASSWORD_LENGTH];
    random.next_bytes(&mut password);
    password
}

/// `java.util.Random`: the 48-bit linear congruential generator, so that our
/// passwords are byte-for-byte those an Apache ZooKeeper server would accept.
#[derive(Debug)]
struct JavaRandom {
    seed: u64,
}

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const ADDEND: u64 = 0xB;
    const MASK: u64 = (1 << 48) - 1;

    fn new(seed: i64) -> Self {
        Self {
            seed: (seed as u64 ^ Self::MULTIPLIER) & Self::MASK,
        }
    }

    fn next_i32(&mut self) -> i32 {
        self.seed = (self
            .seed
            .wrapping_mul(Self::MULTIPLIER)
            .wrapping_add(Self::ADDEND))
            & Self::MASK;
        (self.seed >> 16) as i32
    }

    fn next_bytes(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(4) {
            let mut value = self.next_i32();
            for byte in chunk {
                *byte = value as u8;
                value >>= 8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_random_matches_the_jdk() {
        // new java.util.Random(42).nextInt() x3, as printed by a JDK.
        let mut random = JavaRandom::new(42);
        assert_eq!(random.next_i32(), -1_170_105_035);
        assert_eq!(random.next_i32(), 234_785_527);
        assert_eq!(random.next_i32(), -1_360_544_799);
    }

    #[test]
    fn session_ids_carry_the_server_id_and_time() {
        let id = initial_session_id(3, 0x0123_4567_89AB);
        assert_eq!(id >> 56, 3);
        assert_eq!(
            (id >> 16) & 0xFF_FFFF_FFFF,
            0x0123_4567_89AB & 0xFF_FFFF_FFFF
        );
        assert_eq!(id & 0xFFFF, 0);
    }

    #[test]
    fn passwords_are_a_function_of_the_id() {
        assert_eq!(session_password(7), session_password(7));
        assert_ne!(session_password(7), session_password(8));
    }

    #[test]
    fn password_matches_what_java_computes() {
        // new java.util.Random(7L ^ 0xB3415C00L).nextBytes(b), printed by a JDK 17.
        let java: [i8; 16] = [
            43, -114, -69, 74, 119, -55, 59, 60, 0, 109, -47, 56, -77, -124, 25, -96,
        ];
        assert_eq!(session_password(7), java.map(|b| b as u8));
    }
}
