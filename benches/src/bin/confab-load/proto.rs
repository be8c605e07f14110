//! What the coordinator and its worker processes say to each other (one JSON object per line:
//! the spec and commands on the worker's stdin, reports on its stdout), and the channel layout
//! that `fanout` and `baseline` share so both serve the same receivers.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Which users are in which channel. Channel `c` holds the `channel_size` users starting at
/// `c * channel_size` (wrapping around), so every user is in about `channels_per_user`
/// channels and every channel has exactly `channel_size` members.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Layout {
    pub users: u32,
    pub channel_size: u32,
    pub channels_per_user: u32,
}

impl Layout {
    pub fn channels(&self) -> u32 {
        let members = self.users as u64 * self.channels_per_user.max(1) as u64;
        members.div_ceil(self.channel_size.max(1) as u64).max(1) as u32
    }

    pub fn channel_size(&self) -> u32 {
        self.channel_size.min(self.users).max(1)
    }

    /// The `i`-th member of channel `c`, as a user index.
    pub fn member(&self, channel: u32, i: u32) -> u32 {
        let start = channel as u64 * self.channel_size() as u64;
        ((start + i as u64) % self.users.max(1) as u64) as u32
    }

    /// The members of channel `c`, as user indices.
    pub fn members(&self, channel: u32) -> impl Iterator<Item = u32> + '_ {
        (0..self.channel_size()).map(move |i| self.member(channel, i))
    }

    /// A random channel and a random member of it (who posts there).
    pub fn random_post(&self, rng: &mut impl rand::Rng) -> (u32, u32) {
        let channel = rng.random_range(0..self.channels());
        (
            channel,
            self.member(channel, rng.random_range(0..self.channel_size())),
        )
    }

    /// The channels user `u` is in.
    pub fn channels_of(&self, user: u32) -> Vec<u32> {
        (0..self.channels())
            .filter(|&c| {
                let start = (c as u64 * self.channel_size() as u64) % self.users as u64;
                let offset = (user as u64 + self.users as u64 - start) % self.users as u64;
                offset < self.channel_size() as u64
            })
            .collect()
    }
}

/// The message text of a load post: a marker the receivers find without parsing JSON (letters,
/// digits and spaces only, so it survives JSON escaping unchanged), then padding.
pub const MARKER: &[u8] = b"cl1 ";

/// `cl1 <run> <post_no> <scheduled_unix_ns> xxxx…`, `len` bytes at least.
pub fn post_message(run: u32, post_no: u64, scheduled_ns: u64, len: usize) -> String {
    let mut text = format!("cl1 {run:08x} {post_no} {scheduled_ns} ");
    while text.len() < len {
        text.push('x');
    }
    text
}

/// The (post_no, scheduled_ns) of a frame carrying a load post of run `run`.
pub fn parse_marker(frame: &[u8], run: u32) -> Option<(u64, u64)> {
    let at = memchr::memmem::find(frame, MARKER)?;
    let mut fields = frame[at + MARKER.len()..].splitn(4, |&b| b == b' ');
    let run_field = fields.next()?;
    if run_field.len() != 8
        || u32::from_str_radix(std::str::from_utf8(run_field).ok()?, 16).ok()? != run
    {
        return None;
    }
    let post_no = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
    let scheduled = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
    Some((post_no, scheduled))
}

/// Nanoseconds since the Unix epoch: the clock every process on this machine shares.
pub fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// What kind of server a worker's sockets talk to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// confab: `/api/v4/websocket` with a bearer token; hello, seq and resume.
    Confab,
    /// The bare broadcaster: `/ws?user=N`, no auth, no envelope rules.
    Baseline,
}

/// One socket a worker opens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnSpec {
    /// User index in the layout.
    pub user: u32,
    /// `host:port` of the node it connects to.
    pub addr: String,
    /// Session token (confab).
    pub token: Option<String>,
    /// User id (confab; mix mode).
    pub user_id: Option<String>,
}

/// The first line a worker reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub worker: u32,
    pub target: Target,
    pub run: u32,
    /// Local addresses the worker spreads its sockets over.
    pub source_ips: Vec<Ipv4Addr>,
    pub conns: Vec<ConnSpec>,
    /// Sockets being opened at once.
    pub connect_concurrency: usize,
    /// Present in `mix` mode: the simulated users' behaviour.
    pub mix: Option<crate::mix::MixSpec>,
}

/// Commands on the worker's stdin after the spec.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Send the totals since the previous collect (a `Final` line) and start a new window.
    Collect,
    /// Send the totals of the last window and exit.
    Stop,
    /// Close every socket and reopen it (resuming its stream), each after a random delay of
    /// up to `spread_ms`: a mass reconnect. No answer; reopened sockets show in `reconnects`.
    Reconnect { spread_ms: u64 },
}

/// Lines on the worker's stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Report {
    /// Every socket was tried.
    Ready {
        opened: u64,
        /// User indices whose socket did not open.
        failed_users: Vec<u32>,
        first_error: Option<String>,
    },
    /// Running totals, about every 250 ms.
    Progress {
        deliveries: u64,
        open: u64,
        reconnects: u64,
        /// mix: requests and errors so far, and requests in the last interval.
        requests: u64,
        errors: u64,
        /// mix: latency histogram (µs) of the requests since the previous progress line.
        interval_hist: Option<String>,
    },
    /// At `Stop`.
    Final(Box<FinalReport>),
}

/// A worker's totals for one window (between two collects).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FinalReport {
    /// post→receive latency (µs), encoded by `report::encode`.
    pub receive_hist: String,
    pub deliveries: u64,
    pub duplicates: u64,
    /// Deliveries received per post number: `(post_no, count)`.
    pub per_post: Vec<(u64, u32)>,
    pub reconnects: u64,
    /// Sockets that closed and could not be reopened.
    pub lost: u64,
    /// mix: request latency per action (µs), encoded, and counts.
    pub requests: Vec<ActionTotals>,
    pub errors: u64,
    pub first_errors: Vec<String>,
    /// Why sockets closed: "<code> <reason>" or "read error: …", with counts (since start).
    pub closes: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ActionTotals {
    pub action: String,
    pub hist: String,
    pub count: u64,
    pub errors: u64,
    /// Refused with a 4xx (not an error by load-test-ng's rules, but reported).
    pub rejected: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_members_and_channels_agree() {
        let layout = Layout {
            users: 10,
            channel_size: 4,
            channels_per_user: 2,
        };
        assert_eq!(layout.channels(), 5);
        for c in 0..layout.channels() {
            for u in layout.members(c) {
                assert!(layout.channels_of(u).contains(&c));
            }
        }
        let total: usize = (0..10).map(|u| layout.channels_of(u).len()).sum();
        assert_eq!(total, 20);
        let mut rng: rand::rngs::StdRng = rand::SeedableRng::seed_from_u64(1);
        for _ in 0..200 {
            let (channel, poster) = layout.random_post(&mut rng);
            assert!(
                layout.members(channel).any(|u| u == poster),
                "posters are members"
            );
        }
    }

    #[test]
    fn marker_round_trip() {
        let text = post_message(0xabc, 42, 1_700_000_000_000_000_000, 100);
        assert!(text.len() >= 100);
        let frame =
            format!(r#"{{"event":"posted","data":{{"post":"{{\"message\":\"{text}\"}}"}}}}"#);
        assert_eq!(
            parse_marker(frame.as_bytes(), 0xabc),
            Some((42, 1_700_000_000_000_000_000))
        );
        assert_eq!(parse_marker(frame.as_bytes(), 0xabd), None);
        assert_eq!(parse_marker(b"no marker here", 1), None);
    }
}
