//! Finding repeated `PartnerCustomerID`s in memory that does not grow with the export: each id with
//! its 64-bit hash and line goes into sorted runs of 2 MiB, spilled to anonymous temporary files
//! ([`crate::extsort`]); once the whole export is read the runs are merged and equal ids reported with
//! their lines. A million rows use about 2 MiB of memory and 30 MiB of temporary disk.

use std::io::{self, BufRead, Write};

use xxhash_rust::xxh3::xxh3_64;

use crate::changes::{Id, id_heap_bytes};
use crate::extsort::{ExternalSort, Spill, read_or_end};

/// Bytes of ids kept in memory before a run is sorted and spilled.
const RUN_BUDGET: usize = 2 << 20;

/// One id seen: its hash, the id itself, and the line of its record (in that order of sorting).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry(u64, Id, u64);

impl Spill for Entry {
    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + id_heap_bytes(&self.1)
    }

    fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&self.0.to_le_bytes())?;
        out.write_all(&self.2.to_le_bytes())?;
        out.write_all(&(self.1.len() as u32).to_le_bytes())?;
        out.write_all(&self.1)
    }

    fn read_from(input: &mut impl BufRead) -> io::Result<Option<Self>> {
        let mut head = [0u8; 20];
        if !read_or_end(input, &mut head)? {
            return Ok(None);
        }
        let hash = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let line = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(head[16..].try_into().expect("4 bytes"));
        let mut id = Id::from_elem(0, len as usize);
        input.read_exact(&mut id)?;
        Ok(Some(Entry(hash, id, line)))
    }
}

/// The ids seen so far.
pub struct IdLog {
    ids: ExternalSort<Entry>,
}

impl Default for IdLog {
    fn default() -> Self {
        Self::with_budget(RUN_BUDGET)
    }
}

impl IdLog {
    fn with_budget(budget: usize) -> Self {
        Self {
            ids: ExternalSort::new(budget),
        }
    }

    /// Notes the id of the record starting at `line`.
    ///
    /// Fails when a full run cannot be spilled to a temporary file.
    pub fn push(&mut self, id: &str, line: u64) -> io::Result<()> {
        let hash = xxh3_64(id.as_bytes());
        self.ids
            .push(Entry(hash, Id::from_slice(id.as_bytes()), line))
    }

    /// Calls `repeat(line, first_line, id)` for every record whose id an earlier record already had.
    ///
    /// Fails when a spilled run cannot be read back, or when `repeat` fails.
    pub fn repeats<E>(
        self,
        io_error: impl Fn(io::Error) -> E,
        mut repeat: impl FnMut(u64, u64, &str) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut sorted = self.ids.sorted().map_err(&io_error)?;
        let mut previous: Option<Entry> = None;
        while let Some(entry) = sorted.next_record().map_err(&io_error)? {
            match &previous {
                Some(Entry(hash, id, first)) if *hash == entry.0 && *id == entry.1 => {
                    repeat(entry.2, *first, &String::from_utf8_lossy(id))?
                }
                _ => previous = Some(entry),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn repeats_of(ids: &[String]) -> Vec<(u64, u64)> {
        repeats_with_budget(ids, RUN_BUDGET)
    }

    fn repeats_with_budget(ids: &[String], budget: usize) -> Vec<(u64, u64)> {
        let mut log = IdLog::with_budget(budget);
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
        // About 1000 ids a run: two runs spilled, the third in memory.
        let budget = RUN * std::mem::size_of::<Entry>();
        let found = repeats_with_budget(&ids, budget);
        let last = ids.len() as u64 + 1;
        assert_eq!(found, [(last - 1, 7), (last, RUN as u64 + 5)]);
    }

    proptest! {
        #[test]
        fn finds_exactly_the_repeats(ids in proptest::collection::vec(0u8..20, 0..200)) {
            let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
            let mut expected = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                if let Some(first) = ids[..i].iter().position(|x| x == id) {
                    expected.push((i as u64 + 2, first as u64 + 2));
                }
            }
            expected.sort_unstable();
            prop_assert_eq!(repeats_of(&ids), expected);
        }
    }
}
