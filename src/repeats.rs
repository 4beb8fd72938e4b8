//! Finding repeated `PartnerCustomerID`s in memory that does not grow with the export: each id's 64-bit
//! hash and line go into sorted runs of 64K entries, spilled to anonymous temporary files; once the
//! whole export is read the runs are merged and equal hashes reported. A million rows use about 1 MiB of
//! memory and 16 MiB of temporary disk.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// Entries kept in memory before a run is sorted and spilled.
const RUN: usize = 1 << 16;

/// The ids seen so far, as (hash, line).
#[derive(Default)]
pub struct IdLog {
    run: Vec<(u64, u64)>,
    spilled: Vec<File>,
}

impl IdLog {
    /// Notes the id of the record starting at `line`.
    ///
    /// Fails when a full run cannot be spilled to a temporary file.
    pub fn push(&mut self, id: &str, line: u64) -> io::Result<()> {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(id);
        self.run.push((hash, line));
        if self.run.len() == RUN {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        self.run.sort_unstable();
        let mut out = BufWriter::new(tempfile::tempfile()?);
        for (hash, line) in &self.run {
            out.write_all(&hash.to_le_bytes())?;
            out.write_all(&line.to_le_bytes())?;
        }
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        self.spilled.push(file);
        self.run.clear();
        Ok(())
    }

    /// Calls `repeat(line, first_line)` for every record whose id an earlier record already had.
    ///
    /// Fails when a spilled run cannot be read back, or when `repeat` fails.
    pub fn repeats<E>(
        mut self,
        io_error: impl Fn(io::Error) -> E,
        mut repeat: impl FnMut(u64, u64) -> Result<(), E>,
    ) -> Result<(), E> {
        self.run.sort_unstable();
        let mut sources: Vec<Source> = self
            .spilled
            .into_iter()
            .map(|f| Source::File(BufReader::with_capacity(1 << 14, f)))
            .collect();
        sources.push(Source::Memory(std::mem::take(&mut self.run).into_iter()));
        let mut heap = BinaryHeap::new();
        for (i, source) in sources.iter_mut().enumerate() {
            if let Some(entry) = source.next().map_err(&io_error)? {
                heap.push(Reverse((entry, i)));
            }
        }
        let mut previous: Option<(u64, u64)> = None;
        while let Some(Reverse(((hash, line), i))) = heap.pop() {
            match previous {
                Some((h, first)) if h == hash => repeat(line, first)?,
                _ => previous = Some((hash, line)),
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
    Memory(std::vec::IntoIter<(u64, u64)>),
}

impl Source {
    fn next(&mut self) -> io::Result<Option<(u64, u64)>> {
        match self {
            Source::Memory(entries) => Ok(entries.next()),
            Source::File(file) => {
                let mut bytes = [0u8; 16];
                match file.read_exact(&mut bytes) {
                    Ok(()) => Ok(Some((
                        u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")),
                        u64::from_le_bytes(bytes[8..].try_into().expect("8 bytes")),
                    ))),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
                    Err(e) => Err(e),
                }
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
            |line, first| {
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
