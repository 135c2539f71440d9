//! Masking keys for the generator's client frames: cheap, and different for
//! every frame and connection. The masking itself is the shared codec's
//! ([`duplex_protocol::frame::apply_mask`]).

/// Masking keys for one connection: xorshift64*, seeded per connection.
///
/// RFC 6455 asks for keys an intermediary cannot predict, to stop cache
/// poisoning through proxies; a load generator on loopback has no such
/// adversary, so a fast generator that still varies the key per frame (and
/// so exercises the server's unmasking honestly) is enough.
#[derive(Debug, Clone)]
pub struct MaskKeys {
    state: u64,
}

impl MaskKeys {
    /// A sequence seeded from `seed` (any value; zero is remapped).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    /// The next key.
    pub fn next_key(&mut self) -> [u8; 4] {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        let high = x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32;
        (high as u32).to_ne_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_keys_vary() {
        let mut keys = MaskKeys::new(0);
        let first = keys.next_key();
        assert!((0..100).any(|_| keys.next_key() != first));
        assert_ne!(MaskKeys::new(1).next_key(), MaskKeys::new(2).next_key());
    }
}
