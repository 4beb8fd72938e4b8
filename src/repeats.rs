//! Finding repeated `PartnerCustomerID`s in memory that does not grow with the export. Each id is
//! noted as a 24-byte key (its 64-bit hash, its record's line, where its bytes are) with its bytes
//! beside the keys; past 2 MiB the keys are sorted by hash and line and spilled with their ids to an
//! anonymous temporary file. Once the whole export is read the sorted keys are walked (merged through
//! a heap when runs were spilled): only keys of one hash are compared by their ids, so a repeat is
//! found exactly, and a hash shared by different ids only costs a comparison. A million rows use
//! about 2 MiB of memory and 30 MiB of temporary disk; an export of up to about 60,000 rows never
//! touches the disk.
//!
//! The keys sort as plain numbers: sorting ids themselves (a comparison of their bytes for every
//! pair) made the check a sixth of the time spent reading an export (BENCHMARKS.md, "Fifth pass").
//!
//! A read that compares with the store's last upload (`upload`, `validate --store`) does not use this
//! log: the comparison sorts every id anyway and finds the repeats in the same pass
//! (`crate::changes::Comparing`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use xxhash_rust::xxh3::xxh3_64;

use crate::extsort::read_or_end;

/// Bytes of keys and ids kept in memory before a run is sorted and spilled.
const RUN_BUDGET: usize = 2 << 20;

/// Bytes buffered for each spilled run while the runs are merged.
const MERGE_BUFFER: usize = 1 << 14;

/// One id noted: its hash and its record's line (the order of sorting), and its bytes in the run's
/// `ids`.
#[derive(Clone, Copy)]
struct Key {
    hash: u64,
    line: u64,
    at: u32,
    len: u32,
}

/// The ids seen so far.
pub struct IdLog {
    keys: Vec<Key>,
    ids: Vec<u8>,
    budget: usize,
    spilled: Vec<File>,
    hash: fn(&[u8]) -> u64,
}

impl Default for IdLog {
    fn default() -> Self {
        Self::with(RUN_BUDGET, xxh3_64)
    }
}

impl IdLog {
    /// A log that spills past `budget` bytes and hashes ids with `hash` (tests give one that
    /// collides).
    fn with(budget: usize, hash: fn(&[u8]) -> u64) -> Self {
        Self {
            // Sized once for ids of about 8 bytes: a doubling Vec would overshoot the budget.
            keys: Vec::with_capacity(budget / (size_of::<Key>() + 8) + 1),
            ids: Vec::new(),
            budget,
            spilled: Vec::new(),
            hash,
        }
    }

    /// Notes the id of the record starting at `line`.
    ///
    /// Fails when a full run cannot be spilled to a temporary file.
    pub fn push(&mut self, id: &str, line: u64) -> io::Result<()> {
        let id = id.as_bytes();
        let too_long = || io::Error::other("an id longer than 4 GiB");
        self.keys.push(Key {
            hash: (self.hash)(id),
            line,
            at: u32::try_from(self.ids.len()).map_err(|_| too_long())?,
            len: u32::try_from(id.len()).map_err(|_| too_long())?,
        });
        self.ids.extend_from_slice(id);
        let full = self.keys.len() == self.keys.capacity()
            || self.keys.len() * size_of::<Key>() + self.ids.len() >= self.budget;
        if full { self.spill() } else { Ok(()) }
    }

    fn sort_run(&mut self) {
        self.keys.sort_unstable_by_key(|k| (k.hash, k.line));
    }

    /// Writes the run, sorted, as `hash line len id` records, and empties it.
    fn spill(&mut self) -> io::Result<()> {
        self.sort_run();
        let mut out = BufWriter::with_capacity(1 << 16, tempfile::tempfile()?);
        for key in &self.keys {
            out.write_all(&key.hash.to_le_bytes())?;
            out.write_all(&key.line.to_le_bytes())?;
            out.write_all(&key.len.to_le_bytes())?;
            out.write_all(id_of(&self.ids, key))?;
        }
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        self.spilled.push(file);
        self.keys.clear();
        self.ids.clear();
        Ok(())
    }

    /// Calls `repeat(line, first_line, id)` for every record whose id an earlier record already had.
    ///
    /// Fails when a spilled run cannot be read back, or when `repeat` fails.
    pub fn repeats<E>(
        mut self,
        io_error: impl Fn(io::Error) -> E,
        repeat: impl FnMut(u64, u64, &str) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut groups = Groups::new(repeat);
        if self.spilled.is_empty() {
            self.sort_run();
            for key in &self.keys {
                groups.next(key.hash, key.line, id_of(&self.ids, key))?;
            }
            return Ok(());
        }
        if !self.keys.is_empty() {
            self.spill().map_err(&io_error)?;
        }
        let mut runs: Vec<Run> = self.spilled.into_iter().map(Run::new).collect();
        let mut heap = BinaryHeap::with_capacity(runs.len());
        for (i, run) in runs.iter_mut().enumerate() {
            if run.advance().map_err(&io_error)? {
                heap.push(Reverse((run.hash, run.line, i)));
            }
        }
        while let Some(Reverse((hash, line, i))) = heap.pop() {
            groups.next(hash, line, &runs[i].id)?;
            if runs[i].advance().map_err(&io_error)? {
                heap.push(Reverse((runs[i].hash, runs[i].line, i)));
            }
        }
        Ok(())
    }
}

