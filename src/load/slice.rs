//! A process's slice of the global schedule (`load --shard I/N`): process
//! `I` of `N` owns exactly the request numbers `n ≡ I (mod N)`. Inside the
//! process the engine splits its slice again between its `T` load threads
//! the same way, so thread `t` owns `n = I + N·(t + T·k)`. Because the
//! seeded fault plan is decided per request number, N processes together
//! send the scenario's exact schedule and exact faults. Pure arithmetic.

use std::fmt;

/// Which share of the request numbers a process sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    pub index: u64,
    pub count: u64,
}

impl Default for Slice {
    fn default() -> Self {
        Slice::WHOLE
    }
}

impl fmt::Display for Slice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Slice {
    /// The whole schedule: one process.
    pub const WHOLE: Slice = Slice { index: 0, count: 1 };

    /// Slice `index` of `count`; None unless `index < count`.
    pub fn new(index: u64, count: u64) -> Option<Slice> {
        (index < count).then_some(Slice { index, count })
    }

    /// First request number and stride of load thread `thread` of `threads`.
    pub fn thread_numbers(&self, thread: usize, threads: usize) -> (u64, u64) {
        (
            self.index + self.count * thread as u64,
            self.count * threads as u64,
        )
    }

    /// The global request number of this slice's `k`-th request (closed
    /// loop: `k` comes from the process's own counter).
    pub fn global(&self, k: u64) -> u64 {
        self.index + self.count * k
    }

    /// Of the request numbers `0..total`, how many are this slice's.
    pub fn share_of(&self, total: u64) -> u64 {
        total / self.count + u64::from(self.index < total % self.count)
    }

    /// This slice's share of a count split like the numbers (concurrency,
    /// the in-flight bound).
    pub fn share_usize(&self, total: usize) -> usize {
        self.share_of(total as u64) as usize
    }
}

/// `--shard I/N`, or `/N` with `I` from `$JOB_COMPLETION_INDEX` (a
/// Kubernetes Indexed Job sets it in every pod).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardArg {
    pub index: Option<u64>,
    pub count: u64,
}

pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// Parses `I/N` or `/N` (clap value parser).
pub fn parse_shard(s: &str) -> Result<ShardArg, String> {
    let hint = "expected I/N (e.g. 0/4), or /N to take I from $JOB_COMPLETION_INDEX";
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("\"{s}\": {hint}"))?;
    let count: u64 =
        n.trim().parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
            format!("\"{s}\": the shard count must be a whole number ≥ 1; {hint}")
        })?;
    let index = match i.trim() {
        "" => None,
        i => Some(
            i.parse::<u64>()
                .map_err(|_| format!("\"{s}\": the shard index must be a whole number; {hint}"))?,
        ),
    };
    if let Some(i) = index
        && i >= count
    {
        return Err(format!(
            "\"{s}\": shard index {i} is not below the shard count {count} (indices are 0..{})",
            count - 1
        ));
    }
    Ok(ShardArg { index, count })
}

impl ShardArg {
    /// The slice, taking a missing index from `env_index` (the value of
    /// `$JOB_COMPLETION_INDEX`, if set).
    pub fn resolve(&self, env_index: Option<&str>) -> Result<Slice, String> {
        let index = match self.index {
            Some(i) => i,
            None => {
                let raw = env_index.ok_or_else(|| {
                    format!(
                        "--shard /{} needs the shard index from ${INDEX_ENV}, which is not set (hint: pass --shard I/{})",
                        self.count, self.count
                    )
                })?;
                raw.trim().parse::<u64>().map_err(|_| {
                    format!(
                        "${INDEX_ENV} = \"{raw}\" is not a whole number (hint: pass --shard I/{})",
                        self.count
                    )
                })?
            }
        };
        Slice::new(index, self.count).ok_or_else(|| {
            format!(
                "shard index {index} (from ${INDEX_ENV}) is not below the shard count {} (hint: parallelism and completions of the Job must equal N)",
                self.count
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request number of the schedule, for each (N, T): the numbers
    /// the threads of all processes send are exactly 0..total, each once.
    #[test]
    fn processes_and_threads_partition_the_schedule_exactly() {
        let total = 1000u64;
        for n in 1..=7u64 {
            for t in 1..=5usize {
                let mut seen = vec![0u32; total as usize];
                for i in 0..n {
                    let slice = Slice::new(i, n).unwrap();
                    let mut mine = 0;
                    for thread in 0..t {
                        let (mut k, stride) = slice.thread_numbers(thread, t);
                        while k < total {
                            assert_eq!(k % n, i, "thread {thread} of slice {slice} sent {k}");
                            seen[k as usize] += 1;
                            mine += 1;
                            k += stride;
                        }
                    }
                    assert_eq!(mine, slice.share_of(total), "slice {slice} T={t}");
                }
                assert!(seen.iter().all(|&c| c == 1), "N={n} T={t}: {seen:?}");
            }
        }
    }

    #[test]
    fn closed_loop_numbers_are_the_slice_residues() {
        let s = Slice::new(2, 4).unwrap();
        let got: Vec<u64> = (0..4).map(|k| s.global(k)).collect();
        assert_eq!(got, vec![2, 6, 10, 14]);
        assert_eq!(Slice::WHOLE.global(7), 7);
    }

    #[test]
    fn shares_sum_to_the_total() {
        for total in [0u64, 1, 3, 4, 5, 99, 100, 101] {
            for n in 1..=6 {
                let sum: u64 = (0..n)
                    .map(|i| Slice::new(i, n).unwrap().share_of(total))
                    .sum();
                assert_eq!(sum, total, "total {total} N {n}");
            }
        }
        assert_eq!(Slice::new(3, 4).unwrap().share_of(7), 1);
        assert_eq!(Slice::new(2, 4).unwrap().share_of(7), 2);
    }

    #[test]
    fn shard_arguments() {
        let ok = |s: &str| parse_shard(s).unwrap();
        assert_eq!(
            ok("0/4"),
            ShardArg {
                index: Some(0),
                count: 4
            }
        );
        assert_eq!(
            ok("3/4"),
            ShardArg {
                index: Some(3),
                count: 4
            }
        );
        assert_eq!(
            ok("/4"),
            ShardArg {
                index: None,
                count: 4
            }
        );
        for bad in ["4/4", "4", "a/4", "1/0", "1/x", "-1/4"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
        let env = ok("/4");
        assert_eq!(env.resolve(Some("2")), Ok(Slice::new(2, 4).unwrap()));
        let unset = env.resolve(None).unwrap_err();
        assert!(
            unset.contains("JOB_COMPLETION_INDEX") && unset.contains("not set"),
            "{unset}"
        );
        let high = env.resolve(Some("4")).unwrap_err();
        assert!(high.contains("not below the shard count 4"), "{high}");
        assert!(env.resolve(Some("x")).is_err());
        // An explicit index wins over the environment.
        assert_eq!(ok("1/4").resolve(Some("3")), Ok(Slice::new(1, 4).unwrap()));
    }
}
