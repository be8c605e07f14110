//! Synthetic words for realistic text: a vocabulary of distinct syllable strings (stable across
//! runs) drawn with a Zipf-like law, as words are in real messages. The search bench builds its
//! data set from it, and `confab-load mix` writes its posts and picks its search terms from it,
//! so the load tool's searches find what its users wrote.

use rand::Rng;

const SYLLABLES: [&str; 20] = [
    "ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "ve", "da", "gu", "sho", "ber", "lin", "tor",
    "fa", "zen", "qui", "mar", "dus",
];

/// Word `rank` of the vocabulary.
pub fn word(rank: usize) -> String {
    let mut n = rank;
    let mut out = String::new();
    loop {
        out.push_str(SYLLABLES[n % SYLLABLES.len()]);
        n /= SYLLABLES.len();
        if n == 0 {
            break;
        }
    }
    out.push_str(["a", "o", "e", "um", "ix"][rank % 5]);
    out
}

/// Cumulative Zipf weights (s = 1.0) over a vocabulary of `n` words.
pub struct Zipf(Vec<f64>);

impl Zipf {
    pub fn new(n: usize) -> Zipf {
        let mut acc = 0.0;
        Zipf(
            (1..=n.max(1))
                .map(|r| {
                    acc += 1.0 / r as f64;
                    acc
                })
                .collect(),
        )
    }

    /// A rank, 0 the most common.
    pub fn draw(&self, rng: &mut impl Rng) -> usize {
        let total = self.0.last().copied().unwrap_or(1.0);
        let x = rng.random::<f64>() * total;
        self.0.partition_point(|c| *c < x).min(self.0.len() - 1)
    }

    /// `count` words drawn by the law, joined by spaces.
    pub fn sentence(&self, rng: &mut impl Rng, count: usize) -> String {
        (0..count)
            .map(|_| word(self.draw(rng)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::HashSet;

    #[test]
    fn words_are_distinct() {
        let words: HashSet<String> = (0..4_000).map(word).collect();
        assert_eq!(words.len(), 4_000);
    }

    #[test]
    fn the_first_word_is_drawn_most() {
        let zipf = Zipf::new(4_000);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut counts = vec![0u32; 4_000];
        for _ in 0..100_000 {
            counts[zipf.draw(&mut rng)] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[10] && counts[10] > counts[1_000]);
    }
}
