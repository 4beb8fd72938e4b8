//! Sharded nights (docs/fleet.md): `upload --all-stores --shard I/N` runs only the stores whose stable
//! hash of the name falls in shard I of N, so that N processes — the N pods of a Kubernetes Indexed
//! Job, say — share a night without any coordinator. Every store is in exactly one shard, and a store
//! moves only when N changes.

/// Which shard of how many, as given: `I/N`, or `auto/N` for the index Kubernetes gives each pod of an
/// Indexed Job in `JOB_COMPLETION_INDEX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardSpec {
    /// `None` for `auto`.
    pub index: Option<u32>,
    pub count: u32,
}

/// The variable an Indexed Job sets in each pod.
pub const JOB_COMPLETION_INDEX: &str = "JOB_COMPLETION_INDEX";

impl std::str::FromStr for ShardSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not I/N (e.g. 0/4) or auto/N"))?;
        let count: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{count:?} is not a shard count of 1 or more"))?;
        let index = match index.trim() {
            "auto" => None,
            i => Some(
                i.parse::<u32>()
                    .ok()
                    .filter(|i| *i < count)
                    .ok_or_else(|| format!("{i:?} is not a shard from 0 to {}", count - 1))?,
            ),
        };
        Ok(Self { index, count })
    }
}

impl ShardSpec {
    /// The shard this process runs: the given index, or `JOB_COMPLETION_INDEX` for `auto`.
    ///
    /// Fails when `auto` finds no usable index.
    pub fn resolve(self, env: &dyn Fn(&str) -> Option<String>) -> Result<Shard, String> {
        let index = match self.index {
            Some(i) => i,
            None => {
                let text = env(JOB_COMPLETION_INDEX).ok_or_else(|| {
                    format!(
                        "--shard auto/{} reads {JOB_COMPLETION_INDEX}, which is not set (a \
                         Kubernetes Indexed Job sets it in each pod)",
                        self.count
                    )
                })?;
                text.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|i| *i < self.count)
                    .ok_or_else(|| {
                        format!(
                            "{JOB_COMPLETION_INDEX}={text:?} is not a shard from 0 to {}",
                            self.count - 1
                        )
                    })?
            }
        };
        Ok(Shard {
            index,
            count: self.count,
        })
    }
}

/// One shard of a night.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Whether the store named `name` is in this shard.
    pub fn holds(self, name: &str) -> bool {
        of(name, self.count) == self.index
    }
}

/// The shard of `name` among `count`: from a hash of the name that never changes between versions or
/// machines (BLAKE3, not Rust's randomized hasher).
pub fn of(name: &str, count: u32) -> u32 {
    let hash = blake3::hash(name.as_bytes());
    let value = u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"));
    (value % u64::from(count)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_store_is_in_exactly_one_shard() {
        let stores: Vec<String> = (0..500).map(|i| format!("store-{i}")).collect();
        for count in [1, 2, 4, 7] {
            let mut seen = vec![0; stores.len()];
            for index in 0..count {
                let shard = Shard { index, count };
                for (i, store) in stores.iter().enumerate() {
                    seen[i] += usize::from(shard.holds(store));
                }
            }
            assert!(seen.iter().all(|n| *n == 1), "count {count}");
        }
        // Spread evenly enough that no shard idles.
        let in_first = stores.iter().filter(|s| of(s, 4) == 0).count();
        assert!((90..160).contains(&in_first), "{in_first}");
        // Stable: the same store, the same shard, every time.
        assert_eq!(of("north", 4), of("north", 4));
    }

    #[test]
    fn specs_parse_and_auto_reads_the_job_index() {
        assert_eq!(
            "1/4".parse(),
            Ok(ShardSpec {
                index: Some(1),
                count: 4
            })
        );
        assert_eq!(
            "auto/4".parse(),
            Ok(ShardSpec {
                index: None,
                count: 4
            })
        );
        for bad in ["4/4", "1/0", "x/2", "1-4"] {
            assert!(bad.parse::<ShardSpec>().is_err(), "{bad}");
        }
        let auto: ShardSpec = "auto/4".parse().unwrap();
        let env = |name: &str| (name == JOB_COMPLETION_INDEX).then(|| "3".to_owned());
        assert_eq!(auto.resolve(&env), Ok(Shard { index: 3, count: 4 }));
        assert!(auto.resolve(&|_| None).unwrap_err().contains("not set"));
        let wrong = |_: &str| Some("9".to_owned());
        assert!(auto.resolve(&wrong).is_err());
    }
}
