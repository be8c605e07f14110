//! Failed logins rate-limited per user and per address: a fixed window of failures, counted on
//! the node that receives them (a brute force through one node is what this stops). Successful
//! logins never count, so many users behind one address (an office NAT, a load test) can all
//! sign in.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub struct LoginLimiter {
    window: Duration,
    max_attempts: u32,
    /// Keys tracked at most: a flood of failures from many addresses cannot grow the map
    /// past it (the oldest windows are forgotten first).
    max_entries: usize,
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Default bound of tracked users and addresses (about 100 bytes each).
pub const DEFAULT_ENTRIES: usize = 100_000;

impl LoginLimiter {
    pub fn new(window: Duration, max_attempts: u32, max_entries: usize) -> LoginLimiter {
        LoginLimiter {
            window,
            max_attempts,
            max_entries: max_entries.max(1),
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Keys tracked now (`/metrics`, tests).
    pub fn len(&self) -> usize {
        self.counts.lock().len()
    }

    /// False when any key has had too many failures in its current window.
    pub fn allow(&self, keys: &[String]) -> bool {
        let now = Instant::now();
        let counts = self.counts.lock();
        keys.iter().all(|key| match counts.get(key) {
            Some((start, failures)) => {
                now.duration_since(*start) >= self.window || *failures < self.max_attempts
            }
            None => true,
        })
    }

    /// Counts a failed attempt against each key.
    pub fn failed(&self, keys: &[String]) {
        let now = Instant::now();
        let mut counts = self.counts.lock();
        if counts.len() + keys.len() > self.max_entries {
            counts.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        if counts.len() + keys.len() > self.max_entries {
            // Still full of live windows: forget the oldest quarter (amortizes the sort).
            let mut starts: Vec<Instant> = counts.values().map(|(start, _)| *start).collect();
            if !starts.is_empty() {
                let cut = (starts.len() / 4).max(keys.len()).min(starts.len() - 1);
                let (_, oldest_kept, _) = starts.select_nth_unstable(cut);
                let oldest_kept = *oldest_kept;
                counts.retain(|_, (start, _)| *start > oldest_kept);
            }
        }
        for key in keys {
            let entry = counts.entry(key.clone()).or_insert((now, 0));
            if now.duration_since(entry.0) >= self.window {
                *entry = (now, 0);
            }
            entry.1 += 1;
        }
    }

    /// A successful login clears the user's count.
    pub fn reset(&self, key: &str) {
        self.counts.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key() {
        let limiter = LoginLimiter::new(Duration::from_secs(60), 3, 100);
        let keys = vec!["user:a".to_string(), "ip:1".to_string()];
        assert!(
            (0..10).all(|_| limiter.allow(&keys)),
            "checking is not failing"
        );
        for _ in 0..3 {
            assert!(limiter.allow(&keys));
            limiter.failed(&keys);
        }
        assert!(!limiter.allow(&keys));
        assert!(limiter.allow(&["user:b".to_string()]));
        limiter.reset("user:a");
        assert!(!limiter.allow(&keys), "the address is still limited");
    }

    #[test]
    fn tracked_keys_stay_bounded() {
        let limiter = LoginLimiter::new(Duration::from_secs(600), 3, 1000);
        for n in 0..10_000 {
            limiter.failed(&[format!("user:{n}"), format!("ip:{n}")]);
            assert!(limiter.len() <= 1000, "{} keys after {n}", limiter.len());
        }
        assert!(limiter.len() >= 500, "recent failures are still tracked");
        let recent = [format!("user:{}", 9_999)];
        limiter.failed(&recent);
        limiter.failed(&recent);
        assert!(!limiter.allow(&recent), "the newest key kept its count");
    }
}
