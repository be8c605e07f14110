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
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

impl LoginLimiter {
    pub fn new(window: Duration, max_attempts: u32) -> LoginLimiter {
        LoginLimiter {
            window,
            max_attempts,
            counts: Mutex::new(HashMap::new()),
        }
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
        if counts.len() > 100_000 {
            counts.retain(|_, (start, _)| now.duration_since(*start) < self.window);
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
        let limiter = LoginLimiter::new(Duration::from_secs(60), 3);
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
}