/// The bytes of `key`'s id in its run's `ids`.
fn id_of<'a>(ids: &'a [u8], key: &Key) -> &'a [u8] {
    &ids[key.at as usize..][..key.len as usize]
}

/// Walks ids in order of hash and line, reporting each repeat with the first line of its id: within
/// one hash, the distinct ids seen so far are compared byte for byte.
struct Groups<F> {
    hash: Option<u64>,
    /// The distinct ids of the current hash with their first lines, as ranges of `bytes`.
    firsts: Vec<(std::ops::Range<usize>, u64)>,
    bytes: Vec<u8>,
    repeat: F,
}

impl<F> Groups<F> {
    fn new(repeat: F) -> Self {
        Self {
            hash: None,
            firsts: Vec::new(),
            bytes: Vec::new(),
            repeat,
        }
    }

    fn next<E>(&mut self, hash: u64, line: u64, id: &[u8]) -> Result<(), E>
    where
        F: FnMut(u64, u64, &str) -> Result<(), E>,
    {
        if self.hash != Some(hash) {
            self.hash = Some(hash);
            self.firsts.clear();
            self.bytes.clear();
        }
        let bytes = &self.bytes;
        match self
            .firsts
            .iter()
            .find(|(range, _)| &bytes[range.clone()] == id)
        {
            Some(&(_, first)) => (self.repeat)(line, first, &String::from_utf8_lossy(id)),
            None => {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(id);
                self.firsts.push((start..self.bytes.len(), line));
                Ok(())
            }
        }
    }
}

/// A spilled run being read: its current record.
struct Run {
    input: BufReader<File>,
    hash: u64,
    line: u64,
    id: Vec<u8>,
}

impl Run {
    fn new(file: File) -> Self {
        Self {
            input: BufReader::with_capacity(MERGE_BUFFER, file),
            hash: 0,
            line: 0,
            id: Vec::new(),
        }
    }

    /// Reads the next record; false at the end of the run.
    fn advance(&mut self) -> io::Result<bool> {
        let mut head = [0u8; 20];
        if !read_or_end(&mut self.input, &mut head)? {
            return Ok(false);
        }
        self.hash = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        self.line = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(head[16..].try_into().expect("4 bytes"));
        self.id.resize(len as usize, 0);
        self.input.read_exact(&mut self.id)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn repeats_of(ids: &[String]) -> Vec<(u64, u64)> {
        repeats_with(ids, RUN_BUDGET, xxh3_64)
    }

    fn repeats_with(ids: &[String], budget: usize, hash: fn(&[u8]) -> u64) -> Vec<(u64, u64)> {
        let mut log = IdLog::with(budget, hash);
        for (i, id) in ids.iter().enumerate() {
            log.push(id, i as u64 + 2).unwrap();
        }
        let mut found = Vec::new();
        log.repeats(
            |e| e,
            |line, first, id| {
                assert_eq!(id, ids[line as usize - 2]);
                found.push((line, first));
                Ok(())
            },
        )
        .unwrap();
        found.sort_unstable();
        found
    }

    /// Each repeat with the first line of its id, found by comparing every pair.
    fn expected(ids: &[String]) -> Vec<(u64, u64)> {
        let mut expected = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            if let Some(first) = ids[..i].iter().position(|x| x == id) {
                expected.push((i as u64 + 2, first as u64 + 2));
            }
        }
        expected.sort_unstable();
        expected
    }

    /// A hash under which most different ids collide.
    fn by_length(id: &[u8]) -> u64 {
        id.len() as u64
    }

    #[test]
    fn each_repeat_names_the_first_line_with_its_id() {
        let ids: Vec<String> = ["a", "b", "a", "c", "a", "b"].map(String::from).to_vec();
        assert_eq!(repeats_of(&ids), [(4, 2), (6, 2), (7, 3)]);
    }

    #[test]
    fn runs_spilled_to_disk_are_merged() {
        const RUN: usize = 1000;
        let mut ids: Vec<String> = (0..RUN * 2 + 10).map(|i| format!("C{i}")).collect();
        ids.push("C5".into());
        ids.push(format!("C{}", RUN + 3));
        // About 1000 ids a run (keys, and ids of 5 bytes): three runs spilled.
        let budget = RUN * (size_of::<Key>() + 5);
        let found = repeats_with(&ids, budget, xxh3_64);
        let last = ids.len() as u64 + 1;
        assert_eq!(found, [(last - 1, 7), (last, RUN as u64 + 5)]);
    }

    #[test]
    fn ids_that_share_a_hash_are_told_apart() {
        let ids: Vec<String> = ["ab", "cd", "ab", "ef", "cd", "x", "cd"]
            .map(String::from)
            .to_vec();
        let want = [(4, 2), (6, 3), (8, 3)];
        assert_eq!(repeats_with(&ids, RUN_BUDGET, by_length), want);
        assert_eq!(repeats_with(&ids, 60, by_length), want, "spilled");
    }

    proptest! {
        #[test]
        fn finds_exactly_the_repeats(ids in proptest::collection::vec(0u8..20, 0..200)) {
            let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
            prop_assert_eq!(repeats_of(&ids), expected(&ids));
        }

        #[test]
        fn colliding_hashes_and_spilled_runs_change_nothing(
            ids in proptest::collection::vec("[a-c]{0,3}", 0..300),
            budget in 30usize..3000,
        ) {
            let want = expected(&ids);
            prop_assert_eq!(&repeats_with(&ids, budget, by_length), &want);
            prop_assert_eq!(&repeats_with(&ids, budget, xxh3_64), &want);
        }
    }
}
