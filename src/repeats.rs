//! Finding repeated `PartnerCustomerID`s in memory that does not grow with the export: each id with
//! its 64-bit hash and line goes into sorted runs of 64K entries, spilled to anonymous temporary files;
//! once the whole export is read the runs are merged and equal ids reported with their lines. A million
//! rows use about 2 MiB of memory and 30 MiB of temporary disk.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// Entries kept in memory before a run is sorted and spilled.
const RUN: usize = 1 << 16;

/// One id seen: its hash, the line of its record, and the id itself.
type Entry = (u64, Box<[u8]>, u64);

/// The ids seen so far: (hash, line, where the id is in `arena`).
#[derive(Default)]
pub struct IdLog {
    run: Vec<(u64, u64, u32, u32)>,
    arena: Vec<u8>,
    spilled: Vec<File>,
}

impl IdLog {
    /// Notes the id of the record starting at `line`.
    ///
    /// Fails when a full run cannot be spilled to a temporary file.
    pub fn push(&mut self, id: &str, line: u64) -> io::Result<()> {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(id);
        let start = self.arena.len() as u32;
        self.arena.extend_from_slice(id.as_bytes());
        self.run.push((hash, line, start, id.len() as u32));
        if self.run.len() == RUN {
            self.spill()?;
        }
        Ok(())
    }

    /// The in-memory run, sorted by hash, id and line.
    fn sorted_run(&mut self) -> Vec<Entry> {
        let arena = std::mem::take(&mut self.arena);
        let mut run: Vec<Entry> = self
            .run
            .drain(..)
            .map(|(hash, line, start, len)| {
                let id = arena[start as usize..(start + len) as usize].into();
                (hash, id, line)
            })
            .collect();
        run.sort_unstable();
        self.arena = arena;
        self.arena.clear();
        run
    }

    fn spill(&mut self) -> io::Result<()> {
        let run = self.sorted_run();
        let mut out = BufWriter::new(tempfile::tempfile()?);
        for (hash, id, line) in &run {
            out.write_all(&hash.to_le_bytes())?;
            out.write_all(&line.to_le_bytes())?;
            out.write_all(&(id.len() as u32).to_le_bytes())?;
            out.write_all(id)?;
        }
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        self.spilled.push(file);
        Ok(())
    }

    /// Calls `repeat(line, first_line, id)` for every record whose id an earlier record already had.
    ///
    /// Fails when a spilled run cannot be read back, or when `repeat` fails.
    pub fn repeats<E>(
        mut self,
        io_error: impl Fn(io::Error) -> E,
        mut repeat: impl FnMut(u64, u64, &str) -> Result<(), E>,
    ) -> Result<(), E> {
        let run = self.sorted_run();
        let mut sources: Vec<Source> = self
            .spilled
            .into_iter()
            .map(|f| Source::File(BufReader::with_capacity(1 << 14, f)))
            .collect();
        sources.push(Source::Memory(run.into_iter()));
        let mut heap = BinaryHeap::new();
        for (i, source) in sources.iter_mut().enumerate() {
            if let Some(entry) = source.next().map_err(&io_error)? {
                heap.push(Reverse((entry, i)));
            }
        }
        let mut previous: Option<Entry> = None;
        while let Some(Reverse((entry, i))) = heap.pop() {
            match &previous {
                Some((hash, id, first)) if *hash == entry.0 && *id == entry.1 => {
                    repeat(entry.2, *first, &String::from_utf8_lossy(id))?
                }
                _ => previous = Some(entry),
            }
            if let Some(entry) = sources[i].next().map_err(&io_error)? {
                heap.push(Reverse((entry, i)));
            }
        }
        Ok(())
    }
}

/// One sorted run being merged.
enum Source {
    File(BufReader<File>),
    Memory(std::vec::IntoIter<Entry>),
}

impl Source {
    fn next(&mut self) -> io::Result<Option<Entry>> {
        match self {
            Source::Memory(entries) => Ok(entries.next()),
            Source::File(file) => {
                let mut head = [0u8; 20];
                match file.read_exact(&mut head) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(e),
                }
                let hash = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
                let line = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
                let len = u32::from_le_bytes(head[16..].try_into().expect("4 bytes"));
                let mut id = vec![0; len as usize];
                file.read_exact(&mut id)?;
                Ok(Some((hash, id.into_boxed_slice(), line)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn repeats_of(ids: &[String]) -> Vec<(u64, u64)> {
        let mut log = IdLog::default();
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
        let mut ids: Vec<String> = (0..RUN * 2 + 10).map(|i| format!("C{i}")).collect();
        ids.push("C5".into());
        ids.push(format!("C{}", RUN + 3));
        let found = repeats_of(&ids);
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
