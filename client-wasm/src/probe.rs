//! RTT probes: timestamped text messages sent through the echo endpoint and
//! recognised when they come back. Plain Rust.
//!
//! A probe reads `duplex-rtt <nonce> <seq> <sent_ms>`. The nonce is random
//! per connection manager, so a person typing the same text (or another tab)
//! is never mistaken for a probe. The send time travels in the message, so
//! nothing needs to be remembered per probe.

/// Start of every probe message.
pub const PREFIX: &str = "duplex-rtt ";

/// Makes and recognises the probes of one connection manager.
#[derive(Debug, Clone)]
pub struct Prober {
    nonce: u32,
    next_seq: u64,
}

/// A probe that came back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeReply {
    /// Its sequence number.
    pub seq: u64,
    /// Time from sending to receiving it, in milliseconds.
    pub rtt_ms: f64,
}

impl Prober {
    /// A prober with the given nonce (random in the browser).
    pub fn new(nonce: u32) -> Self {
        Self { nonce, next_seq: 0 }
    }

    /// The next probe's text, stamped with `now_ms` (a monotonic clock).
    pub fn probe(&mut self, now_ms: f64) -> String {
        let seq = self.next_seq;
        self.next_seq += 1;
        // Microseconds are plenty; `fixed` keeps float formatting out.
        let sent = crate::format::fixed(now_ms, 3);
        format!("{PREFIX}{:08x} {seq} {sent}", self.nonce)
    }

    /// If `text` is one of our probes, its round-trip time at `now_ms`.
    pub fn reply(&self, text: &str, now_ms: f64) -> Option<ProbeReply> {
        let rest = text.strip_prefix(PREFIX)?;
        let mut fields = rest.split(' ');
        let nonce = u32::from_str_radix(fields.next()?, 16).ok()?;
        let seq: u64 = fields.next()?.parse().ok()?;
        // `ms.mmm`, read as integers: parsing a float would link core's
        // float parser into the .wasm for this one field.
        let (ms, micros) = fields.next()?.split_once('.')?;
        if nonce != self.nonce || fields.next().is_some() || micros.len() != 3 {
            return None;
        }
        let micros: u16 = micros.parse().ok()?;
        let sent = ms.parse::<u64>().ok()? as f64 + f64::from(micros) / 1000.0;
        Some(ProbeReply {
            seq,
            rtt_ms: (now_ms - sent).max(0.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_comes_back_with_its_round_trip_time() {
        let mut prober = Prober::new(0xabcd_1234);
        let probe = prober.probe(1000.25);
        assert_eq!(probe, "duplex-rtt abcd1234 0 1000.250");
        let reply = prober.reply(&probe, 1003.5).expect("our probe");
        assert_eq!(reply.seq, 0);
        assert!((reply.rtt_ms - 3.25).abs() < 1e-9);
        assert!(prober.probe(0.0).contains(" 1 "));
    }

    #[test]
    fn other_text_is_not_a_probe() {
        let mut ours = Prober::new(1);
        let theirs = Prober::new(2).probe(5.0);
        assert_eq!(ours.reply(&theirs, 6.0), None);
        assert_eq!(ours.reply("hello", 6.0), None);
        assert_eq!(ours.reply("duplex-rtt 00000001 x 5", 6.0), None);
        assert_eq!(ours.reply("duplex-rtt 00000001 0 5", 6.0), None);
        assert_eq!(ours.reply("duplex-rtt 00000001 0 5.1234", 6.0), None);
        let probe = ours.probe(5.0);
        assert_eq!(ours.reply(&format!("{probe} extra"), 6.0), None);
    }
}
